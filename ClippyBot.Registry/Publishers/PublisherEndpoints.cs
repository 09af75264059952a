using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using ClippyBot.Contracts;
using ClippyBot.Plugins.Bundles;
using ClippyBot.Registry.Data;
using ClippyBot.Registry.Metadata;
using ClippyBot.Registry.Versions;
using ClippyBot.Tuf;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Registry.Publishers;

/// <summary>
/// Publisher onboarding (a person with a verified address and a second factor): become a publisher, register signing keys
/// with proof of possession, revoke them, claim reverse-DNS namespaces, submit bundles and see their checks. Every action
/// and every refusal is recorded in the registry's audit log.
/// </summary>
public static partial class PublisherEndpoints
{
    public const string PolicyName = "registry-publisher";
    public const int MaxKeys = 10;
    public const int MaxNamespaces = 10;
    public const int MaxSubmissionsPerDay = 50;
    private const long NamespaceLock = 0x636c_6970_7079_6e73;
    private static readonly TimeSpan ChallengeLifetime = TimeSpan.FromMinutes(10);

    public sealed record CreatePublisherRequest(string? Name);
    public sealed record KeyRequest(string? PublicKey, string? Challenge, string? Signature);
    public sealed record NamespaceRequest(string? Prefix);
    public sealed record PublisherResponse(Guid Id, string Name, IReadOnlyList<KeyResponse> Keys, IReadOnlyList<string> Namespaces);
    public sealed record KeyResponse(string KeyId, string PublicKey, DateTimeOffset AddedAt, DateTimeOffset? RevokedAt);
    public sealed record ChallengeResponse(string Challenge, DateTimeOffset ExpiresAt, string Statement);
    public sealed record SubmissionResponse(Guid Id, string PluginId, string Version, string Status, IReadOnlyList<CheckResult> Checks, string? Note, DateTimeOffset SubmittedAt);

    /// <summary>What a new key's holder signs: binds the key to this publisher and this challenge.</summary>
    public static string ProofStatement(Guid publisherId, string challenge, string publicKey) => PluginSigning.KeyProofStatement(publisherId, challenge, publicKey);

    public static IEndpointRouteBuilder MapPublisherEndpoints(this IEndpointRouteBuilder app)
    {
        var publishers = app.MapGroup("/api/publishers").RequireAuthorization(PolicyName).WithTags("Publishers");
        publishers.MapPost("/", CreateAsync);
        var me = publishers.MapGroup("/me");
        me.MapGet("/", GetAsync);
        me.MapPost("/key-challenges", ChallengeAsync);
        me.MapPost("/keys", AddKeyAsync);
        me.MapDelete("/keys/{keyId}", RevokeKeyAsync);
        me.MapPost("/namespaces", ClaimAsync);
        me.MapPost("/submissions", SubmitAsync).WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(PluginBundle.MaxBundleBytes));
        me.MapGet("/submissions", SubmissionsAsync);
        return app;
    }

    [GeneratedRegex(@"^[a-z][a-z0-9-]{0,30}(\.[a-z][a-z0-9-]{0,30}){1,5}$", RegexOptions.CultureInvariant)]
    private static partial Regex ReverseDns();

    private static string Subject(ClaimsPrincipal user) => RegistryAudit.Subject(user);

    private static Task AuditAsync(RegistryDbContext db, TimeProvider time, ClaimsPrincipal user, string action, bool allowed, string detail, CancellationToken ct) =>
        RegistryAudit.RecordAsync(db, time, user, action, allowed, detail, ct);

    private static ProblemHttpResult Problem(int status, string type, string title, string detail) =>
        TypedResults.Problem(detail, statusCode: status, title: title, type: type);

    internal static Task<Publisher?> MeAsync(RegistryDbContext db, ClaimsPrincipal user, CancellationToken ct)
    {
        var subject = Subject(user);
        return db.Publishers.SingleOrDefaultAsync(p => p.SubjectId == subject && !p.FirstParty, ct);
    }

    private static async Task<ProblemHttpResult> NotAPublisherAsync(RegistryDbContext db, TimeProvider time, ClaimsPrincipal user, string action, CancellationToken ct)
    {
        await AuditAsync(db, time, user, action, false, "not a publisher", ct);
        return Problem(StatusCodes.Status404NotFound, ProblemTypes.PublisherRequired, "Not a publisher", "Become a publisher first (POST /api/publishers).");
    }

    internal static async Task<Results<Created<PublisherResponse>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        CreatePublisherRequest request, ClaimsPrincipal user, RegistryDbContext db, TimeProvider time, CancellationToken ct)
    {
        var name = request.Name?.Trim() ?? "";
        if (name.Length is < 2 or > 100 || name.Any(char.IsControl))
        {
            await AuditAsync(db, time, user, "publisher.create", false, "invalid name", ct);
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["name"] = ["A publisher name is 2–100 characters without control characters."] });
        }
        if (await MeAsync(db, user, ct) is not null || await db.Publishers.AnyAsync(p => p.Name == name, ct))
        {
            await AuditAsync(db, time, user, "publisher.create", false, "exists: " + name, ct);
            return Problem(StatusCodes.Status409Conflict, ProblemTypes.PublisherExists, "Publisher exists", "You are a publisher already, or another publisher has this name.");
        }
        var publisher = new Publisher { Id = Guid.CreateVersion7(), Name = name, SubjectId = Subject(user), CreatedAt = time.GetUtcNow() };
        db.Publishers.Add(publisher);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            // Two requests at once: the unique indexes keep one.
            db.ChangeTracker.Clear();
            await AuditAsync(db, time, user, "publisher.create", false, "exists (concurrent): " + name, ct);
            return Problem(StatusCodes.Status409Conflict, ProblemTypes.PublisherExists, "Publisher exists", "You are a publisher already, or another publisher has this name.");
        }
        await AuditAsync(db, time, user, "publisher.create", true, name, ct);
        return TypedResults.Created("/api/publishers/me", new PublisherResponse(publisher.Id, publisher.Name, [], []));
    }

    internal static async Task<Results<Ok<PublisherResponse>, ProblemHttpResult>> GetAsync(ClaimsPrincipal user, RegistryDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (await MeAsync(db, user, ct) is not { } publisher)
        {
            return await NotAPublisherAsync(db, time, user, "publisher.read", ct);
        }
        var keys = await db.PublisherKeys.AsNoTracking().Where(k => k.PublisherId == publisher.Id).OrderBy(k => k.AddedAt)
            .Select(k => new KeyResponse(k.KeyId, Convert.ToBase64String(k.PublicKey), k.AddedAt, k.RevokedAt)).ToListAsync(ct);
        var namespaces = await db.Namespaces.AsNoTracking().Where(n => n.PublisherId == publisher.Id).OrderBy(n => n.Prefix).Select(n => n.Prefix).ToListAsync(ct);
        return TypedResults.Ok(new PublisherResponse(publisher.Id, publisher.Name, keys, namespaces));
    }

    internal static async Task<Results<Created<ChallengeResponse>, ProblemHttpResult>> ChallengeAsync(ClaimsPrincipal user, RegistryDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (await MeAsync(db, user, ct) is not { } publisher)
        {
            return await NotAPublisherAsync(db, time, user, "key.challenge", ct);
        }
        var now = time.GetUtcNow();
        // Expired challenges go; at most 5 open ones per publisher.
        await db.KeyChallenges.Where(c => c.ExpiresAt < now).ExecuteDeleteAsync(ct);
        var open = await db.KeyChallenges.Where(c => c.PublisherId == publisher.Id).OrderBy(c => c.ExpiresAt).ToListAsync(ct);
        db.KeyChallenges.RemoveRange(open.Take(Math.Max(0, open.Count - 4)));
        var challenge = Base64Url(RandomNumberGenerator.GetBytes(32));
        db.KeyChallenges.Add(new KeyChallenge { Id = Guid.CreateVersion7(), PublisherId = publisher.Id, ChallengeHash = Hash(challenge), ExpiresAt = now + ChallengeLifetime });
        await db.SaveChangesAsync(ct);
        return TypedResults.Created("/api/publishers/me/keys", new ChallengeResponse(challenge, now + ChallengeLifetime, ProofStatement(publisher.Id, challenge, "<base64 public key>")));
    }

    internal static async Task<Results<Created<KeyResponse>, ValidationProblem, ProblemHttpResult>> AddKeyAsync(
        KeyRequest request, ClaimsPrincipal user, RegistryDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (await MeAsync(db, user, ct) is not { } publisher)
        {
            return await NotAPublisherAsync(db, time, user, "key.add", ct);
        }
        byte[] publicKey, signature;
        try
        {
            publicKey = Convert.FromBase64String(request.PublicKey ?? "");
            signature = Convert.FromBase64String(request.Signature ?? "");
        }
        catch (FormatException)
        {
            publicKey = signature = [];
        }
        if (publicKey.Length != 32 || signature.Length != 64 || request.Challenge is not { Length: > 0 and <= 100 } challenge)
        {
            await AuditAsync(db, time, user, "key.add", false, "malformed", ct);
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["publicKey"] = ["A raw 32-byte Ed25519 public key, base64 (clippybot-plugin keygen writes it)."],
                ["signature"] = ["A 64-byte Ed25519 signature, base64, over the challenge's statement."],
            });
        }
        var now = time.GetUtcNow();
        // The challenge is used up whatever the outcome: a wrong signature cannot be retried against it.
        var challengeHash = Hash(challenge);
        var used = await db.KeyChallenges.Where(c => c.PublisherId == publisher.Id && c.ChallengeHash == challengeHash && c.ExpiresAt > now).ExecuteDeleteAsync(ct);
        var statement = Encoding.UTF8.GetBytes(ProofStatement(publisher.Id, challenge, Convert.ToBase64String(publicKey)));
        var challengeValid = used == 1;
        if (!challengeValid || !TufPublicKey.FromRaw(publicKey).Verify(statement, signature))
        {
            await AuditAsync(db, time, user, "key.add", false, challengeValid ? "signature does not verify" : "unknown, used or expired challenge", ct);
            return Problem(StatusCodes.Status400BadRequest, ProblemTypes.KeyProofInvalid, "Key not proven",
                "Sign the statement of a fresh challenge (POST /api/publishers/me/key-challenges) with the key's private half.");
        }
        var keyId = PluginSigning.KeyIdOf(publicKey);
        if (await db.PublisherKeys.AnyAsync(k => k.KeyId == keyId, ct)
            || await db.PublisherKeys.CountAsync(k => k.PublisherId == publisher.Id && k.RevokedAt == null, ct) >= MaxKeys)
        {
            await AuditAsync(db, time, user, "key.add", false, "duplicate key or limit: " + keyId, ct);
            return Problem(StatusCodes.Status409Conflict, ProblemTypes.PublisherExists, "Key not added",
                $"This key is registered already (a key belongs to one publisher, and a revoked key never returns), or you hold {MaxKeys} keys.");
        }
        db.PublisherKeys.Add(new PublisherKey { KeyId = keyId, PublisherId = publisher.Id, PublicKey = publicKey, AddedAt = now });
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            // The same key offered by two publishers (or twice) at the same moment: the key id is unique, one wins.
            db.ChangeTracker.Clear();
            await AuditAsync(db, time, user, "key.add", false, "duplicate key (concurrent): " + keyId, ct);
            return Problem(StatusCodes.Status409Conflict, ProblemTypes.PublisherExists, "Key not added", "This key was registered at the same moment.");
        }
        await AuditAsync(db, time, user, "key.add", true, keyId, ct);
        return TypedResults.Created($"/api/publishers/me/keys/{keyId}", new KeyResponse(keyId, Convert.ToBase64String(publicKey), now, null));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> RevokeKeyAsync(
        string keyId, ClaimsPrincipal user, RegistryDbContext db, MetadataPublisher metadata, TimeProvider time, CancellationToken ct)
    {
        if (await MeAsync(db, user, ct) is not { } publisher)
        {
            return await NotAPublisherAsync(db, time, user, "key.revoke", ct);
        }
        var revoked = await db.PublisherKeys.Where(k => k.KeyId == keyId && k.PublisherId == publisher.Id && k.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(k => k.RevokedAt, time.GetUtcNow()), ct);
        if (revoked == 0)
        {
            await AuditAsync(db, time, user, "key.revoke", false, "no such key: " + (keyId.Length > 32 ? keyId[..32] : keyId), ct);
            return Problem(StatusCodes.Status404NotFound, ProblemTypes.NotFound, "No such key", "You hold no active key with this id.");
        }
        // Every version the key signed leaves targets: PluginHosts stop running them.
        await metadata.PublishAsync(ct);
        await AuditAsync(db, time, user, "key.revoke", true, keyId, ct);
        return TypedResults.NoContent();
    }

    internal static async Task<Results<Created<NamespaceRequest>, ValidationProblem, ProblemHttpResult>> ClaimAsync(
        NamespaceRequest request, ClaimsPrincipal user, RegistryDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (await MeAsync(db, user, ct) is not { } publisher)
        {
            return await NotAPublisherAsync(db, time, user, "namespace.claim", ct);
        }
        var prefix = request.Prefix ?? "";
        if (prefix.Length > 100 || !ReverseDns().IsMatch(prefix))
        {
            await AuditAsync(db, time, user, "namespace.claim", false, "invalid", ct);
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["prefix"] = ["A reverse-DNS name in lower case, like com.example (2–6 labels)."] });
        }
        // Overlap in either direction is refused: com.example would reach into com.example.tools, and the reverse. The
        // check and the claim hold one lock across replicas: two overlapping claims at the same moment (different
        // prefixes, so no unique key can catch them) are decided one after the other.
        var claimed = false;
        var strategy = db.Database.CreateExecutionStrategy();
        try
        {
            await strategy.ExecuteAsync(async () =>
        {
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({NamespaceLock})", ct);
            var taken = Overlaps(prefix, Submissions.FirstPartyNamespace)
                || await db.Namespaces.AnyAsync(n => n.Prefix == prefix || prefix.StartsWith(n.Prefix + ".") || n.Prefix.StartsWith(prefix + "."), ct);
            claimed = !taken && await db.Namespaces.CountAsync(n => n.PublisherId == publisher.Id, ct) < MaxNamespaces;
            if (claimed)
            {
                db.Namespaces.Add(new PluginNamespace { Prefix = prefix, PublisherId = publisher.Id, ClaimedAt = time.GetUtcNow() });
                await db.SaveChangesAsync(ct);
            }
            await tx.CommitAsync(ct);
        });
        }
        catch (DbUpdateException)
        {
            // Whatever the database refused, it is a claim not made — not a 500.
            db.ChangeTracker.Clear();
            claimed = false;
        }
        if (!claimed)
        {
            await AuditAsync(db, time, user, "namespace.claim", false, "taken or limit: " + prefix, ct);
            return Problem(StatusCodes.Status409Conflict, ProblemTypes.NamespaceTaken, "Namespace not available",
                $"{prefix} is reserved, overlaps a namespace another publisher owns (or one of yours), or you hold {MaxNamespaces} namespaces.");
        }
        await AuditAsync(db, time, user, "namespace.claim", true, prefix, ct);
        return TypedResults.Created("/api/publishers/me", new NamespaceRequest(prefix));
    }

    private static bool Overlaps(string a, string b) => a == b || a.StartsWith(b + ".", StringComparison.Ordinal) || b.StartsWith(a + ".", StringComparison.Ordinal);

    private static async Task<Results<Created<SubmissionResponse>, JsonHttpResult<SubmissionProblem>, ProblemHttpResult>> SubmitAsync(
        HttpRequest http, ClaimsPrincipal user, RegistryDbContext db, Submissions submissions, TimeProvider time, CancellationToken ct) =>
        // Bounded by the endpoint's request size limit (the bundle format's maximum); read only once the caller may submit.
        await SubmitBundleAsync(async read =>
        {
            using var body = new MemoryStream();
            await http.Body.CopyToAsync(body, read);
            return body.ToArray();
        }, user, db, submissions, time, ct);

    /// <summary>
    /// A submission from the API or the publisher page: the caller and their daily limit are checked before the bundle is
    /// read, then the checks run and it is stored for review or rejected with reasons.
    /// </summary>
    internal static async Task<Results<Created<SubmissionResponse>, JsonHttpResult<SubmissionProblem>, ProblemHttpResult>> SubmitBundleAsync(
        Func<CancellationToken, Task<byte[]>> readBundle, ClaimsPrincipal user, RegistryDbContext db, Submissions submissions, TimeProvider time, CancellationToken ct)
    {
        if (await MeAsync(db, user, ct) is not { } publisher)
        {
            return await NotAPublisherAsync(db, time, user, "version.submit", ct);
        }
        var since = time.GetUtcNow().AddDays(-1);
        if (await db.Versions.CountAsync(v => v.PublisherId == publisher.Id && v.SubmittedAt > since, ct) >= MaxSubmissionsPerDay)
        {
            await AuditAsync(db, time, user, "version.submit", false, "daily limit", ct);
            return Problem(StatusCodes.Status429TooManyRequests, ProblemTypes.RateLimited, "Too many submissions", $"At most {MaxSubmissionsPerDay} submissions a day.");
        }
        var content = await readBundle(ct);
        var outcome = await submissions.SubmitAsync(publisher, content, ct);
        var failed = outcome.Checks.Where(c => !c.Passed).Select(c => c.Check).ToList();
        await AuditAsync(db, time, user, "version.submit", failed.Count == 0,
            $"{outcome.Version?.PluginId ?? "?"} {outcome.Version?.Version ?? "?"}: {(failed.Count == 0 ? "checks passed" : "failed " + string.Join(", ", failed))}", ct);
        if (outcome.Version is { Status: not VersionStatus.Rejected } version)
        {
            return TypedResults.Created($"/api/publishers/me/submissions/{version.Id}", Response(version, outcome.Checks));
        }
        return TypedResults.Json(new SubmissionProblem(ProblemTypes.SubmissionRejected, "Submission rejected", StatusCodes.Status400BadRequest,
            "An automated check failed; each check says why.", outcome.Checks), statusCode: StatusCodes.Status400BadRequest, contentType: "application/problem+json");
    }

    /// <summary>Problem details with every check (RFC 7807 extension member <c>checks</c>).</summary>
    public sealed record SubmissionProblem(string Type, string Title, int Status, string Detail, IReadOnlyList<CheckResult> Checks);

    internal static async Task<Results<Ok<List<SubmissionResponse>>, ProblemHttpResult>> SubmissionsAsync(ClaimsPrincipal user, RegistryDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (await MeAsync(db, user, ct) is not { } publisher)
        {
            return await NotAPublisherAsync(db, time, user, "version.list", ct);
        }
        var versions = await db.Versions.AsNoTracking().Where(v => v.PublisherId == publisher.Id).OrderByDescending(v => v.SubmittedAt).Take(200)
            .Select(v => new { v.Id, v.PluginId, v.Version, v.Status, v.ChecksJson, v.DecisionNote, v.SubmittedAt }).ToListAsync(ct);
        return TypedResults.Ok(versions.Select(v => new SubmissionResponse(v.Id, v.PluginId, v.Version, v.Status.ToString(),
            System.Text.Json.JsonSerializer.Deserialize<List<CheckResult>>(v.ChecksJson, PluginManifest.Json) ?? [], v.DecisionNote, v.SubmittedAt)).ToList());
    }

    private static SubmissionResponse Response(PluginVersion v, IReadOnlyList<CheckResult> checks) =>
        new(v.Id, v.PluginId, v.Version, v.Status.ToString(), checks, v.DecisionNote, v.SubmittedAt);

    private static string Hash(string challenge) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(challenge)));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
