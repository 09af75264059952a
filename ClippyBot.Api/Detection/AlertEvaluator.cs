using System.Text.Json;
using ClippyBot.Api.Data;
using ClippyBot.ServiceDefaults.Detection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ClippyBot.Api.Detection;

/// <summary>
/// Evaluates the alert rules on every Api replica (<c>Detection:EvaluationInterval</c>, default 15 s) against the shared
/// per-minute signal counts in Redis: a rule that fires opens an alert for its subject unless one is open (one episode, one
/// alert, one mail), keeps it up to date while it fires, and resolves it after the rule's quiet period.
/// </summary>
public sealed partial class AlertEvaluator(IServiceScopeFactory scopes, IConnectionMultiplexer redis, TimeProvider clock, IOptions<DetectionOptions> options,
    DetectionMetrics metrics, PluginSignalRelay relay, SecuritySignals signals, ClippyBot.ServiceDefaults.Data.MigrationStatus<ApiDbContext> migrations, IConfiguration configuration, ILogger<AlertEvaluator> logger)
    : PeriodicService(configuration, clock, logger)
{
    public const int SamplesPerAlert = 10;
    public const int SubjectsPerAlert = 10;

    /// <summary>Open alerts of one per-subject rule at most; further subjects share one roll-up alert (<see cref="ManySubjects"/>).</summary>
    public const int MaxOpenPerRule = 20;

    /// <summary>The roll-up alert's subject: an attacker who spreads over thousands of subjects gets one more alert, not thousands.</summary>
    public const string ManySubjects = "(many subjects)";

    /// <summary>A platform-wide count this many times the threshold fires whatever the baseline (a slow ramp must not hide).</summary>
    public const int BaselineCeilingFactor = 10;
    /// <summary>How alerts store their subjects and samples (and the endpoints read them back).</summary>
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    protected override string IntervalKey => "Detection:EvaluationInterval";

    protected override TimeSpan DefaultInterval => TimeSpan.FromSeconds(15);

    protected override async Task RunOnceAsync(CancellationToken ct)
    {
        if (migrations.Completed)
        {
            await RunRoundAsync(ct);
        }
    }

    /// <summary>One round: the PluginHost's new quarantines become signals, every rule is evaluated, new alerts are mailed.</summary>
    public async Task RunRoundAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        await relay.RelayAsync(scope.ServiceProvider.GetRequiredService<Plugins.PluginHostClient>(), ct);
        await EvaluateAsync(ct);
        await scope.ServiceProvider.GetRequiredService<AlertMail>().SendPendingAsync(ct);
    }

    /// <summary>One round over every enabled rule.</summary>
    public async Task EvaluateAsync(CancellationToken ct)
    {
        var now = Clock.GetUtcNow();
        var current = SecuritySignals.MinuteOf(now);
        var oldest = current - (long)(SecuritySignals.Retention.TotalMinutes - 1);
        var rules = options.Value.Rules.Where(r => r.Value.Enabled).ToList();
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ApiDbContext>();
        var open = await db.SecurityAlerts.Where(a => a.ResolvedAt == null).ToListAsync(ct);
        var openByKey = open.ToDictionary(a => (a.Rule, a.Subject));
        var openByRule = open.ToLookup(a => a.Rule, StringComparer.Ordinal);

        var reader = new SignalReader(redis.GetDatabase(), signals);
        foreach (var (name, rule) in rules)
        {
            var windowStart = current - rule.WindowMinutes + 1;
            foreach (var signal in rule.Signals)
            {
                reader.Whole(signal, windowStart, current);
                if (rule.BaselineFactor > 0)
                {
                    reader.Field(signal, windowStart - 60, windowStart - 1, SecuritySignals.TotalField);
                }
                foreach (var alert in openByRule[name].Where(a => a.Subject != ManySubjects))
                {
                    reader.Field(signal, Math.Max(oldest, EpisodeStart(alert, rule)), current, FieldOf(alert.Subject));
                }
            }
        }
        await reader.LoadAsync();
        // An erased account is named by no alert again (its signals stay in Redis for up to two hours).
        var named = reader.AllSubjects().Where(s => s.Length <= 100).ToList();
        var erased = (await db.AccountErasures.AsNoTracking().Where(e => named.Contains(e.SubjectId)).Select(e => e.SubjectId).ToListAsync(ct))
            .ToHashSet(StringComparer.Ordinal);

        foreach (var (name, rule) in rules)
        {
            var windowStart = current - rule.WindowMinutes + 1;
            var bySubject = new Dictionary<string, long>(StringComparer.Ordinal);
            long total = 0;
            foreach (var signal in rule.Signals)
            {
                for (var minute = windowStart; minute <= current; minute++)
                {
                    total += reader.Count(signal, minute, SecuritySignals.TotalField);
                    foreach (var (subject, count) in reader.Subjects(signal, minute).Where(s => !erased.Contains(s.Key)))
                    {
                        bySubject[subject] = bySubject.GetValueOrDefault(subject) + count;
                    }
                }
            }
            var firing = new Dictionary<string, long>(StringComparer.Ordinal);
            if (rule.PerSubject)
            {
                // Subjects with an open alert keep theirs; new ones get their own while the rule has room, then share one.
                var room = MaxOpenPerRule - openByRule[name].Count(a => a.Subject != ManySubjects);
                foreach (var (subject, count) in bySubject.Where(s => s.Value > rule.Threshold).OrderByDescending(s => s.Value).ThenBy(s => s.Key, StringComparer.Ordinal))
                {
                    if (openByKey.ContainsKey((name, subject)))
                    {
                        firing[subject] = count;
                    }
                    else if (room-- > 0)
                    {
                        firing[subject] = count;
                    }
                    else
                    {
                        firing[ManySubjects] = firing.GetValueOrDefault(ManySubjects) + count;
                    }
                }
            }
            else if (total > rule.Threshold
                     // Once open, an episode lasts while the count stays above the threshold: the attack itself must not become the baseline.
                     && (openByKey.ContainsKey((name, SecurityAlert.PlatformSubject)) || total > Baseline(reader, rule, windowStart) * rule.BaselineFactor
                         || total > Math.Max(1, rule.Threshold) * BaselineCeilingFactor))
            {
                firing[SecurityAlert.PlatformSubject] = total;
            }

            foreach (var (subject, count) in firing)
            {
                var rollUp = subject == ManySubjects;
                var subjects = rule.PerSubject && !rollUp
                    ? [new AlertSubject(subject, count)]
                    : bySubject.Where(s => !rollUp || (s.Value > rule.Threshold && !openByKey.ContainsKey((name, s.Key)) && !firing.ContainsKey(s.Key)))
                        .OrderByDescending(s => s.Value).ThenBy(s => s.Key, StringComparer.Ordinal).Take(SubjectsPerAlert).Select(s => new AlertSubject(s.Key, s.Value)).ToList();
                var existing = openByKey.GetValueOrDefault((name, subject));
                if (existing is null)
                {
                    await OpenAsync(name, rule, subject, count, subjects, Samples(reader, rule, subject, now - rule.Window, erased), now, ct);
                    continue;
                }
                var episode = 0L;
                foreach (var signal in rule.Signals)
                {
                    for (var minute = Math.Max(oldest, EpisodeStart(existing, rule)); minute <= current && !rollUp; minute++)
                    {
                        episode += reader.Count(signal, minute, FieldOf(subject));
                    }
                }
                existing.LastSeen = now;
                existing.Count = Math.Max(existing.Count, rollUp ? count : episode);
                existing.PeakWindowCount = Math.Max(existing.PeakWindowCount, count);
                existing.SubjectsJson = JsonSerializer.Serialize(subjects, Json);
                existing.SamplesJson = JsonSerializer.Serialize(Samples(reader, rule, subject, existing.FirstSeen - rule.Window, erased), Json);
            }
            foreach (var alert in openByRule[name].Where(a => !firing.ContainsKey(a.Subject) && a.LastSeen + rule.Quiet <= now))
            {
                alert.ResolvedAt = now;
                LogResolved(logger, name, alert.Id, alert.Count);
            }
        }
        // Open alerts of rules since removed or disabled end too.
        foreach (var alert in open.Where(a => !rules.Any(r => r.Key == a.Rule)))
        {
            alert.ResolvedAt = now;
        }
        await db.SaveChangesAsync(ct);
        // Resolved alerts are kept for investigation, then go (they name accounts and addresses); an incident's stay with it.
        var keepUntil = now - options.Value.Retention;
        await db.SecurityAlerts.Where(a => a.ResolvedAt != null && a.ResolvedAt < keepUntil && a.IncidentId == null).ExecuteDeleteAsync(ct);
        metrics.Firing = await db.SecurityAlerts.AsNoTracking().Where(a => a.ResolvedAt == null)
            .GroupBy(a => new { a.Rule, a.Severity }).Select(g => new DetectionMetrics.FiringCount(g.Key.Rule, g.Key.Severity, g.Count())).ToListAsync(ct);
    }

    private async Task OpenAsync(string name, AlertRule rule, string subject, long count, IReadOnlyList<AlertSubject> subjects, IReadOnlyList<AlertSample> samples,
        DateTimeOffset now, CancellationToken ct)
    {
        // Its own context: another replica may insert the same episode first, and that must not undo this round's updates.
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ApiDbContext>();
        var id = Guid.CreateVersion7(now);
        db.SecurityAlerts.Add(new SecurityAlert
        {
            Id = id,
            Rule = name,
            Severity = rule.Severity,
            Subject = subject,
            Description = rule.Description,
            Threshold = rule.Threshold,
            WindowMinutes = rule.WindowMinutes,
            FirstSeen = now,
            LastSeen = now,
            Count = count,
            PeakWindowCount = count,
            SubjectsJson = JsonSerializer.Serialize(subjects, Json),
            SamplesJson = JsonSerializer.Serialize(samples, Json),
        });
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException e) when (e.InnerException is Npgsql.PostgresException { SqlState: Npgsql.PostgresErrorCodes.UniqueViolation })
        {
            return; // another replica opened this episode a moment ago
        }
        metrics.Raised(name, rule.Severity);
        LogFired(logger, name, rule.Severity, id, count);
    }

    /// <summary>The first minute an episode counts: the window that first fired.</summary>
    private static long EpisodeStart(SecurityAlert alert, AlertRule rule) => SecuritySignals.MinuteOf(alert.FirstSeen) - rule.WindowMinutes + 1;

    private static string FieldOf(string subject) => subject == SecurityAlert.PlatformSubject ? SecuritySignals.TotalField : subject;

    /// <summary>The mean count of one window over the hour before this one.</summary>
    private static double Baseline(SignalReader reader, AlertRule rule, long windowStart)
    {
        long hour = 0;
        foreach (var signal in rule.Signals)
        {
            for (var minute = windowStart - 60; minute < windowStart; minute++)
            {
                hour += reader.Count(signal, minute, SecuritySignals.TotalField);
            }
        }
        return hour * rule.WindowMinutes / 60.0;
    }

    private static List<AlertSample> Samples(SignalReader reader, AlertRule rule, string subject, DateTimeOffset since, HashSet<string> erased) =>
        [.. rule.Signals.SelectMany(signal => reader.Samples(signal).Select(s => new AlertSample(s.At, signal, s.Subject, s.Detail)))
            .Where(s => s.At >= since && (subject == SecurityAlert.PlatformSubject || s.Subject == subject) && !erased.Contains(s.Subject))
            .OrderByDescending(s => s.At).Take(SamplesPerAlert)];

    // The alert's id, never its subject (an account or an address): the details are behind the administrator endpoints.
    [LoggerMessage(1, LogLevel.Warning, "Security alert {Rule} ({Severity}) fired: alert {AlertId}, {Count} in its window")]
    private static partial void LogFired(ILogger logger, string rule, string severity, Guid alertId, long count);

    [LoggerMessage(2, LogLevel.Information, "Security alert {Rule} resolved: alert {AlertId} after {Count} occurrences")]
    private static partial void LogResolved(ILogger logger, string rule, Guid alertId, long count);
}
