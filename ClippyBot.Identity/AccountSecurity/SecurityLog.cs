using ClippyBot.Identity.Data;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Identity.AccountSecurity;

/// <summary>Each user's security log (what happened to the account, when, from where), shown on their account page.</summary>
public sealed class SecurityLog(IdentityDataContext db, TimeProvider time, IHttpContextAccessor http)
{
    public async Task RecordAsync(Guid userId, string kind, CancellationToken ct)
    {
        db.SecurityEvents.Add(new SecurityEvent
        {
            UserId = userId, Kind = kind, At = time.GetUtcNow(), IpAddress = http.HttpContext?.Connection.RemoteIpAddress?.ToString() ?? "",
        });
        await db.SaveChangesAsync(ct);
    }

    public Task<List<SecurityEvent>> RecentAsync(Guid userId, int count, CancellationToken ct) =>
        db.SecurityEvents.AsNoTracking().Where(e => e.UserId == userId).OrderByDescending(e => e.Id).Take(count).ToListAsync(ct);
}
