using System.Security.Claims;
using ClippyBot.Registry.Data;

namespace ClippyBot.Registry.Publishers;

/// <summary>The one way the registry's endpoints record what they allowed and refused.</summary>
public static class RegistryAudit
{
    /// <summary>The person's subject at Identity, or "anonymous".</summary>
    public static string Subject(ClaimsPrincipal user) => user?.FindFirstValue("sub") ?? "anonymous";

    public static async Task RecordAsync(RegistryDbContext db, TimeProvider time, ClaimsPrincipal user, string action, bool allowed, string detail, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(detail);
        db.Audit.Add(new RegistryAuditEntry
        {
            At = time.GetUtcNow(), Actor = Subject(user), Action = action, Outcome = allowed ? "allowed" : "refused",
            Detail = detail.Length > 500 ? detail[..500] : detail,
        });
        await db.SaveChangesAsync(ct);
    }
}
