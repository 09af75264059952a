using ClippyBot.Api.Audit;
using ClippyBot.Api.Data;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Encryption;

/// <summary>Envelope encryption at rest (docs/encryption.md): the key ring, the rotation job, and their admin endpoints.</summary>
public static class EncryptionEndpoints
{
    public sealed record KeyStatus(Guid Id, DateTimeOffset CreatedAt, bool Current, int Rows);

    public sealed record RunStatus(Guid Id, Guid TargetKeyId, string Stage, long Processed, long Unreadable, int Passes, DateTimeOffset StartedAt, DateTimeOffset? CompletedAt);

    public sealed record EncryptionStatus(IReadOnlyList<KeyStatus> Keys, IReadOnlyList<RunStatus> Runs);

    /// <summary>Registers a store of encrypted rows, which the rotation job then re-encrypts too.</summary>
    public static IServiceCollection AddReencryptable<TStore>(this IServiceCollection services) where TStore : class, IReencryptable =>
        services.AddScoped<TStore>().AddScoped<IReencryptable>(sp => sp.GetRequiredService<TStore>());

    public static IHostApplicationBuilder AddEncryption(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<EncryptionOptions>().Bind(builder.Configuration.GetSection(EncryptionOptions.SectionName))
            .Validate(o => o.KeyEncryptionKey.Length >= EncryptionOptions.MinimumSecretLength,
                $"Encryption:KeyEncryptionKey must be a random secret of at least {EncryptionOptions.MinimumSecretLength} characters (the AppHost generates one).")
            .Validate(o => o.ReencryptionBatchSize is > 0 and <= 10_000, "Encryption:ReencryptionBatchSize must be 1–10000.")
            .ValidateOnStart();
        builder.Services.AddSingleton<KeyRing>();
        builder.Services.AddSingleton<EnvelopeEncryptor>();
        builder.Services.AddSingleton<ReencryptionService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ReencryptionService>());
        return builder;
    }

    /// <summary>Platform administrators only (same policy as containment).</summary>
    public static IEndpointRouteBuilder MapEncryptionApi(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/api/admin/encryption").WithTags("Encryption").RequireAuthorization(Containment.ContainmentEndpoints.PolicyName);
        admin.MapGet("/", StatusAsync);
        admin.MapPost("/rotate", RotateAsync);
        return app;
    }

    /// <summary>Creates a new data key (new writes use it at once on this replica) and starts moving old ciphertexts to it.</summary>
    private static async Task<Accepted<RunStatus>> RotateAsync(KeyRing keys, ApiDbContext db, ReencryptionService job, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        var keyId = await keys.RotateAsync(ct);
        var run = new ReencryptionRun { Id = Guid.CreateVersion7(), TargetKeyId = keyId, StartedAt = time.GetUtcNow() };
        db.ReencryptionRuns.Add(run);
        await db.SaveChangesAsync(ct);
        await audit.RecordAsync(null, "encryption.key_rotated", keyId.ToString(), ct: ct);
        job.Wake();
        return TypedResults.Accepted("/api/admin/encryption", ToStatus(run));
    }

    private static async Task<Ok<EncryptionStatus>> StatusAsync(ApiDbContext db, IEnumerable<IReencryptable> sources, KeyRing keys, CancellationToken ct)
    {
        var (current, _) = await keys.CurrentAsync(ct);
        var rows = new Dictionary<Guid, int>();
        foreach (var source in sources)
        {
            foreach (var (key, count) in await source.CountByKeyAsync(ct))
            {
                rows[key] = rows.GetValueOrDefault(key) + count;
            }
        }
        var dataKeys = await db.DataKeys.AsNoTracking().OrderBy(k => k.CreatedAt).Select(k => new { k.Id, k.CreatedAt }).ToListAsync(ct);
        var runs = await db.ReencryptionRuns.AsNoTracking().OrderByDescending(r => r.StartedAt).Take(20).ToListAsync(ct);
        return TypedResults.Ok(new EncryptionStatus(
            [.. dataKeys.Select(k => new KeyStatus(k.Id, k.CreatedAt, k.Id == current, rows.GetValueOrDefault(k.Id)))],
            [.. runs.Select(ToStatus)]));
    }

    private static RunStatus ToStatus(ReencryptionRun r) => new(r.Id, r.TargetKeyId, r.Stage, r.Processed, r.Unreadable, r.Passes, r.StartedAt, r.CompletedAt);
}
