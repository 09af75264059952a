using Microsoft.AspNetCore.Http.HttpResults;
using ClippyBot.Registry.Data;

namespace ClippyBot.Registry.Publishers;

/// <summary>Platform administrators (with a second factor) check that the registry's audit chain holds.</summary>
public static class AuditEndpoints
{
    public const string AdministratorPolicy = "registry-administrator";

    public sealed record VerificationResponse(long Entries, bool Holds, long? BrokenAt, string? Reason);

    public static IEndpointRouteBuilder MapAuditEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/audit/verification", VerifyAsync).RequireAuthorization(AdministratorPolicy).WithTags("Audit");
        return app;
    }

    private static async Task<Ok<VerificationResponse>> VerifyAsync(System.Security.Claims.ClaimsPrincipal user, RegistryDbContext db, TimeProvider time, CancellationToken ct)
    {
        var (entries, broken) = await RegistryAudit.VerifyAsync(db, ct);
        await RegistryAudit.RecordAsync(db, time, user, "audit.verify", true, broken is null ? $"{entries} entries hold" : $"broken at {broken.EntryId}: {broken.Reason}", ct);
        return TypedResults.Ok(new VerificationResponse(entries, broken is null, broken?.EntryId, broken?.Reason));
    }
}
