using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using ClippyBot.AppHost.Infrastructure;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Rig;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using static ClippyBot.Tests.Identity.AccountFlows;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Identity;

/// <summary>Mail delivery survives an SMTP outage without leaking content to logs; reset links die after their lifetime.</summary>
[TestClass]
public sealed class AccountMailTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task Mail_sent_while_the_SMTP_server_is_down_is_retried_and_delivered_and_logs_hold_no_link()
    {
        var ct = TestContext.CancellationToken;
        var downPort = LocalInfrastructureOptions.FreePort();
        var logs = new ConcurrentQueue<string>();
        await using var identity = await IdentityHost.StartAsync(ct, new Dictionary<string, string?>
        {
            ["Email:Port"] = downPort.ToString(CultureInfo.InvariantCulture),
            ["Email:MaxAttempts"] = "12",
            ["Email:FirstRetryDelay"] = "00:00:00.250",
        }, services => services.AddLogging(b => b.AddProvider(new CapturingLoggerProvider(logs))));

        using var browser = identity.Browser();
        var email = NewEmail();
        await RegisterAsync(browser, email, GoodPassword, ct);
        await Poll.UntilAsync(() => Task.FromResult(logs.Any(l => l.Contains("Retry", StringComparison.OrdinalIgnoreCase) || l.Contains("Execution attempt", StringComparison.Ordinal))),
            TimeSpan.FromSeconds(20), "a failed delivery attempt", ct);

        using var smtp = await TestSmtp.StartAsync(ct, downPort);
        var mail = await smtp.WaitForAsync(email, "Confirm your email address", ct);
        var token = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(TestSmtp.LinkIn(mail, "/account/confirm-email").Query)["token"].ToString();

        // The server has the message a moment before the sender logs that it is done.
        await Poll.UntilAsync(() => Task.FromResult(logs.Any(l => l.Contains("Email verify-email delivered", StringComparison.Ordinal))),
            TimeSpan.FromSeconds(10), "the delivery logged", ct);
        Assert.IsFalse(logs.Any(l => l.Contains(token, StringComparison.Ordinal)), "a token reached the logs");
        Assert.IsFalse(logs.Any(l => l.Contains(email, StringComparison.OrdinalIgnoreCase)), "the recipient address reached the logs");
    }

    [TestMethod]
    public async Task A_reset_link_older_than_24_hours_is_refused()
    {
        var ct = TestContext.CancellationToken;
        var clock = new ShiftedClock();
        await using var identity = await IdentityHost.StartAsync(ct, configureServices: s => s.AddSingleton<TimeProvider>(clock));
        using var browser = identity.Browser();
        var (email, _) = await RegisterWithMailAsync(browser, ct);
        using (await PostFormAsync(identity.Browser(), "/account/forgot-password", new Dictionary<string, string> { ["Email"] = email }, ct))
        {
        }
        var link = TestSmtp.LinkIn(await TestRig.Smtp.WaitForAsync(email, "Reset your ClippyBot password", ct), "/account/reset-password");
        StringAssert.Contains(await (await identity.Browser().GetAsync(link.PathAndQuery, ct)).Content.ReadAsStringAsync(ct), "Choose a new password");

        clock.Advance(TimeSpan.FromHours(24) + TimeSpan.FromMinutes(1));

        var page = await (await identity.Browser().GetAsync(link.PathAndQuery, ct)).Content.ReadAsStringAsync(ct);
        StringAssert.Contains(page, "expired or was already used");
    }
}
