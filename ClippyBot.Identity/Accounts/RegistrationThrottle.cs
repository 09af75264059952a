using ClippyBot.ServiceDefaults.Edge;
using System.Net;
using ClippyBot.Identity.Edge;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using ClippyBot.ServiceDefaults.Redis;

namespace ClippyBot.Identity.Accounts;

/// <summary>Configuration section <c>RegistrationThrottle</c>.</summary>
public sealed class RegistrationThrottleOptions
{
    public const string SectionName = "RegistrationThrottle";

    /// <summary>Registrations one address (an IPv6 /64) may submit per window; each costs an Argon2id hash and a mail.</summary>
    public int MaxPerWindow { get; set; } = 5;

    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>At most one "someone tried to register with your address" mail per recipient in this period.</summary>
    public TimeSpan ExistingAccountMailInterval { get; set; } = TimeSpan.FromHours(1);
}

/// <summary>
/// Sign-up limits, shared by replicas through Redis: registrations per address per window, and how often the owner of an
/// existing address is told that someone tried to register it — without that, the form mails any address we know of as
/// often as someone submits it (mail bombing from our own domain). The recipient is keyed by a hash, not the address.
/// </summary>
public sealed class RegistrationThrottle(IConnectionMultiplexer redis, IOptions<RegistrationThrottleOptions> options, TimeProvider time,
    AccountSecurity.AccountSecrets secrets)
{
    private const string CounterPrefix = "clippybot:registrations:";
    private const string WarnedPrefix = "clippybot:account-exists-mailed:";

    /// <summary>Counts a registration from <paramref name="address"/>; false when the address has used up its window.</summary>
    public async Task<bool> TryCountAsync(IPAddress? address)
    {
        var settings = options.Value;
        var (count, _) = await FixedWindowCounter.CountAsync(redis.GetDatabase(), CounterPrefix, ClientAddressKey.Of(address), settings.Window, time.GetUtcNow());
        return count <= settings.MaxPerWindow;
    }

    /// <summary>True for the first call per recipient per interval: only then is the owner mailed.</summary>
    public Task<bool> MayWarnOwnerAsync(string email)
    {
        // Keyed: a plain hash of an address in Redis could be confirmed by hashing guesses.
        var digest = secrets.Hasher.Hash(email.Trim().ToUpperInvariant());
        return redis.GetDatabase().StringSetAsync(WarnedPrefix + digest, 1, options.Value.ExistingAccountMailInterval, When.NotExists);
    }
}
