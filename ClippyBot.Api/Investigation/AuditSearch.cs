using System.Text.Json;
using ClippyBot.Api.Audit;
using ClippyBot.Api.Containment;
using ClippyBot.Api.Data;
using ClippyBot.Api.Incidents;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Investigation;

/// <summary>
/// Seed §6 investigation: one search over the platform chain and every workspace chain — by time range, actor, target
/// (subject), action, outcome, chain and address — and its export as a JSON document for an incident. A person's address
/// is sealed under their own key: it is opened (and can be searched for) only for an administrator who signed in with a
/// second factor, never for the operator console; the export itself is written to the platform chain and the incident's
/// timeline.
/// </summary>
public static class AuditSearch
{
    public const int MaxPageSize = 500;
    public const int MaxExported = 10_000;

    /// <summary>Sealed addresses opened per search at most, when searching by address (each is a key lookup and a decryption).</summary>
    public const int MaxAddressScan = 5_000;

    public static readonly TimeSpan MaxRange = TimeSpan.FromDays(366);

    private static readonly JsonSerializerOptions ExportJson = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>A search (query string, or the body of an export).</summary>
    public sealed record AuditSearchQuery(DateTimeOffset? From, DateTimeOffset? To, string? Actor, string? Target, string? Action, string? Outcome, string? Address,
        Guid? Chain, long? Before, int? PageSize);

    public sealed record FoundEntry(long Id, Guid ChainId, DateTimeOffset At, string ActorType, string ActorId, string Action, string Target, string Outcome, string IpAddress);

    /// <param name="AddressesRedacted">True when people's addresses were not opened (the caller is not a person with a second factor).</param>
    public sealed record SearchPage(IReadOnlyList<FoundEntry> Entries, long? NextBefore, bool AddressesRedacted);

    public sealed record AuditExport(Guid IncidentId, DateTimeOffset ExportedAt, string ExportedBy, AuditSearchQuery Query, bool AddressesRedacted,
        IReadOnlyList<FoundEntry> Entries);

    public static IEndpointRouteBuilder MapInvestigationApi(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/api/admin").WithTags("Investigation").RequireAuthorization(ContainmentEndpoints.PolicyName)
            .RequireRateLimiting(RateLimiting.RateLimitingExtensions.SensitivePolicy);
        admin.MapGet("/audit/search", SearchAsync);
        // A JSON document (a file to keep with the incident), described as such.
        admin.MapPost("/incidents/{incidentId:guid}/audit-export", ExportAsync).Produces<AuditExport>(StatusCodes.Status200OK, "application/json").ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    /// <summary>Entries in [from, to) matching the exact filters (an address only where it is kept in the clear).</summary>
    public static IQueryable<AuditEntry> Filter(IQueryable<AuditEntry> entries, DateTimeOffset? from, DateTimeOffset? to, string? actor, string? target, string? action,
        string? address, string? outcome = null, Guid? chain = null)
    {
        ArgumentNullException.ThrowIfNull(entries);
        // The database keeps UTC: an offset in the query (…-05:00) is the same instant, not an error.
        if (from?.ToUniversalTime() is { } f)
        {
            entries = entries.Where(e => e.At >= f);
        }
        if (to?.ToUniversalTime() is { } t)
        {
            entries = entries.Where(e => e.At < t);
        }
        if (!string.IsNullOrEmpty(actor))
        {
            entries = entries.Where(e => e.ActorId == actor);
        }
        if (!string.IsNullOrEmpty(target))
        {
            entries = entries.Where(e => e.Target == target || e.Target.StartsWith(target + ":"));
        }
        if (!string.IsNullOrEmpty(action))
        {
            entries = entries.Where(e => e.Action == action);
        }
        if (!string.IsNullOrEmpty(outcome))
        {
            entries = entries.Where(e => e.Outcome == outcome);
        }
        if (chain is { } c)
        {
            entries = entries.Where(e => e.ChainId == c);
        }
        if (!string.IsNullOrEmpty(address))
        {
            var mapped = "::ffff:" + address;
            entries = entries.Where(e => e.IpAddress == address || e.IpAddress == mapped || e.IpSealed != null);
        }
        return entries;
    }

    private static async Task<Results<Ok<SearchPage>, ValidationProblem>> SearchAsync([AsParameters] AuditSearchQuery query, [AsParameters] IncidentServices services, CancellationToken ct)
    {
        var size = query.PageSize ?? 100;
        if (Invalid(query, services.IsPerson, size is < 1 or > MaxPageSize ? $"Use a pageSize of 1–{MaxPageSize}." : null) is { } errors)
        {
            await services.Audit.RecordAsync(null, "audit.searched", "-", "refused", CancellationToken.None);
            return TypedResults.ValidationProblem(errors);
        }
        var (entries, next) = await FindAsync(services.Db, services.Audit, query, size, services.IsPerson, ct);
        // Reading the log is itself on record: who searched, how much they saw, whether addresses were opened.
        await services.Audit.RecordAsync(null, "audit.searched", $"{entries.Count} entries{(services.IsPerson ? ":addresses" : "")}", ct: CancellationToken.None);
        return TypedResults.Ok(new SearchPage(entries, next, !services.IsPerson));
    }

    private static async Task<Results<FileContentHttpResult, ProblemHttpResult, ValidationProblem>> ExportAsync(Guid incidentId, AuditSearchQuery query,
        [AsParameters] IncidentServices services, CancellationToken ct)
    {
        var (db, log) = (services.Db, services.Audit);
        if (!await db.Incidents.AnyAsync(i => i.Id == incidentId, ct))
        {
            return IncidentEndpoints.NotFound();
        }
        if (Invalid(query, services.IsPerson, null) is { } errors)
        {
            await services.Audit.RecordAsync(null, "audit.exported", incidentId.ToString(), "refused", CancellationToken.None);
            return TypedResults.ValidationProblem(errors);
        }
        var (entries, more) = await FindAsync(db, log, query with { Before = null }, MaxExported, services.IsPerson, ct);
        if (more is not null)
        {
            await services.Audit.RecordAsync(null, "audit.exported", incidentId.ToString(), "refused", CancellationToken.None);
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["from"] = [$"More than {MaxExported} entries match: narrow the range or the filters."] });
        }
        var now = services.Time.GetUtcNow();
        var export = new AuditExport(incidentId, now, services.Actor, query, !services.IsPerson, entries);
        // The export is itself evidence: who took which entries, when, with or without addresses.
        services.Timeline(incidentId, "investigation", $"Exported {entries.Count} audit entries{(services.IsPerson ? " with addresses" : "")}.");
        await db.SaveChangesAsync(ct);
        await services.Audit.RecordAsync(null, "audit.exported", $"{incidentId}:{entries.Count}{(services.IsPerson ? ":addresses" : "")}", ct: CancellationToken.None);
        return TypedResults.File(JsonSerializer.SerializeToUtf8Bytes(export, ExportJson),
            "application/json", $"incident-{incidentId}-audit-{now.UtcDateTime:yyyyMMddTHHmmssZ}.json");
    }

    private static string? Canonical(string? address) =>
        address is not null && System.Net.IPAddress.TryParse(address, out var ip) ? (ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip).ToString() : address;

    private static Dictionary<string, string[]>? Invalid(AuditSearchQuery q, bool isPerson, string? pageSizeError)
    {
        var errors = new Dictionary<string, string[]>();
        if (q.From is { } from && q.To is { } to && (to <= from || to - from > MaxRange))
        {
            errors["to"] = [$"Give from < to, at most {MaxRange.TotalDays:0} days apart."];
        }
        if (q.Actor is { Length: > AuditEntry.ActorIdLength } || q.Target is { Length: > AuditEntry.TargetLength } || q.Action is { Length: > AuditEntry.ActionLength }
            || q.Outcome is { Length: > AuditEntry.OutcomeLength })
        {
            errors["actor"] = ["actor, target, action and outcome are no longer than the audit fields (100, 200, 64, 16)."];
        }
        if (q.Address is { } address && !System.Net.IPAddress.TryParse(address, out _))
        {
            errors["address"] = ["Give an IP address."];
        }
        else if (q.Address is not null && !isPerson)
        {
            errors["address"] = ["People's addresses are sealed: only an administrator signed in with a second factor may search by address."];
        }
        if (q.Address is not null && (q.From is null || q.To is null))
        {
            errors["from"] = ["Searching by address needs a time range (from and to)."];
        }
        if (pageSizeError is not null)
        {
            errors["pageSize"] = [pageSizeError];
        }
        return errors.Count > 0 ? errors : null;
    }

    private static async Task<(List<FoundEntry> Entries, long? NextBefore)> FindAsync(ApiDbContext db, AuditLog log, AuditSearchQuery q, int size, bool openAddresses,
        CancellationToken ct)
    {
        // One spelling of an address: ::FFFF:10.0.0.1 and 10.0.0.1 are the same client, as are upper- and lower-case IPv6.
        q = q with { Address = Canonical(q.Address) };
        var query = Filter(db.AuditEntries.AsNoTracking(), q.From, q.To, q.Actor, q.Target, q.Action, q.Address, q.Outcome, q.Chain);
        if (q.Before is { } before)
        {
            query = query.Where(e => e.Id < before);
        }
        var found = new List<FoundEntry>();
        var scanned = 0;
        // Newest first, in batches: an address search opens sealed addresses until the page is full or the scan limit is reached.
        long? cursor = null;
        while (found.Count <= size)
        {
            var batchQuery = cursor is { } c ? query.Where(e => e.Id < c) : query;
            var batch = await batchQuery.OrderByDescending(e => e.Id).Take(Math.Min(1000, size + 1)).ToListAsync(ct);
            if (batch.Count == 0)
            {
                break;
            }
            foreach (var e in batch)
            {
                var address = openAddresses || e.IpSealed is null ? await log.ReadIpAddressAsync(e, ct) : "";
                if (q.Address is not null)
                {
                    scanned += e.IpSealed is null ? 0 : 1;
                    if (Canonical(address) != q.Address)
                    {
                        continue;
                    }
                }
                found.Add(new FoundEntry(e.Id, e.ChainId, e.At, e.ActorType, e.ActorId, e.Action, e.Target, e.Outcome, address));
                if (found.Count > size)
                {
                    break;
                }
            }
            cursor = batch[^1].Id;
            if (q.Address is not null && scanned >= MaxAddressScan)
            {
                break;
            }
        }
        var more = found.Count > size;
        var page = found.Take(size).ToList();
        // With an address the scan may stop early: the page says where to go on from.
        var next = more ? page[^1].Id : q.Address is not null && scanned >= MaxAddressScan ? cursor : null;
        return (page, next);
    }
}
