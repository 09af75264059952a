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
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

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
                foreach (var alert in open.Where(a => a.Rule == name))
                {
                    reader.Field(signal, Math.Max(oldest, EpisodeStart(alert, rule)), current, FieldOf(alert.Subject));
                }
            }
        }
        await reader.LoadAsync();

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
                    foreach (var (subject, count) in reader.Subjects(signal, minute))
                    {
                        bySubject[subject] = bySubject.GetValueOrDefault(subject) + count;
                    }
                }
            }
            var firing = new Dictionary<string, long>(StringComparer.Ordinal);
            if (rule.PerSubject)
            {
                foreach (var (subject, count) in bySubject.Where(s => s.Value > rule.Threshold))
                {
                    firing[subject] = count;
                }
            }
            else if (total > rule.Threshold && total > Baseline(reader, rule, windowStart) * rule.BaselineFactor)
            {
                firing[SecurityAlert.PlatformSubject] = total;
            }

            foreach (var (subject, count) in firing)
            {
                var subjects = rule.PerSubject
                    ? [new AlertSubject(subject, count)]
                    : bySubject.OrderByDescending(s => s.Value).ThenBy(s => s.Key, StringComparer.Ordinal).Take(SubjectsPerAlert).Select(s => new AlertSubject(s.Key, s.Value)).ToList();
                var existing = open.FirstOrDefault(a => a.Rule == name && a.Subject == subject);
                if (existing is null)
                {
                    await OpenAsync(name, rule, subject, count, subjects, Samples(reader, rule, subject, now - rule.Window), now, ct);
                    continue;
                }
                var episode = 0L;
                foreach (var signal in rule.Signals)
                {
                    for (var minute = Math.Max(oldest, EpisodeStart(existing, rule)); minute <= current; minute++)
                    {
                        episode += reader.Count(signal, minute, FieldOf(subject));
                    }
                }
                existing.LastSeen = now;
                existing.Count = Math.Max(existing.Count, episode);
                existing.PeakWindowCount = Math.Max(existing.PeakWindowCount, count);
                existing.SubjectsJson = JsonSerializer.Serialize(subjects, Json);
                existing.SamplesJson = JsonSerializer.Serialize(Samples(reader, rule, subject, existing.FirstSeen - rule.Window), Json);
            }
            foreach (var alert in open.Where(a => a.Rule == name && !firing.ContainsKey(a.Subject) && a.LastSeen + rule.Quiet <= now))
            {
                alert.ResolvedAt = now;
                LogResolved(logger, name, alert.Subject, alert.Count);
            }
        }
        // Open alerts of rules since removed or disabled end too.
        foreach (var alert in open.Where(a => !rules.Any(r => r.Key == a.Rule)))
        {
            alert.ResolvedAt = now;
        }
        await db.SaveChangesAsync(ct);
        metrics.Firing = await db.SecurityAlerts.AsNoTracking().Where(a => a.ResolvedAt == null)
            .GroupBy(a => new { a.Rule, a.Severity }).Select(g => new DetectionMetrics.FiringCount(g.Key.Rule, g.Key.Severity, g.Count())).ToListAsync(ct);
    }

    private async Task OpenAsync(string name, AlertRule rule, string subject, long count, IReadOnlyList<AlertSubject> subjects, IReadOnlyList<AlertSample> samples,
        DateTimeOffset now, CancellationToken ct)
    {
        // Its own context: another replica may insert the same episode first, and that must not undo this round's updates.
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ApiDbContext>();
        db.SecurityAlerts.Add(new SecurityAlert
        {
            Id = Guid.CreateVersion7(now),
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
        catch (DbUpdateException)
        {
            return; // another replica opened this episode a moment ago
        }
        metrics.Raised(name, rule.Severity);
        LogFired(logger, name, rule.Severity, subject, count);
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

    private static List<AlertSample> Samples(SignalReader reader, AlertRule rule, string subject, DateTimeOffset since) =>
        [.. rule.Signals.SelectMany(signal => reader.Samples(signal).Select(s => new AlertSample(s.At, signal, s.Subject, s.Detail)))
            .Where(s => s.At >= since && (subject == SecurityAlert.PlatformSubject || s.Subject == subject))
            .OrderByDescending(s => s.At).Take(SamplesPerAlert)];

    [LoggerMessage(1, LogLevel.Warning, "Security alert {Rule} ({Severity}) fired for {Subject}: {Count} in its window")]
    private static partial void LogFired(ILogger logger, string rule, string severity, string subject, long count);

    [LoggerMessage(2, LogLevel.Information, "Security alert {Rule} for {Subject} resolved after {Count} occurrences")]
    private static partial void LogResolved(ILogger logger, string rule, string subject, long count);
}
