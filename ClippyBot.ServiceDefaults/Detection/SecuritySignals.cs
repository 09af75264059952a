using System.Globalization;
using ClippyBot.Contracts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace ClippyBot.ServiceDefaults.Detection;

/// <summary>
/// Security signals every service raises for the Api's alert rules (Detection): each is counted per minute in one Redis
/// hash per signal — field <c>*</c> the total, one field per subject — and a few recent samples are kept in a list, so every
/// replica of every service adds to one shared view and every Api replica evaluates the same numbers. Raising never waits
/// and never fails the request: the commands are fire-and-forget, and a Redis outage costs signals, not requests.
/// A replica adds at most <see cref="MaxSubjectsPerMinute"/> distinct subjects to a signal per minute (the rest count as
/// <see cref="OtherSubjects"/>), so a flood from many addresses cannot grow the hash without bound.
/// </summary>
public sealed partial class SecuritySignals(IServiceProvider services, TimeProvider time, IHostEnvironment environment, Microsoft.Extensions.Configuration.IConfiguration configuration,
    SecurityMetrics metrics, ILogger<SecuritySignals> logger)
{
    public const string DefaultKeyPrefix = SecuritySignalKeys.DefaultPrefix;
    public const string TotalField = SecuritySignalKeys.TotalField;
    public const string OtherSubjects = "(other)";
    public const int MaxSubjectsPerMinute = 1000;
    public const int SamplesKept = SecuritySignalKeys.SamplesKept;
    public const int MaxSubjectLength = 200;
    public const int MaxDetailLength = 300;

    public static readonly TimeSpan Retention = SecuritySignalKeys.Retention;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, (long Minute, HashSet<string> Subjects)> _admitted = new(StringComparer.Ordinal);

    /// <summary>
    /// Where the counts live (<c>Signals:KeyPrefix</c>): every service of one deployment must use the same; the AppHost's
    /// Redis users may write only under <c>clippybot:signals:{their service}:</c>. Tests give each stack its own.
    /// </summary>
    public string KeyPrefix { get; } = configuration["Signals:KeyPrefix"] is { Length: > 0 } prefix ? prefix : DefaultKeyPrefix;

    /// <summary>This service's name in signal names: <c>ClippyBot.Identity</c> → <c>identity</c>.</summary>
    public string Source { get; } = SourceOf(environment.ApplicationName);

    public static string SourceOf(string applicationName)
    {
        ArgumentNullException.ThrowIfNull(applicationName);
        var name = applicationName.StartsWith("ClippyBot.", StringComparison.Ordinal) ? applicationName["ClippyBot.".Length..] : applicationName;
        return name.ToLowerInvariant();
    }

    /// <summary>The per-minute hash of a qualified signal.</summary>
    public string BucketKey(string signal, long minute) => SecuritySignalKeys.BucketKey(KeyPrefix, signal, minute);

    /// <summary>The list of recent samples of a qualified signal: <c>{ticks}|{subject}|{detail}</c>, newest first.</summary>
    public string SamplesKey(string signal) => SecuritySignalKeys.SamplesKey(KeyPrefix, signal);

    public static long MinuteOf(DateTimeOffset at) => SecuritySignalKeys.MinuteOf(at);

    /// <summary>Counts one occurrence of <paramref name="name"/> (a <see cref="ClippyBot.Contracts.SecuritySignalNames"/> name) for <paramref name="subject"/>.</summary>
    public void Raise(string name, string subject, string detail = "")
    {
        ArgumentNullException.ThrowIfNull(name);
        var signal = ClippyBot.Contracts.SecuritySignalNames.Qualified(Source, name);
        metrics.SignalRaised(signal);
        if (services.GetService<IConnectionMultiplexer>() is not { } redis)
        {
            return; // a service without the cache (the PluginHost) reports through the Api
        }
        var now = time.GetUtcNow();
        var minute = MinuteOf(now);
        subject = Clean(subject, MaxSubjectLength);
        var field = Admit(signal, minute, subject) ? subject : OtherSubjects;
        try
        {
            var db = redis.GetDatabase();
            var key = BucketKey(signal, minute);
            var samples = SamplesKey(signal);
            const CommandFlags NoWait = CommandFlags.FireAndForget;
            _ = db.HashIncrementAsync(key, TotalField, 1, NoWait);
            _ = db.HashIncrementAsync(key, field, 1, NoWait);
            _ = db.KeyExpireAsync(key, Retention, NoWait);
            _ = db.ListLeftPushAsync(samples, SecuritySignalKeys.Sample(now, subject, Clean(detail, MaxDetailLength)), flags: NoWait);
            _ = db.ListTrimAsync(samples, 0, SamplesKept - 1, NoWait);
            _ = db.KeyExpireAsync(samples, Retention, NoWait);
        }
        catch (Exception e) when (e is RedisException or TimeoutException or ObjectDisposedException)
        {
            LogNotRaised(logger, signal, e.GetType().Name);
        }
    }

    /// <summary>A sample as <see cref="Raise"/> stored it, or null when it is not one.</summary>
    public static (DateTimeOffset At, string Subject, string Detail)? ParseSample(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var parts = value.Split('|', 3);
        return parts.Length == 3 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
               && ticks >= 0 && ticks <= DateTimeOffset.MaxValue.UtcTicks
            ? (new DateTimeOffset(ticks, TimeSpan.Zero), parts[1], parts[2])
            : null;
    }

    private bool Admit(string signal, long minute, string subject)
    {
        lock (_lock)
        {
            if (!_admitted.TryGetValue(signal, out var state) || state.Minute != minute)
            {
                state = (minute, new HashSet<string>(StringComparer.Ordinal));
                _admitted[signal] = state;
            }
            return state.Subjects.Contains(subject) || (state.Subjects.Count < MaxSubjectsPerMinute && state.Subjects.Add(subject));
        }
    }

    /// <summary>Bounded, and without the separator or control characters (a subject may come from a request).</summary>
    private static string Clean(string? value, int max)
    {
        value ??= "";
        if (value.Length > max)
        {
            value = value[..max];
        }
        return string.Create(value.Length, value, (span, v) =>
        {
            for (var i = 0; i < v.Length; i++)
            {
                span[i] = v[i] == '|' || char.IsControl(v[i]) ? '_' : v[i];
            }
        });
    }

    [LoggerMessage(1, LogLevel.Debug, "Security signal {Signal} not counted ({Error})")]
    private static partial void LogNotRaised(ILogger logger, string signal, string error);
}
