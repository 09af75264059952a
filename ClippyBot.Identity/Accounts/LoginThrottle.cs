using ClippyBot.ServiceDefaults.Edge;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.Options;
using ClippyBot.ServiceDefaults.Data;
using StackExchange.Redis;
using ClippyBot.ServiceDefaults.Redis;

namespace ClippyBot.Identity.Accounts;

/// <summary>Configuration section <c>LoginThrottle</c>.</summary>
public sealed class LoginThrottleOptions
{
    public const string SectionName = "LoginThrottle";

    public int MaxAttemptsPerWindow { get; set; } = 20;

    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// Per-IP limit on failed sign-in attempts (wrong password, unknown account, locked account, wrong second factor) and on
/// password-reset requests, counted in Redis so it holds across replicas (fixed window). Complements per-account lockout,
/// which alone lets one IP try one password against many accounts. A successful sign-in is not counted: an office behind
/// one address is not locked out by its own people signing in.
/// </summary>
/// <remarks>
/// An address with nothing counted costs no Redis round trip: every replica knows which addresses have counts, because
/// the first failure of an address in a window is announced (Redis pub/sub) and each replica loads the current counters
/// when it subscribes. Such an address — for its window and the next — and every address while this replica is not
/// subscribed, is decided exactly: the attempt is counted before it runs (atomic, so concurrent guesses cannot pass the
/// limit) and given back if it succeeds. Only an address's very first failures, racing each other before any is
/// counted, are not checked beforehand; they are counted all the same.
/// </remarks>
public sealed partial class LoginThrottle : IDisposable
{
    private const string KeyPrefix = "clippybot:login-attempts:";
    private static readonly RedisChannel Channel = RedisChannel.Literal("clippybot:login-attempts");

    private readonly IConnectionMultiplexer _redis;
    private readonly IOptions<LoginThrottleOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger<LoginThrottle> _logger;
    // Address → the last window in which it is decided exactly.
    private readonly ConcurrentDictionary<string, long> _counted = new(StringComparer.Ordinal);
    private readonly RedisMirror _mirror;
    private long _sweptWindow;

    public LoginThrottle(IConnectionMultiplexer redis, IOptions<LoginThrottleOptions> options, TimeProvider time, ILogger<LoginThrottle> logger)
    {
        _redis = redis;
        _options = options;
        _time = time;
        _logger = logger;
        _mirror = new RedisMirror(redis, Channel, message =>
        {
            var text = message.ToString();
            var separator = text.IndexOf('|', StringComparison.Ordinal);
            if (separator > 0 && long.TryParse(text.AsSpan(0, separator), NumberStyles.None, CultureInfo.InvariantCulture, out var window))
            {
                MarkCounted(text[(separator + 1)..], window);
            }
        });
    }

    /// <summary>Starts an attempt from <paramref name="address"/>; refused when the address has used up its window.</summary>
    public async Task<LoginAttempt> BeginAsync(IPAddress? address)
    {
        var subject = ClientAddressKey.Of(address);
        var window = CurrentWindow();
        if (!_mirror.Loaded)
        {
            _ = LoadAsync();
        }
        else if (!IsCounted(subject, window))
        {
            return new LoginAttempt(subject, window, Allowed: true, Reserved: false);
        }
        var count = await IncrementAsync(subject, window);
        return new LoginAttempt(subject, window, count <= _options.Value.MaxAttemptsPerWindow, Reserved: true);
    }

    /// <summary>The attempt failed (or is one that always counts, like a reset request): counted, if it is not yet.</summary>
    public async Task CountAsync(LoginAttempt attempt)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        if (!attempt.Reserved)
        {
            await IncrementAsync(attempt.Subject, attempt.Window);
        }
        if (MarkCounted(attempt.Subject, attempt.Window))
        {
            // The other replicas decide this address exactly from now on.
            await _redis.GetSubscriber().PublishAsync(Channel, string.Create(CultureInfo.InvariantCulture, $"{attempt.Window}|{attempt.Subject}"));
        }
    }

    /// <summary>The attempt succeeded: a count taken for it beforehand is given back.</summary>
    public async Task ForgiveAsync(LoginAttempt attempt)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        if (attempt.Reserved && attempt.Allowed)
        {
            await FixedWindowCounter.IncrementAsync(_redis.GetDatabase(), Key(attempt.Subject, attempt.Window), _options.Value.Window, by: -1);
        }
    }

    /// <summary>Subscribes (once), then loads the addresses counted in this window and the last; answers from memory after.</summary>
    public async Task LoadAsync()
    {
        if (await _mirror.LoadAsync(LoadCountedAsync, e => LogLoadFailed(_logger, e.GetType().Name)))
        {
            LogLoaded(_logger, _counted.Count);
        }
    }

    private async Task LoadCountedAsync(IServer server, IDatabase database)
    {
        var current = CurrentWindow();
        foreach (var window in new[] { current - 1, current })
        {
            var suffix = string.Create(CultureInfo.InvariantCulture, $":{window}");
            await foreach (var key in server.KeysAsync(database.Database, Key("*", window), pageSize: 1000))
            {
                // (A counter back at zero holds only attempts that were given back.)
                if ((long?)await database.StringGetAsync(key) > 0)
                {
                    var text = key.ToString();
                    MarkCounted(text[KeyPrefix.Length..^suffix.Length], window);
                }
            }
        }
    }

    private Task<long> IncrementAsync(string subject, long window) =>
        FixedWindowCounter.IncrementAsync(_redis.GetDatabase(), Key(subject, window), _options.Value.Window);

    private bool IsCounted(string subject, long window) => _counted.TryGetValue(subject, out var until) && until >= window;

    /// <summary>
    /// Exact for the window of the count and the next one, so a new window does not start with unchecked guesses; true
    /// when this replica did not know yet.
    /// </summary>
    private bool MarkCounted(string subject, long window)
    {
        var known = IsCounted(subject, window + 1);
        _counted.AddOrUpdate(subject, window + 1, (_, until) => Math.Max(until, window + 1));
        var current = CurrentWindow();
        if (Interlocked.Exchange(ref _sweptWindow, current) != current)
        {
            foreach (var entry in _counted.Where(e => e.Value < current))
            {
                _counted.TryRemove(entry);
            }
        }
        return !known;
    }

    private long CurrentWindow() => FixedWindowCounter.WindowOf(_time.GetUtcNow(), _options.Value.Window);

    private static string Key(string subject, long window) => FixedWindowCounter.Key(KeyPrefix, subject, window);

    public void Dispose() => _mirror.Dispose();

    [LoggerMessage(LogLevel.Information, "Login throttle subscribed ({Count} addresses with counts)")]
    private static partial void LogLoaded(ILogger logger, int count);

    [LoggerMessage(LogLevel.Warning, "Login throttle could not load its counters ({Error}); deciding every attempt on Redis meanwhile")]
    private static partial void LogLoadFailed(ILogger logger, string error);
}

/// <summary>One attempt from one address: whether it may go on, and whether it was counted before it ran.</summary>
public sealed record LoginAttempt(string Subject, long Window, bool Allowed, bool Reserved);
