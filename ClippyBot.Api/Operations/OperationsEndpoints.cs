using System.Security.Claims;
using ClippyBot.Api.Audit;
using ClippyBot.Api.Containment;
using ClippyBot.Api.Data;
using ClippyBot.Api.Plugins;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Operations;

/// <summary>
/// Platform operations that act on every tenant at once — what the AppHost's dashboard offers as commands, and what a
/// platform administrator can call. Same policy and rate limit as containment; every outcome, failures included, goes
/// into the platform audit chain under the caller (a person, or the operator's console and who runs it).
/// </summary>
public static class OperationsEndpoints
{
    public sealed record SigningKeysRotated(string KeyId);

    public sealed record QuarantinesReleased(int Released);

    public sealed record ChainVerification(Guid ChainId, AuditEndpoints.AuditVerification Verification);

    public sealed record AuditChainsVerification(bool AllIntact, int Chains, IReadOnlyList<ChainVerification> Broken);

    public static IEndpointRouteBuilder MapOperationsApi(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/api/admin").WithTags("Operations").RequireAuthorization(ContainmentEndpoints.PolicyName)
            .RequireRateLimiting(RateLimiting.RateLimitingExtensions.SensitivePolicy);
        // 502: Identity answered, but did not carry out the rotation.
        admin.MapPost("/signing-keys/rotate", RotateSigningKeysAsync).ProducesProblem(StatusCodes.Status502BadGateway);
        // Not under /plugins/{pluginId}: "quarantines" is a valid plugin id.
        admin.MapPost("/quarantines/release", ReleaseAllQuarantinesAsync);
        admin.MapGet("/audit/verify-all", VerifyAllChainsAsync);
        return app;
    }

    /// <summary>Identity's signing keys stop signing now (a key suspected exposed); tokens already issued stay valid until they expire.</summary>
    private static async Task<Results<Ok<SigningKeysRotated>, ProblemHttpResult>> RotateSigningKeysAsync(
        IdentityServiceClient identity, AuditLog audit, HttpContext context, CancellationToken ct)
    {
        string keyId;
        try
        {
            keyId = await identity.RotateSigningKeysAsync(IdentityActor(context), ct);
        }
        catch (ServiceClients.ServiceUnavailableException e)
        {
            await audit.RecordAsync(null, "oidc.signing_keys_rotated", "identity", "failed", CancellationToken.None);
            return ContainmentEndpoints.IdentityUnavailable(e);
        }
        // Done: recorded even if the caller has hung up meanwhile.
        await audit.RecordAsync(null, "oidc.signing_keys_rotated", keyId, ct: CancellationToken.None);
        return TypedResults.Ok(new SigningKeysRotated(keyId));
    }

    /// <summary>Every quarantine an operator or a rule set, in every workspace; the registry's withdrawals stay.</summary>
    private static async Task<Ok<QuarantinesReleased>> ReleaseAllQuarantinesAsync(PluginHostClient host, AuditLog audit, HttpContext context, CancellationToken ct)
    {
        int released;
        try
        {
            released = await host.ReleaseAllQuarantinesAsync(IdentityActor(context), ct);
        }
        catch (Exception e) when (e is PluginHostUnavailableException or PluginHostClient.PluginHostProblemException)
        {
            // Recorded whatever the caller does next, then answered by the one mapping (503, or the PluginHost's refusal).
            await audit.RecordAsync(null, "plugin.quarantines_released", "*", "failed", CancellationToken.None);
            throw;
        }
        await audit.RecordAsync(null, "plugin.quarantines_released", $"*:{released}", ct: CancellationToken.None);
        return TypedResults.Ok(new QuarantinesReleased(released));
    }

    /// <summary>The platform chain and every workspace's chain, each walked with its anchors; the verdict itself is audited.</summary>
    private static async Task<Ok<AuditChainsVerification>> VerifyAllChainsAsync(ApiDbContext db, AuditLog log, IdentityServiceClient identity, CancellationToken ct)
    {
        var chains = await db.AuditEntries.AsNoTracking().Select(e => e.ChainId).Distinct().ToListAsync(ct);
        if (!chains.Contains(Guid.Empty))
        {
            chains.Insert(0, Guid.Empty);
        }
        var broken = new List<ChainVerification>();
        try
        {
            foreach (var chain in chains)
            {
                var verification = (await AuditEndpoints.VerifyChainAsync(log, identity, chain, ct)).Value!;
                if (!verification.Intact)
                {
                    broken.Add(new ChainVerification(chain, verification));
                }
            }
        }
        catch (OperationCanceledException)
        {
            await log.RecordAsync(null, "audit.chains_verified", $"{chains.Count} chains", "abandoned", CancellationToken.None);
            throw;
        }
        await log.RecordAsync(null, "audit.chains_verified", $"{chains.Count} chains", broken.Count == 0 ? "intact" : $"broken:{broken.Count}", ct);
        return TypedResults.Ok(new AuditChainsVerification(broken.Count == 0, chains.Count, broken));
    }

    /// <summary>Named to other services for their logs (never for their decisions): the person's subject, or the operator client.</summary>
    private static string IdentityActor(HttpContext context) =>
        context.User.FindFirstValue("sub") ?? "unknown";
}
