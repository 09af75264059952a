using System.Text.Json;
using ClippyBot.Security;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

using ClippyBot.ServiceDefaults;

namespace ClippyBot.Email;

/// <summary>Which mail goes first when the outbox is busy, and which is subject to the per-recipient limit.</summary>
public enum MailPriority
{
    /// <summary>A link a person is waiting for to get back into their account (password reset).</summary>
    Recovery = 0,

    /// <summary>Other links a person is waiting for (address verification).</summary>
    Security = 1,

    /// <summary>
    /// Notices of a change to the account (password changed, 2FA off, recovery code used): never limited per
    /// recipient, or whoever could trigger enough mail would silence them before taking an account over.
    /// </summary>
    SecurityNotice = 2,

    /// <summary>Unsolicited mail (someone tried to register your address): the kind a flood is made of; limited per recipient.</summary>
    Notice = 3,
}

/// <summary>A queued message: sealed (its links are credentials), keyed for rate limits by a hash of the recipient.</summary>
public sealed class OutboxMail
{
    public Guid Id { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public int Priority { get; set; }

    /// <summary>The template, for logs and metrics.</summary>
    public string Kind { get; set; } = "";

    /// <summary>A short hash of the recipient: per-recipient limits without the address.</summary>
    public string RecipientTag { get; set; } = "";

    /// <summary>The message (recipient, subject, bodies) sealed with AES-256-GCM under the service's key.</summary>
    public byte[] Sealed { get; set; } = [];

    public int Attempts { get; set; }

    public DateTimeOffset NextAttemptAt { get; set; }

    /// <summary>A replica sending it holds it until then (a crashed sender's claim runs out).</summary>
    public DateTimeOffset? ClaimedUntil { get; set; }

    /// <summary>Kept (without its content) for a day after sending, so per-recipient limits count sent mail.</summary>
    public DateTimeOffset? SentAt { get; set; }
}

public static class OutboxMailModel
{
    /// <summary>The outbox table in a service's own database (<c>MailOutbox</c>).</summary>
    public static ModelBuilder AddMailOutbox(this ModelBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Entity<OutboxMail>(mail =>
        {
            mail.ToTable("MailOutbox");
            mail.HasKey(m => m.Id);
            mail.Property(m => m.Kind).HasMaxLength(64);
            mail.Property(m => m.RecipientTag).HasMaxLength(16);
            mail.HasIndex(m => new { m.SentAt, m.Priority, m.NextAttemptAt });
            mail.HasIndex(m => new { m.RecipientTag, m.CreatedAt });
        });
        return builder;
    }
}

/// <summary>
/// Mail that must not be lost or crowded out: written to the service's database (sealed) in the request, sent by
/// <see cref="DurableEmailDeliveryService{TContext}"/> on any replica (each message claimed by one), retried with
/// back-off across restarts, in <see cref="MailPriority"/> order. Unlike a bounded in-memory queue, a flood cannot make
/// it drop a reset link: there is no "full"; unsolicited mail has an hourly limit per recipient
/// (<see cref="EmailOptions.MaxPerRecipientPerHour"/>) whose refusals are logged and counted, never dropped silently.
/// Links and security notices are limited where they are asked for (one link a minute per account), not here.
/// </summary>
public sealed partial class DurableEmailOutbox<TContext>(
    IServiceScopeFactory scopes, DurableEmailKey key, TimeProvider time, IOptions<EmailOptions> options, SecurityMetrics metrics,
    ILogger<DurableEmailOutbox<TContext>> logger) : IDisposable where TContext : DbContext
{
    internal const string SealPurpose = "mail-outbox";

    private readonly SemaphoreSlim _signal = new(0);

    /// <summary>Queues <paramref name="message"/>; false when its recipient is over the hourly limit (logged and counted).</summary>
    public async Task<bool> EnqueueAsync(EmailMessage message, MailPriority priority, CancellationToken ct = default) =>
        await EnqueueTrackedAsync(message, priority, ct) is not null;

    /// <summary>
    /// Queues <paramref name="message"/> and returns its outbox id, whose row says when it was sent (<see cref="OutboxMail.SentAt"/>,
    /// kept a day) and is gone when delivery was given up; null when its recipient is over the hourly limit.
    /// </summary>
    public async Task<Guid?> EnqueueTrackedAsync(EmailMessage message, MailPriority priority, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        var now = time.GetUtcNow();
        var tag = key.RecipientTag(message.To);
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<TContext>();
        var notice = (int)MailPriority.Notice;
        if (priority == MailPriority.Notice
            && await db.Set<OutboxMail>().CountAsync(m => m.RecipientTag == tag && m.Priority == notice && m.CreatedAt > now.AddHours(-1), ct)
                >= options.Value.MaxPerRecipientPerHour)
        {
            metrics.EmailSent(message.Kind, delivered: false);
            LogRecipientLimited(logger, message.Kind, tag);
            return null;
        }
        var id = Guid.CreateVersion7(now);
        db.Set<OutboxMail>().Add(new OutboxMail
        {
            Id = id,
            CreatedAt = now,
            Priority = (int)priority,
            Kind = message.Kind,
            RecipientTag = tag,
            Sealed = key.Protector.Seal(JsonSerializer.SerializeToUtf8Bytes(message), SealPurpose, id.ToString()),
            NextAttemptAt = now,
        });
        await db.SaveChangesAsync(ct);
        _signal.Release();
        return id;
    }

    /// <summary>Wakes the sender on this replica at once (others poll).</summary>
    internal Task WaitForWorkAsync(TimeSpan poll, CancellationToken ct) => _signal.WaitAsync(poll, ct);

    public void Dispose() => _signal.Dispose();

    [LoggerMessage(LogLevel.Warning, "Email {Kind} to recipient {Recipient} refused: the recipient's hourly limit is used up")]
    private static partial void LogRecipientLimited(ILogger logger, string kind, string recipient);
}

/// <summary>The durable outbox's keys: sealing, and a keyed recipient tag (a plain hash of an address can be confirmed by guessing).</summary>
public sealed class DurableEmailKey(KeyProtector protector, byte[] tagKey)
{
    public KeyProtector Protector { get; } = protector;

    public string RecipientTag(string address) => Convert.ToHexStringLower(KeyedHash.Compute(tagKey, address.Trim().ToUpperInvariant()))[..16];
}

/// <summary>Sends the durable outbox: claims due messages one by one (a conditional update, so replicas never send one twice), security mail first.</summary>
public sealed partial class DurableEmailDeliveryService<TContext>(
    IServiceScopeFactory scopes, DurableEmailOutbox<TContext> outbox, DurableEmailKey key, TimeProvider time, IOptions<EmailOptions> options,
    SecurityMetrics metrics, ILogger<DurableEmailDeliveryService<TContext>> logger) : BackgroundService where TContext : DbContext
{
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(2);
    // Mail queued on this replica wakes the sender at once; the poll picks up other replicas' mail and retries that fall due.
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(5);
    private DateTimeOffset _lastPrune;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                while (await SendNextAsync(stoppingToken))
                {
                }
                await PruneAsync(stoppingToken);
                await outbox.WaitForWorkAsync(Poll, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // The database is away (or full of connections): the mail is safe in it; try again shortly. A background
                // service that throws stops the host, so nothing may escape this loop.
                LogStoreUnavailable(logger, e.GetType().Name);
                await Task.Delay(Poll, time, stoppingToken);
            }
        }
    }

    /// <summary>Claims and sends one due message; false when none is due.</summary>
    private async Task<bool> SendNextAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<TContext>();
        var mails = db.Set<OutboxMail>();
        var now = time.GetUtcNow();
        var candidates = await mails.AsNoTracking()
            .Where(m => m.SentAt == null && m.NextAttemptAt <= now && (m.ClaimedUntil == null || m.ClaimedUntil < now))
            .OrderBy(m => m.Priority).ThenBy(m => m.CreatedAt)
            .Select(m => m.Id).Take(8).ToListAsync(ct);
        foreach (var id in candidates)
        {
            var claimedUntil = now + Lease;
            var claimed = await mails.Where(m => m.Id == id && m.SentAt == null && (m.ClaimedUntil == null || m.ClaimedUntil < now))
                .ExecuteUpdateAsync(s => s.SetProperty(m => m.ClaimedUntil, claimedUntil).SetProperty(m => m.Attempts, m => m.Attempts + 1), ct);
            if (claimed == 1)
            {
                var mail = await mails.AsNoTracking().SingleAsync(m => m.Id == id, ct);
                await DeliverAsync(mails, mail, ct);
                return true;
            }
        }
        return false;
    }

    private async Task DeliverAsync(DbSet<OutboxMail> mails, OutboxMail mail, CancellationToken ct)
    {
        var settings = options.Value;
        try
        {
            var message = JsonSerializer.Deserialize<EmailMessage>(key.Protector.Open(mail.Sealed, DurableEmailOutbox<TContext>.SealPurpose, mail.Id.ToString()))!;
            await EmailDeliveryService.SendAsync(message, settings, ct);
            // Sent: the content goes at once; the row stays a day for the per-recipient limit.
            await mails.Where(m => m.Id == mail.Id).ExecuteUpdateAsync(s => s
                .SetProperty(m => m.SentAt, time.GetUtcNow()).SetProperty(m => m.Sealed, Array.Empty<byte>()).SetProperty(m => m.ClaimedUntil, (DateTimeOffset?)null), ct);
            metrics.EmailSent(mail.Kind, delivered: true);
            LogDelivered(logger, mail.Kind, mail.RecipientTag, mail.Attempts);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            if (mail.Attempts >= settings.MaxAttempts || !EmailDeliveryService.IsTransient(e))
            {
                await mails.Where(m => m.Id == mail.Id).ExecuteDeleteAsync(CancellationToken.None);
                metrics.EmailSent(mail.Kind, delivered: false);
                LogGaveUp(logger, mail.Kind, mail.RecipientTag, mail.Attempts, e.GetType().Name);
                return;
            }
            var delay = settings.FirstRetryDelay * Math.Pow(2, Math.Min(mail.Attempts - 1, 16));
            await mails.Where(m => m.Id == mail.Id).ExecuteUpdateAsync(s => s
                .SetProperty(m => m.NextAttemptAt, time.GetUtcNow() + delay).SetProperty(m => m.ClaimedUntil, (DateTimeOffset?)null), CancellationToken.None);
            LogRetry(logger, mail.Kind, mail.RecipientTag, mail.Attempts, e.GetType().Name);
        }
    }

    private async Task PruneAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        if (now - _lastPrune < TimeSpan.FromMinutes(10))
        {
            return;
        }
        _lastPrune = now;
        await using var scope = scopes.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<TContext>().Set<OutboxMail>()
            .Where(m => m.SentAt != null && m.SentAt < now.AddDays(-1)).ExecuteDeleteAsync(ct);
    }

    [LoggerMessage(LogLevel.Information, "Email {Kind} delivered to recipient {Recipient} (attempt {Attempt})")]
    private static partial void LogDelivered(ILogger logger, string kind, string recipient, int attempt);

    [LoggerMessage(LogLevel.Warning, "Email {Kind} to recipient {Recipient}: attempt {Attempt} failed ({Error}); retrying later")]
    private static partial void LogRetry(ILogger logger, string kind, string recipient, int attempt, string error);

    [LoggerMessage(LogLevel.Error, "Email {Kind} to recipient {Recipient} given up after {Attempt} attempts ({Error})")]
    private static partial void LogGaveUp(ILogger logger, string kind, string recipient, int attempt, string error);

    [LoggerMessage(LogLevel.Warning, "Mail outbox unavailable ({Error}); retrying")]
    private static partial void LogStoreUnavailable(ILogger logger, string error);
}
