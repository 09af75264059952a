using System.Security.Cryptography;
using System.Text;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MimeKit;
using Polly;
using Polly.Registry;

using ClippyBot.ServiceDefaults;

namespace ClippyBot.Email;

/// <summary>
/// Sends queued mail over SMTP with MailKit. Each message is retried with exponential back-off (resilience pipeline
/// <see cref="PipelineName"/>); logs name the template and a short hash of the recipient, never the content.
/// </summary>
public sealed partial class EmailDeliveryService(
    EmailOutbox outbox, IOptions<EmailOptions> options, ResiliencePipelineProvider<string> pipelines, ILogger<EmailDeliveryService> logger,
    SecurityMetrics metrics) : BackgroundService
{
    public const string PipelineName = "email-delivery";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var pipeline = pipelines.GetPipeline(PipelineName);
        // Two senders: one slow message does not hold up the next.
        await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => DeliverAsync(pipeline, stoppingToken)));
    }

    private async Task DeliverAsync(ResiliencePipeline pipeline, CancellationToken ct)
    {
        try
        {
            await foreach (var message in outbox.Reader.ReadAllAsync(ct))
            {
                var recipient = RecipientTag(message.To);
                try
                {
                    await pipeline.ExecuteAsync(async token => await SendAsync(message, options.Value, token), ct);
                    metrics.EmailSent(message.Kind, delivered: true);
                    LogDelivered(message.Kind, recipient);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    metrics.EmailSent(message.Kind, delivered: false);
                    LogGaveUp(message.Kind, recipient, e.GetType().Name);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>One message over one SMTP connection (both outboxes send through this).</summary>
    internal static async Task SendAsync(EmailMessage message, EmailOptions settings, CancellationToken ct)
    {
        var mime = new MimeMessage();
        mime.From.Add(new MailboxAddress(settings.FromName, settings.FromAddress));
        mime.To.Add(MailboxAddress.Parse(message.To));
        mime.Subject = message.Subject;
        mime.Body = new BodyBuilder { TextBody = message.Text, HtmlBody = message.Html }.ToMessageBody();

        using var client = new SmtpClient();
        client.Timeout = 30_000;
        var security = settings.Security switch
        {
            SmtpSecurity.Implicit => SecureSocketOptions.SslOnConnect,
            SmtpSecurity.None => SecureSocketOptions.None,
            _ => SecureSocketOptions.StartTls,
        };
        await client.ConnectAsync(settings.Host, settings.Port, security, ct);
        if (!string.IsNullOrEmpty(settings.UserName))
        {
            await client.AuthenticateAsync(settings.UserName, settings.Password, ct);
        }
        await client.SendAsync(mime, ct);
        await client.DisconnectAsync(quit: true, ct);
    }

    /// <summary>Enough to follow one recipient's mail through the logs without writing the address down.</summary>
    internal static string RecipientTag(string address) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(address.Trim().ToUpperInvariant())))[..12];

    /// <summary>Failures worth another attempt: the server or the network, not a malformed message.</summary>
    internal static bool IsTransient(Exception e) => e is SmtpCommandException { StatusCode: >= (SmtpStatusCode)400 and < (SmtpStatusCode)500 }
        or SmtpProtocolException or ServiceNotConnectedException or IOException or System.Net.Sockets.SocketException or TimeoutException
        or SslHandshakeException;

    [LoggerMessage(LogLevel.Information, "Email {Kind} delivered to recipient {Recipient}")]
    private partial void LogDelivered(string kind, string recipient);

    [LoggerMessage(LogLevel.Error, "Email {Kind} to recipient {Recipient} given up after retries ({Error})")]
    private partial void LogGaveUp(string kind, string recipient, string error);
}
