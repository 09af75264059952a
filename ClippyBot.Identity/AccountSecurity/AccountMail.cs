using ClippyBot.Email;
using Microsoft.AspNetCore.Http.Extensions;
using Microsoft.Extensions.Options;

namespace ClippyBot.Identity.AccountSecurity;

/// <summary>
/// The account emails, each in text and HTML, queued on the durable outbox in identitydb (sealed; links and resets a
/// person waits for go before notices). Links point at the configured public origin.
/// </summary>
public sealed class AccountMail(DurableEmailOutbox<Data.IdentityDataContext> outbox, IOptions<AccountSecurityOptions> options, IHttpContextAccessor http, IHostEnvironment environment)
{
    public Task VerifyEmail(string to, string token) => Send(MailPriority.Security, to, "verify-email", "Confirm your email address",
        "Confirm that this address is yours to finish setting up your ClippyBot account.",
        ("Confirm my address", Link("/account/confirm-email", token)),
        $"The link works once and expires in {Hours(options.Value.EmailVerificationLifetime)} hours. If you did not create an account, ignore this message.");

    public Task ResetPassword(string to, string token) => Send(MailPriority.Recovery, to, "reset-password", "Reset your ClippyBot password",
        "Someone — hopefully you — asked to reset the password of your ClippyBot account.",
        ("Choose a new password", Link("/account/reset-password", token)),
        $"The link works once and expires in {Hours(options.Value.PasswordResetLifetime)} hours; asking again replaces it. If it was not you, ignore this message: your password stays as it is.");

    /// <summary>Sent instead of a verification mail when someone registers an address that already has an account.</summary>
    public Task AccountExists(string to) => Send(MailPriority.Notice, to, "account-exists", "Someone tried to register with your address",
        "Someone tried to create a ClippyBot account with this address, which already has one. Nothing was changed.",
        ("Reset my password", Link("/account/forgot-password", null)),
        "If it was you, sign in or reset your password. If not, you can ignore this message.");

    public Task Notice(string to, string kind, string subject, string what) => Send(MailPriority.SecurityNotice, to, kind, subject, what,
        ("Review my account", Link("/account/manage", null)),
        "If this was not you, reset your password now and contact support: someone may have access to your account.");

    // Not cancelled with the request: a client that disconnects right after changing a password must not stop its notice.
    private Task<bool> Send(MailPriority priority, string to, string kind, string subject, string lead, (string Label, string Url) action, string footer) =>
        outbox.EnqueueAsync(EmailMessage.WithAction(to, kind, subject, lead, action.Label, action.Url, footer), priority, CancellationToken.None);

    private string Link(string path, string? token)
    {
        var origin = options.Value.PublicBaseUrl;
        if (string.IsNullOrWhiteSpace(origin))
        {
            // Only local development may fall back to the request's own origin (see AccountSecurityOptions.PublicBaseUrl).
            var request = http.HttpContext?.Request;
            origin = environment.IsLocal() && request is not null
                ? UriHelper.BuildAbsolute(request.Scheme, request.Host)
                : throw new InvalidOperationException("AccountSecurity:PublicBaseUrl is not set; links in emails cannot be built.");
        }
        var url = origin.TrimEnd('/') + path;
        return token is null ? url : $"{url}?token={Uri.EscapeDataString(token)}";
    }

    private static int Hours(TimeSpan lifetime) => (int)Math.Round(lifetime.TotalHours);
}
