using System.Security.Claims;
using System.Threading.Channels;
using ClippyBot.Api.Authentication;
using ClippyBot.Api.Data;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.ApiKeys;

/// <summary>
/// When a person ends every session ("sign out everywhere", a password reset, an administrator's containment), the API
/// keys they created before that moment end too. Requests check the marker at once (<see cref="RevocationMarkers"/>);
/// this service makes it durable — each subject-wide marker the mirror applies revokes those keys in the database, so
/// they stay revoked after the marker expires, even if never used meanwhile.
/// </summary>
public sealed partial class CreatorRevocation : BackgroundService
{
    private readonly Channel<(string Subject, long Before)> _pending = Channel.CreateBounded<(string, long)>(
        new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private readonly IServiceScopeFactory _scopes;
    private readonly RevocationMarkers _markers;
    private readonly TimeProvider _time;
    private readonly ILogger<CreatorRevocation> _logger;

    public CreatorRevocation(IServiceScopeFactory scopes, RevocationMarkers markers, TimeProvider time, ILogger<CreatorRevocation> logger)
    {
        (_scopes, _markers, _time, _logger) = (scopes, markers, time, logger);
        // Subscribed from the start, so markers loaded before the worker runs are queued too.
        _markers.SubjectRevoked += Enqueue;
    }

    /// <summary>Revokes the calling key and its creator's other keys from before the marker (the request path).</summary>
    public async Task RevokeKeyAsync(ClaimsPrincipal key, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.FindFirstValue(ApiKeyClaims.CreatedBy) is { } creator && long.TryParse(key.FindFirstValue(ApiKeyClaims.CreatedAt), out var createdAt))
        {
            await RevokeAsync(creator, createdAt, ct);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var (subject, before) in _pending.Reader.ReadAllAsync(stoppingToken))
            {
                try
                {
                    await RevokeAsync(subject, before, stoppingToken);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
#pragma warning disable CA1031 // Whatever fails, the worker keeps running (an exception here would stop the host).
                catch (Exception e)
#pragma warning restore CA1031
                {
                    // The request path still refuses the keys while the marker lives; the next announcement or load retries.
                    LogFailed(_logger, e.GetType().Name);
                }
            }
        }
        finally
        {
            _markers.SubjectRevoked -= Enqueue;
        }
    }

    private void Enqueue(string subject, long before)
    {
        if (!_pending.Writer.TryWrite((subject, before)))
        {
            LogDropped(_logger);
        }
    }

    private async Task RevokeAsync(string subject, long before, CancellationToken ct)
    {
        var cutoff = DateTimeOffset.FromUnixTimeSeconds(before);
        var now = _time.GetUtcNow();
        await using var scope = _scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ApiDbContext>();
        var audit = scope.ServiceProvider.GetRequiredService<Audit.AuditLog>();
        // Whole seconds, as for tokens: a key created in the marker's own second may predate it, so it ends too.
        var keys = await db.ApiKeys.Where(k => k.CreatedBy == subject && k.RevokedAt == null && k.CreatedAt < cutoff.AddSeconds(1))
            .Select(k => new { k.Id, k.WorkspaceId }).ToListAsync(ct);
        foreach (var key in keys)
        {
            // One by one and conditional, so a concurrent revocation is recorded once.
            if (await db.ApiKeys.Where(k => k.Id == key.Id && k.RevokedAt == null).ExecuteUpdateAsync(s => s.SetProperty(k => k.RevokedAt, now), ct) > 0)
            {
                await audit.RecordAsync(key.WorkspaceId, "api_key.revoked", $"{key.Id}:creator-signed-out-everywhere", ct: ct);
            }
        }
        if (keys.Count > 0)
        {
            LogRevoked(_logger, keys.Count);
        }
    }

    [LoggerMessage(LogLevel.Information, "Revoked {Count} API key(s) whose creator ended every session")]
    private static partial void LogRevoked(ILogger logger, int count);

    [LoggerMessage(LogLevel.Warning, "API keys of a person who ended every session could not be revoked yet ({Error})")]
    private static partial void LogFailed(ILogger logger, string error);

    [LoggerMessage(LogLevel.Warning, "Too many pending key revocations; one was dropped (its keys are still refused while the marker lives)")]
    private static partial void LogDropped(ILogger logger);
}
