using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Data;
using ClippyBot.Identity.Oidc;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using static ClippyBot.Tests.Identity.AccountFlows;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Identity;

/// <summary>
/// Identity tried as an attacker would: endpoint spellings that sidestep throttles, oversize parameters, registration and
/// mail floods, password oracles behind a session, pre-account takeover, stale authentication passed off as fresh,
/// administrators without a second factor, logout CSRF and a Host-header issuer. Each test reproduces one attack.
/// </summary>
[TestClass]
public sealed class AbuseTests
{
    /// <summary>Request header the test host turns into the connection's remote address (each test picks its own addresses).</summary>
    internal const string AddressHeader = "X-Test-Client-Address";

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    private static Task<ServiceFactory<IdentityDataContext>> StartAsync(CancellationToken ct, IDictionary<string, string?>? overrides = null,
        Action<IServiceCollection>? configure = null) =>
        IdentityHost.StartAsync(ct, overrides, services =>
        {
            services.AddSingleton<IStartupFilter>(new AddressFromHeader());
            configure?.Invoke(services);
        });

    internal static HttpClient From(HttpClient client, IPAddress address)
    {
        client.DefaultRequestHeaders.Add(AddressHeader, address.ToString());
        return client;
    }

    internal static IPAddress NewAddress() => new(RandomNumber.Bytes(4) is var b ? [10, b[1], b[2], (byte)(b[3] | 1)] : []);

    [TestMethod]
    public async Task Every_spelling_of_the_token_endpoint_is_throttled_like_the_canonical_path()
    {
        await using var identity = await StartAsync(Ct, new Dictionary<string, string?> { ["TokenThrottle:MaxFailuresPerWindow"] = "5" });
        using var client = From(identity.CreateClient(), NewAddress());

        foreach (var path in new[] { "/connect/token/", "/CONNECT/TOKEN", "/connect/token/", "/Connect/Token/", "/connect/token" })
        {
            var (status, _) = await PostTokenAsync(client, path, IdentityHost.ServiceClient, "wrong secret", Ct);
            Assert.AreEqual(HttpStatusCode.Unauthorized, status, path);
        }
        foreach (var path in new[] { "/connect/token/", "/CONNECT/TOKEN/", "/connect/token", "/connect/introspect/", "/connect/revoke/" })
        {
            var (status, _) = await PostTokenAsync(client, path, IdentityHost.ServiceClient, IdentityHost.ServiceSecret, Ct);
            Assert.AreEqual(HttpStatusCode.TooManyRequests, status, $"{path}: the address is blocked whatever the spelling, the right secret included");
        }
    }

    [TestMethod]
    public async Task A_token_block_holds_at_or_above_the_limit_on_a_replica_that_missed_the_announcement_or_started_later()
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(TestRig.Redis.ConnectionString);
        var options = Options.Create(new TokenThrottleOptions { MaxFailuresPerWindow = 3, Window = TimeSpan.FromMinutes(5) });
        var address = NewAddress();
        var a = new TokenEndpointThrottle(redis, options, TimeProvider.System);
        for (var i = 0; i < 3; i++)
        {
            await a.RecordFailureAsync(address);
        }
        Assert.IsNotNull(a.BlockedUntil(address));

        // Never subscribed: it missed the announcement; a failure above the limit blocks it all the same.
        var missed = new TokenEndpointThrottle(redis, options, TimeProvider.System);
        await missed.RecordFailureAsync(address);
        Assert.IsNotNull(missed.BlockedUntil(address), "a count above the limit blocks, not only the crossing");

        // Started after the block: it honours it from Redis before the address fails again.
        var later = new TokenEndpointThrottle(redis, options, TimeProvider.System);
        await later.StartAsync(Ct);
        await Poll.UntilAsync(() => Task.FromResult(later.BlockedUntil(address) is not null), TimeSpan.FromSeconds(5), "the later replica loads the block", Ct);
    }

    [TestMethod]
    public async Task Oversize_protocol_parameters_are_refused_before_any_lookup_and_leave_no_cache_entry()
    {
        await using var identity = await StartAsync(Ct, new Dictionary<string, string?> { ["Oidc:ClientCacheSize"] = "100" });
        using var client = From(identity.CreateClient(), NewAddress());
        var clients = identity.Services.GetRequiredService<ClientLookupCache>();
        var cache = (Microsoft.Extensions.Caching.Memory.MemoryCache)identity.Services.GetRequiredService<Microsoft.Extensions.Caching.Memory.IMemoryCache>();
        var before = cache.Count;

        for (var i = 0; i < 10; i++)
        {
            var (status, body) = await PostTokenAsync(client, "/connect/token", new string((char)('a' + i), 200_000), "secret", Ct);
            Assert.AreEqual(HttpStatusCode.BadRequest, status, body.ToString());
            Assert.AreEqual("invalid_request", body.GetProperty("error").GetString());
        }
        using (var basic = new HttpRequestMessage(HttpMethod.Post, "/connect/token"))
        {
            basic.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic",
                Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(new string('z', 200_000) + ":secret")));
            basic.Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "pluginhost" });
            using var response = await client.SendAsync(basic, Ct);
            Assert.AreEqual(HttpStatusCode.BadRequest, response.StatusCode, "a Basic client id is bounded too");
        }
        Assert.IsLessThanOrEqualTo(before, cache.Count, "nothing was cached for oversize client ids");
        Assert.AreEqual(0, clients.Count, "no client lookup was made for oversize client ids");

        // Unknown client ids of a legal length are remembered (same timing as a wrong secret), but within the cache's bound.
        for (var i = 0; i < 150; i++)
        {
            await PostTokenAsync(client, "/connect/token", "unknown-" + Guid.NewGuid().ToString("N"), "secret", Ct);
        }
        Assert.IsLessThanOrEqualTo(100, clients.Count, "the client cache holds at most Oidc:ClientCacheSize entries");
        Assert.IsLessThanOrEqualTo(before, cache.Count, "nothing keyed by client id lands in the shared memory cache");

        var pkce = Pkce.Create();
        foreach (var (name, value) in new[] { ("state", new string('s', 5_000)), ("nonce", new string('n', 5_000)), ("redirect_uri", "https://app.test/" + new string('r', 5_000)) })
        {
            var url = QueryHelpers.AddQueryString(AuthorizeUrl(pkce, "state"), name, value);
            using var authorize = await identity.Browser().GetAsync(new Uri(url, UriKind.Relative), Ct);
            Assert.AreEqual(HttpStatusCode.BadRequest, authorize.StatusCode, name);
        }
        var verifier = new string('v', 200);
        var (redeem, redeemBody) = await TokenAsync(client, new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code", ["client_id"] = IdentityHost.DevClient, ["code"] = "x", ["code_verifier"] = verifier,
            ["redirect_uri"] = IdentityHost.WebRedirect,
        }, Ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, redeem);
        StringAssert.Contains(redeemBody.GetProperty("error_description").GetString(), "code_verifier", "RFC 7636: at most 128 characters");
    }

    [TestMethod]
    public async Task Registration_is_throttled_per_address_and_an_existing_address_is_mailed_at_most_once_an_hour()
    {
        await using var identity = await StartAsync(Ct, new Dictionary<string, string?> { ["RegistrationThrottle:MaxPerWindow"] = "5" });
        var address = NewAddress();
        var existing = NewEmail();
        using (var owner = From(identity.Browser(), NewAddress()))
        {
            await RegisterAsync(owner, existing, GoodPassword, Ct);
        }
        await TestRig.Smtp.WaitForAsync(existing, "Confirm your email address", Ct);

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            using var browser = From(identity.Browser(), address);
            using var response = await PostFormAsync(browser, "/account/register",
                new Dictionary<string, string> { ["Email"] = i < 3 ? existing : NewEmail(), ["Password"] = GoodPassword }, Ct);
            statuses.Add(response.StatusCode);
        }
        CollectionAssert.AreEqual(new[] { HttpStatusCode.Redirect, HttpStatusCode.Redirect, HttpStatusCode.Redirect, HttpStatusCode.Redirect, HttpStatusCode.Redirect, HttpStatusCode.TooManyRequests }, statuses);

        // A reset requested afterwards arrives: everything queued before it has been sent by then.
        using (var owner = From(identity.Browser(), NewAddress()))
        using (await PostFormAsync(owner, "/account/forgot-password", new Dictionary<string, string> { ["Email"] = existing }, Ct))
        {
        }
        await TestRig.Smtp.WaitForAsync(existing, "Reset your ClippyBot password", Ct);
        var warnings = (await TestRig.Smtp.MessagesToAsync(existing, Ct)).Count(m => m.Subject == "Someone tried to register with your address");
        Assert.AreEqual(1, warnings, "three attempts, one warning mail");
    }

    [TestMethod]
    public async Task Thirty_concurrent_wrong_passwords_from_thirty_addresses_get_at_most_the_lockout_limit_evaluated_and_lock_the_account()
    {
        await using var identity = await StartAsync(Ct);
        var email = NewEmail();
        using (var owner = From(identity.Browser(), NewAddress()))
        {
            await RegisterAsync(owner, email, GoodPassword, Ct);
        }
        using var evaluated = new EvaluationCounter(identity.Services);
        var guesses = Enumerable.Range(0, 30).Select(async i =>
        {
            using var browser = From(identity.Browser(), NewAddress());
            using var response = await LoginAsync(browser, email, $"wrong guess number {i:D2}", Ct);
            return response.StatusCode;
        });
        CollectionAssert.AreEqual(Enumerable.Repeat(HttpStatusCode.OK, 30).ToList(), (await Task.WhenAll(guesses)).ToList(), "every guess gets the form again");
        Assert.IsLessThanOrEqualTo(5, evaluated.Of("password"), "at most MaxFailedAccessAttempts guesses are evaluated");

        using var right = await LoginAsync(From(identity.Browser(), NewAddress()), email, GoodPassword, Ct);
        Assert.AreEqual(HttpStatusCode.OK, right.StatusCode, "the locked account refuses the right password too");
    }

    [TestMethod]
    public async Task Thirty_concurrent_wrong_second_factor_codes_get_at_most_the_lockout_limit_evaluated_and_lock_the_account()
    {
        await using var identity = await StartAsync(Ct);
        var email = NewEmail();
        byte[] secret;
        using (var owner = From(identity.Browser(), NewAddress()))
        {
            await RegisterAsync(owner, email, GoodPassword, Ct);
            using (await LoginAsync(owner, email, GoodPassword, Ct))
            {
            }
            (secret, _) = await EnrolTwoFactorAsync(owner, TimeProvider.System, Ct);
        }
        // Thirty devices each pass the password step (one at a time: each success gives its attempt back) …
        var devices = new List<HttpClient>();
        for (var i = 0; i < 30; i++)
        {
            var device = From(identity.Browser(), NewAddress());
            using (var password = await PasswordStepAsync(device, email, GoodPassword, Ct))
            {
                StringAssert.StartsWith(password.Headers.Location!.OriginalString, "/account/login/two-factor");
            }
            devices.Add(device);
        }
        using var evaluated = new EvaluationCounter(identity.Services);
        // … then all guess a code at once.
        var guesses = devices.Select(async (device, i) =>
        {
            using var response = await SecondFactorAsync(device, (100_000 + i).ToString(System.Globalization.CultureInfo.InvariantCulture), Ct);
            return response.StatusCode;
        });
        await Task.WhenAll(guesses);
        Assert.IsLessThanOrEqualTo(5, evaluated.Of("second_factor"), "at most MaxFailedAccessAttempts codes are evaluated");
        using var right = await SecondFactorAsync(devices[0], ClippyBot.Identity.Crypto.Totp.Compute(secret, DateTimeOffset.UtcNow.AddSeconds(30)), Ct);
        Assert.AreEqual(HttpStatusCode.OK, right.StatusCode, "the locked account refuses the right code too");
        devices.ForEach(d => d.Dispose());
    }

    [TestMethod]
    public async Task A_flood_of_queued_mail_neither_drops_nor_delays_a_password_reset_link()
    {
        await using var identity = await StartAsync(Ct);
        var email = NewEmail();
        using (var owner = From(identity.Browser(), NewAddress()))
        {
            await RegisterAsync(owner, email, GoodPassword, Ct);
        }
        await TestRig.Smtp.WaitForAsync(email, "Confirm your email address", Ct);

        // 1,000 notices queued at once (what a registration flood leaves behind), each to an address of its own.
        var outbox = identity.Services.GetRequiredService<ClippyBot.Email.DurableEmailOutbox<IdentityDataContext>>();
        for (var i = 0; i < 1_000; i++)
        {
            Assert.IsTrue(await outbox.EnqueueAsync(ClippyBot.Email.EmailMessage.WithAction(
                NewEmail(), "flood", "Flood", "lead", "act", "https://app.test/", "footer"), ClippyBot.Email.MailPriority.Notice, Ct));
        }
        using (var owner = From(identity.Browser(), NewAddress()))
        using (await PostFormAsync(owner, "/account/forgot-password", new Dictionary<string, string> { ["Email"] = email }, Ct))
        {
        }
        await TestRig.Smtp.WaitForAsync(email, "Reset your ClippyBot password", Ct);

        await using var scope = identity.Services.CreateAsyncScope();
        var unsent = await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(
            scope.ServiceProvider.GetRequiredService<IdentityDataContext>().Set<ClippyBot.Email.OutboxMail>(),
            m => m.Kind == "flood" && m.SentAt == null, Ct);
        Assert.IsGreaterThan(0, unsent, "the reset link went ahead of the queued notices, not after them");
    }

    [TestMethod]
    public async Task One_recipient_gets_at_most_the_hourly_limit_of_mail_and_refusals_are_reported()
    {
        await using var identity = await StartAsync(Ct, new Dictionary<string, string?> { ["Email:MaxPerRecipientPerHour"] = "5" });
        var outbox = identity.Services.GetRequiredService<ClippyBot.Email.DurableEmailOutbox<IdentityDataContext>>();
        var victim = NewEmail();
        var accepted = 0;
        for (var i = 0; i < 8; i++)
        {
            accepted += await outbox.EnqueueAsync(ClippyBot.Email.EmailMessage.WithAction(
                victim, "notice", "Notice", "lead", "act", "https://app.test/", "footer"), ClippyBot.Email.MailPriority.Notice, Ct) ? 1 : 0;
        }
        Assert.AreEqual(5, accepted);
        await TestRig.Smtp.WaitForAsync(victim, "Notice", Ct, count: 5);
    }

    [TestMethod]
    public async Task Knowing_the_password_does_not_reset_the_count_of_wrong_second_factor_codes()
    {
        await using var identity = await StartAsync(Ct);
        var email = NewEmail();
        byte[] secret;
        using (var owner = From(identity.Browser(), NewAddress()))
        {
            await RegisterAsync(owner, email, GoodPassword, Ct);
            using (await LoginAsync(owner, email, GoodPassword, Ct))
            {
            }
            (secret, _) = await EnrolTwoFactorAsync(owner, TimeProvider.System, Ct);
        }
        // Four wrong codes, the password again (it is known), four more: without a reset in between, that is past the limit.
        for (var round = 0; round < 2; round++)
        {
            using var device = From(identity.Browser(), NewAddress());
            using (await PasswordStepAsync(device, email, GoodPassword, Ct))
            {
            }
            for (var i = 0; i < 4; i++)
            {
                using (await SecondFactorAsync(device, (200_000 + round * 10 + i).ToString(System.Globalization.CultureInfo.InvariantCulture), Ct))
                {
                }
            }
        }
        using var last = From(identity.Browser(), NewAddress());
        using var password = await PasswordStepAsync(last, email, GoodPassword, Ct);
        Assert.AreEqual(HttpStatusCode.OK, password.StatusCode, "the account locked after five wrong codes, whatever passwords came between: even the password step is refused");
        Assert.IsNotNull(secret);
    }

    [TestMethod]
    public async Task A_weak_password_gets_the_same_answer_for_a_new_and_an_existing_address()
    {
        await using var identity = await StartAsync(Ct);
        var existing = NewEmail();
        using (var owner = From(identity.Browser(), NewAddress()))
        {
            await RegisterAsync(owner, existing, GoodPassword, Ct);
        }
        var answers = new List<(HttpStatusCode, bool)>();
        foreach (var email in new[] { existing, NewEmail() })
        {
            using var browser = From(identity.Browser(), NewAddress());
            using var response = await PostFormAsync(browser, "/account/register", new Dictionary<string, string> { ["Email"] = email, ["Password"] = "short" }, Ct);
            answers.Add((response.StatusCode, (await response.Content.ReadAsStringAsync(Ct)).Contains("at least 12", StringComparison.Ordinal)));
        }
        Assert.AreEqual(answers[1], answers[0], "the policy answer does not tell which address has an account");
        Assert.AreEqual((HttpStatusCode.OK, true), answers[0]);
    }

    [TestMethod]
    public async Task Wrong_current_passwords_on_the_change_password_page_lock_the_account()
    {
        await using var identity = await StartAsync(Ct);
        using var browser = From(identity.Browser(), NewAddress());
        var email = NewEmail();
        await RegisterAsync(browser, email, GoodPassword, Ct);
        using (await LoginAsync(browser, email, GoodPassword, Ct))
        {
        }
        for (var i = 0; i < 5; i++)
        {
            using var wrong = await PostFormAsync(browser, "/account/manage/password",
                new Dictionary<string, string> { ["CurrentPassword"] = $"guess number {i} of many", ["NewPassword"] = "a brand new passphrase 9" }, Ct);
            Assert.AreEqual(HttpStatusCode.OK, wrong.StatusCode);
        }
        using var right = await PostFormAsync(browser, "/account/manage/password",
            new Dictionary<string, string> { ["CurrentPassword"] = GoodPassword, ["NewPassword"] = "a brand new passphrase 9" }, Ct);
        StringAssert.Contains(await right.Content.ReadAsStringAsync(Ct), "locked", "the locked account's right password is refused too");
        using var login = await LoginAsync(From(identity.Browser(), NewAddress()), email, GoodPassword, Ct);
        Assert.AreEqual(HttpStatusCode.OK, login.StatusCode, "the account is locked: the login form is shown again");
    }

    [TestMethod]
    public async Task Wrong_passwords_when_turning_two_factor_off_lock_the_account_and_a_locked_account_cannot_turn_it_off()
    {
        await using var identity = await StartAsync(Ct);
        using var browser = From(identity.Browser(), NewAddress());
        var email = NewEmail();
        await RegisterAsync(browser, email, GoodPassword, Ct);
        using (await LoginAsync(browser, email, GoodPassword, Ct))
        {
        }
        var (secret, _) = await EnrolTwoFactorAsync(browser, TimeProvider.System, Ct);
        for (var i = 0; i < 5; i++)
        {
            using var wrong = await PostFormAsync(browser, "/account/manage/two-factor",
                new Dictionary<string, string> { ["Password"] = $"guess number {i} of many", ["Code"] = "123456" }, Ct, handler: "Disable");
            Assert.AreEqual(HttpStatusCode.BadRequest, wrong.StatusCode);
        }
        using var right = await PostFormAsync(browser, "/account/manage/two-factor", new Dictionary<string, string>
        {
            ["Password"] = GoodPassword, ["Code"] = ClippyBot.Identity.Crypto.Totp.Compute(secret, DateTimeOffset.UtcNow.AddSeconds(30)),
        }, Ct, handler: "Disable");
        Assert.AreEqual(HttpStatusCode.BadRequest, right.StatusCode, "a locked account cannot turn two-factor off");
    }

    [TestMethod]
    public async Task Confirming_an_address_needs_the_session_of_the_account_that_registered_it()
    {
        await using var identity = await StartAsync(Ct);
        var victim = NewEmail();
        using (var attacker = From(identity.Browser(), NewAddress()))
        {
            await RegisterAsync(attacker, victim, "the attackers own passphrase 1", Ct);
        }
        var link = TestSmtp.LinkIn(await TestRig.Smtp.WaitForAsync(victim, "Confirm your email address", Ct), "/account/confirm-email");

        // The victim presses the button in the mail, in a browser where nobody is signed in.
        using var victimBrowser = From(identity.Browser(), NewAddress());
        using var pressed = await SubmitLinkAsync(victimBrowser, link, new Dictionary<string, string>(), Ct);
        Assert.DoesNotContain("Your address is confirmed", await pressed.Content.ReadAsStringAsync(Ct));
        await using var scope = identity.Services.CreateAsyncScope();
        var user = await scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>().FindByEmailAsync(victim);
        Assert.IsFalse(user!.EmailConfirmed, "an address is confirmed only by the account's own session");
    }

    [TestMethod]
    public async Task A_password_reset_of_a_never_verified_account_removes_the_second_factor_its_registrant_set_and_says_so()
    {
        await using var identity = await StartAsync(Ct);
        var victim = NewEmail();
        using (var attacker = From(identity.Browser(), NewAddress()))
        {
            await RegisterAsync(attacker, victim, GoodPassword, Ct);
            using (await LoginAsync(attacker, victim, GoodPassword, Ct))
            {
            }
            await EnrolTwoFactorAsync(attacker, TimeProvider.System, Ct);
        }
        // The address's owner never confirmed it; they reset the password through the mailed link.
        using (var owner = From(identity.Browser(), NewAddress()))
        using (await PostFormAsync(owner, "/account/forgot-password", new Dictionary<string, string> { ["Email"] = victim }, Ct))
        {
        }
        var link = TestSmtp.LinkIn(await TestRig.Smtp.WaitForAsync(victim, "Reset your ClippyBot password", Ct), "/account/reset-password");
        using (var reset = await SubmitLinkAsync(From(identity.Browser(), NewAddress()), link, new Dictionary<string, string> { ["NewPassword"] = "the owners own passphrase 3" }, Ct))
        {
            StringAssert.Contains(await reset.Content.ReadAsStringAsync(Ct), "Your password was changed");
        }
        var notice = await TestRig.Smtp.WaitForAsync(victim, "Your ClippyBot password was changed", Ct);
        StringAssert.Contains(notice.Text, "two-factor authentication and recovery codes");
        using var login = await LoginAsync(From(identity.Browser(), NewAddress()), victim, "the owners own passphrase 3", Ct);
        Assert.AreEqual("/account/manage", login.Headers.Location?.OriginalString, "the registrant's second factor no longer stands between the owner and the account");
    }

    [TestMethod]
    public async Task Max_age_forces_a_new_sign_in_for_a_browser_that_stayed_active_and_auth_time_is_the_sign_in()
    {
        var clock = new ShiftedClock();
        await using var identity = await StartAsync(Ct, configure: s => s.AddSingleton<TimeProvider>(clock));
        using var browser = From(identity.Browser(), NewAddress());
        var email = NewEmail();
        await RegisterAsync(browser, email, GoodPassword, Ct);
        var signedIn = clock.GetUtcNow();
        using (await LoginAsync(browser, email, GoodPassword, Ct))
        {
        }
        clock.Advance(TimeSpan.FromSeconds(70));
        using (var active = await browser.GetAsync(new Uri("/account/manage", UriKind.Relative), Ct))
        {
            Assert.AreEqual(HttpStatusCode.OK, active.StatusCode);
        }

        var pkce = Pkce.Create();
        using var fresh = await browser.GetAsync(new Uri(QueryHelpers.AddQueryString(AuthorizeUrl(pkce, "s"), "max_age", "60"), UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.Redirect, fresh.StatusCode);
        StringAssert.StartsWith(fresh.Headers.Location!.AbsolutePath, "/account/login", "the password was entered 70 s ago: max_age=60 needs a new one");

        using var silent = await browser.GetAsync(new Uri(AuthorizeUrl(pkce, "s"), UriKind.Relative), Ct);
        var code = QueryHelpers.ParseQuery(silent.Headers.Location!.Query)["code"].ToString();
        var (_, tokens) = await RedeemCodeAsync(identity.CreateClient(), code, pkce, Ct);
        var authTime = DecodeJwt(tokens.GetProperty("id_token").GetString()!).Payload.GetProperty("auth_time").GetInt64();
        Assert.IsLessThanOrEqualTo(signedIn.ToUnixTimeSeconds() + 5, authTime, "auth_time is the sign-in, not the last request");
    }

    [TestMethod]
    public async Task A_browser_session_ends_after_its_absolute_lifetime_however_active_it_is()
    {
        var clock = new ShiftedClock();
        await using var identity = await StartAsync(Ct, new Dictionary<string, string?> { ["AccountSecurity:SessionAbsoluteLifetime"] = "1.00:00:00" },
            s => s.AddSingleton<TimeProvider>(clock));
        using var browser = From(identity.Browser(), NewAddress());
        var email = NewEmail();
        await RegisterAsync(browser, email, GoodPassword, Ct);
        using (await LoginAsync(browser, email, GoodPassword, Ct))
        {
        }
        for (var hours = 0; hours < 30; hours += 3)
        {
            clock.Advance(TimeSpan.FromHours(3));
            using var page = await browser.GetAsync(new Uri("/account/manage", UriKind.Relative), Ct);
            if (hours + 3 < 24)
            {
                Assert.AreEqual(HttpStatusCode.OK, page.StatusCode, $"{hours + 3} h: still within the lifetime");
            }
        }
        using var silent = await browser.GetAsync(new Uri(AuthorizeUrl(Pkce.Create(), "s") + "&prompt=none", UriKind.Relative), Ct);
        StringAssert.Contains(silent.Headers.Location!.Query, "error=login_required", "30 h after signing in, a 24 h session needs credentials");
    }

    [TestMethod]
    public async Task Erasing_an_account_needs_a_sign_in_at_most_five_minutes_old()
    {
        var clock = new ShiftedClock();
        await using var testbed = await ClippyBot.Tests.Api.ApiTestbed.StartAsync(Ct, apiServices: s => s.AddSingleton<TimeProvider>(clock));
        var person = await testbed.NewUserAsync(Ct);
        clock.Advance(TimeSpan.FromMinutes(6));
        using var erase = await person.Client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, "/api/me")
        {
            Content = JsonContent.Create(new { confirmEmail = person.Email }),
        }, Ct);
        Assert.AreEqual(HttpStatusCode.Forbidden, erase.StatusCode);
        StringAssert.Contains(await erase.Content.ReadAsStringAsync(Ct), "https://clippybot.dev/problems/reauthentication-required");
        using var still = await person.Client.GetAsync(new Uri("/api/me", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.OK, still.StatusCode, "nothing was erased");
    }

    [TestMethod]
    public async Task Sessions_start_when_a_code_is_redeemed_and_silent_renewals_reuse_the_browsers_session()
    {
        await using var identity = await StartAsync(Ct);
        using var browser = From(identity.Browser(), NewAddress());
        var email = NewEmail();
        await RegisterAsync(browser, email, GoodPassword, Ct);
        var first = Pkce.Create();
        var code = await SignInForCodeAsync(browser, email, GoodPassword, first, Ct);

        await using var scope = identity.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDataContext>();
        var userId = (await scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>().FindByEmailAsync(email))!.Id;
        Task<int> ActiveSessionsAsync() => Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(
            db.UserSessions, s => s.UserId == userId && s.EndedAt == null, Ct);
        Assert.AreEqual(0, await ActiveSessionsAsync(), "an issued code is not a session yet");

        var (_, tokens) = await RedeemCodeAsync(identity.CreateClient(), code, first, Ct);
        Assert.AreEqual(1, await ActiveSessionsAsync());
        var refresh = tokens.GetProperty("refresh_token").GetString()!;

        // Three silent renewals (prompt=none) from the same browser sign-in: still one session, the old chain revoked.
        for (var i = 0; i < 3; i++)
        {
            var pkce = Pkce.Create();
            using var silent = await browser.GetAsync(new Uri(AuthorizeUrl(pkce, "s") + "&prompt=none", UriKind.Relative), Ct);
            var renewed = QueryHelpers.ParseQuery(silent.Headers.Location!.Query)["code"].ToString();
            var (status, _) = await RedeemCodeAsync(identity.CreateClient(), renewed, pkce, Ct);
            Assert.AreEqual(HttpStatusCode.OK, status);
        }
        Assert.AreEqual(1, await ActiveSessionsAsync(), "renewals reuse the session");
        var (old, _) = await RefreshAsync(identity.CreateClient(), refresh, Ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, old, "the replaced login's refresh token is revoked");

        // Abandoned codes (never redeemed) leave no session.
        for (var i = 0; i < 3; i++)
        {
            using (await browser.GetAsync(new Uri(AuthorizeUrl(Pkce.Create(), "s"), UriKind.Relative), Ct))
            {
            }
        }
        Assert.AreEqual(1, await ActiveSessionsAsync(), "abandoned codes are not sessions");
    }

    [TestMethod]
    public async Task A_configured_administrator_without_a_second_factor_is_sent_to_enrol_and_gets_no_admin_role()
    {
        var admin = NewEmail();
        await using var identity = await StartAsync(Ct, new Dictionary<string, string?> { ["Identity:Administrators:0"] = admin });
        using var browser = From(identity.Browser(), NewAddress());
        await RegisterAsync(browser, admin, GoodPassword, Ct);
        await identity.ConfirmEmailAsync(admin);
        using (await LoginAsync(browser, admin, GoodPassword, Ct))
        {
        }
        using var page = await browser.GetAsync(new Uri("/admin/users", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.Redirect, page.StatusCode);
        StringAssert.StartsWith(page.Headers.Location!.OriginalString, "/account/manage/two-factor");

        var pkce = Pkce.Create();
        using var authorize = await browser.GetAsync(new Uri(AuthorizeUrl(pkce, "s"), UriKind.Relative), Ct);
        var code = QueryHelpers.ParseQuery(authorize.Headers.Location!.Query)["code"].ToString();
        var (_, tokens) = await RedeemCodeAsync(identity.CreateClient(), code, pkce, Ct);
        Assert.IsFalse(DecodeJwt(tokens.GetProperty("access_token").GetString()!).Payload.TryGetProperty("role", out _),
            "a password-only sign-in carries no platform-administrator role");
    }

    [TestMethod]
    public async Task End_session_without_an_id_token_hint_asks_before_signing_out()
    {
        await using var identity = await StartAsync(Ct);
        using var browser = From(identity.Browser(), NewAddress());
        var email = NewEmail();
        await RegisterAsync(browser, email, GoodPassword, Ct);
        using (await LoginAsync(browser, email, GoodPassword, Ct))
        {
        }
        // A page elsewhere embeds <img src="https://identity/connect/endsession">.
        using var forged = await browser.GetAsync(new Uri("/connect/endsession", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.OK, forged.StatusCode);
        StringAssert.Contains(await forged.Content.ReadAsStringAsync(Ct), "Sign out");
        using var stillIn = await browser.GetAsync(new Uri("/account/manage", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.OK, stillIn.StatusCode, "nothing happened without the person's confirmation");

        using var confirmed = await PostFormAsync(browser, "/connect/endsession", new Dictionary<string, string>(), Ct);
        Assert.AreEqual(HttpStatusCode.Redirect, confirmed.StatusCode);
        using var signedOut = await browser.GetAsync(new Uri("/account/manage", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.Redirect, signedOut.StatusCode, "the confirmed sign-out ended the session");
    }

    [TestMethod]
    public async Task Someone_elses_id_token_as_hint_does_not_sign_a_browser_out_and_max_age_0_signs_in_once()
    {
        await using var identity = await StartAsync(Ct);
        // The attacker's own, valid ID token.
        var (_, attackerId, _) = await NewLoginAsync(identity, Ct);
        using var victim = From(identity.Browser(), NewAddress());
        var email = NewEmail();
        await RegisterAsync(victim, email, GoodPassword, Ct);
        using (await LoginAsync(victim, email, GoodPassword, Ct))
        {
        }
        using var forged = await victim.GetAsync(new Uri("/connect/endsession?id_token_hint=" + Uri.EscapeDataString(attackerId), UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.OK, forged.StatusCode, "a confirmation page, not a sign-out");
        using (var stillIn = await victim.GetAsync(new Uri("/account/manage", UriKind.Relative), Ct))
        {
            Assert.AreEqual(HttpStatusCode.OK, stillIn.StatusCode);
        }

        // max_age=0: one sign-in, then the code (the return URL drops max_age, or the browser would loop).
        var pkce = Pkce.Create();
        using var fresh = await victim.GetAsync(new Uri(AuthorizeUrl(pkce, "s") + "&max_age=0", UriKind.Relative), Ct);
        var returnUrl = QueryHelpers.ParseQuery(fresh.Headers.Location!.Query)["ReturnUrl"].ToString();
        Assert.DoesNotContain("max_age", returnUrl);
        using var login = await LoginAsync(victim, email, GoodPassword, Ct, returnUrl);
        using var back = await victim.GetAsync(login.Headers.Location, Ct);
        StringAssert.Contains(back.Headers.Location!.Query, "code=");
    }

    [TestMethod]
    public async Task A_silent_renewal_after_several_ordinary_sign_ins_from_one_browser_works()
    {
        await using var identity = await StartAsync(Ct);
        using var browser = From(identity.Browser(), NewAddress());
        var email = NewEmail();
        await RegisterAsync(browser, email, GoodPassword, Ct);
        using (await LoginAsync(browser, email, GoodPassword, Ct))
        {
        }
        for (var i = 0; i < 3; i++)
        {
            var pkce = Pkce.Create();
            var prompt = i < 2 ? "" : "&prompt=none";
            using var authorize = await browser.GetAsync(new Uri(AuthorizeUrl(pkce, "s") + prompt, UriKind.Relative), Ct);
            var code = QueryHelpers.ParseQuery(authorize.Headers.Location!.Query)["code"].ToString();
            var (status, body) = await RedeemCodeAsync(identity.CreateClient(), code, pkce, Ct);
            Assert.AreEqual(HttpStatusCode.OK, status, $"{i}: {body}");
        }
    }

    [TestMethod]
    public async Task Tokens_carry_the_configured_issuer_whatever_the_Host_header_says()
    {
        await using var identity = await StartAsync(Ct, new Dictionary<string, string?> { ["Oidc:Issuer"] = "https://id.clippybot.test/" });
        using var client = From(identity.CreateClient(), NewAddress());
        client.DefaultRequestHeaders.Host = "attacker.example";
        var (status, body) = await ClientCredentialsAsync(client, IdentityHost.ServiceClient, IdentityHost.ServiceSecret, Ct);
        Assert.AreEqual(HttpStatusCode.OK, status, body.ToString());
        Assert.AreEqual("https://id.clippybot.test/", DecodeJwt(body.GetProperty("access_token").GetString()!).Payload.GetProperty("iss").GetString());
        using var discovery = await client.GetAsync(new Uri("/.well-known/openid-configuration", UriKind.Relative), Ct);
        Assert.AreEqual("https://id.clippybot.test/", (await discovery.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("issuer").GetString());
    }

    [TestMethod]
    public async Task A_client_dropped_from_configuration_is_disabled_at_the_next_start()
    {
        var ct = Ct;
        Dictionary<string, string?> settings;
        await using (var first = await StartAsync(ct))
        {
            using var client = From(first.CreateClient(), NewAddress());
            var (status, _) = await ClientCredentialsAsync(client, IdentityHost.ServiceClient, IdentityHost.ServiceSecret, ct);
            Assert.AreEqual(HttpStatusCode.OK, status);
            settings = first.Settings.Where(s => !s.Key.StartsWith("Oidc:Clients:1:", StringComparison.Ordinal)).ToDictionary();
        }
        await using var second = new ServiceFactory<IdentityDataContext>(settings, s => s.AddSingleton<IStartupFilter>(new AddressFromHeader()));
        second.ClientOptions.BaseAddress = new Uri("https://localhost");
        using var probe = second.CreateClient();
        await Poll.UntilAsync(async () => (await probe.GetAsync(new Uri("/health", UriKind.Relative), ct)).StatusCode == HttpStatusCode.OK,
            TimeSpan.FromSeconds(60), "identity healthy", ct);
        using var again = From(second.CreateClient(), NewAddress());
        var (after, body) = await ClientCredentialsAsync(again, IdentityHost.ServiceClient, IdentityHost.ServiceSecret, ct);
        Assert.AreNotEqual(HttpStatusCode.OK, after, body.ToString());
        CollectionAssert.Contains(new[] { "invalid_client", "unauthorized_client" }, body.GetProperty("error").GetString());
    }

    /// <summary>What Production needs that the rig's local settings leave out: a fixed issuer, public https links, TLS to the mail relay.</summary>
    private static Dictionary<string, string?> ProductionSettings(IDictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Oidc:Issuer"] = "https://id.clippybot.test/",
            ["AccountSecurity:PublicBaseUrl"] = "https://id.clippybot.test",
            ["Email:Security"] = "StartTls",
            // The test clients use loopback redirect URIs: in Production only a public native client may (RFC 8252).
            ["Oidc:Clients:0:RedirectUris:0"] = "https://app.test/callback",
            ["Oidc:Clients:3:DevelopmentOnly"] = "true",
            ["Oidc:Clients:3:RedirectUris:0"] = "http://127.0.0.1:7890/callback",
            ["Oidc:Clients:4:RedirectUris:0"] = "https://partner.test/callback",
        };
        foreach (var (key, value) in more ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }
        return settings;
    }

    [TestMethod]
    public async Task In_production_a_development_only_client_is_not_registered_and_tokens_carry_the_configured_issuer()
    {
        await using var identity = await IdentityHost.StartAsync(Ct, ProductionSettings(), s => s.AddSingleton<IStartupFilter>(new AddressFromHeader()), "Production");
        using var client = From(identity.CreateClient(), NewAddress());
        var (status, body) = await ClientCredentialsAsync(client, IdentityHost.ServiceClient, IdentityHost.ServiceSecret, Ct);
        Assert.AreEqual(HttpStatusCode.OK, status, body.ToString());
        Assert.AreEqual("https://id.clippybot.test/", DecodeJwt(body.GetProperty("access_token").GetString()!).Payload.GetProperty("iss").GetString());

        using var browser = From(identity.Browser(), NewAddress());
        using var authorize = await browser.GetAsync(new Uri(AuthorizeUrl(Pkce.Create(), "s", "http://127.0.0.1:7890/callback"), UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, authorize.StatusCode, "clippybot-dev does not exist outside Development");
        Assert.IsNull(authorize.Headers.Location, "no redirect to an unregistered client");
    }

    [TestMethod]
    public async Task In_production_start_up_refuses_plain_http_redirect_uris_and_a_missing_issuer()
    {
        var http = ProductionSettings(new Dictionary<string, string?> { ["Oidc:Clients:0:RedirectUris:0"] = "http://app.test/callback" });
        await using (var identity = await IdentityHost.CreateAsync(Ct, http, environment: "Production"))
        {
            var refused = Assert.Throws<InvalidOperationException>(() => identity.Server);
            StringAssert.Contains(refused.Message, "http://app.test/callback");
        }
        var noIssuer = ProductionSettings(new Dictionary<string, string?> { ["Oidc:Issuer"] = null });
        await using (var identity = await IdentityHost.CreateAsync(Ct, noIssuer, environment: "Production"))
        {
            var refused = Assert.Throws<InvalidOperationException>(() => identity.Server);
            StringAssert.Contains(refused.Message, "Oidc:Issuer");
        }
    }

    [TestMethod]
    public async Task The_sign_in_throttle_counts_an_IPv6_64_as_one_address()
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(TestRig.Redis.ConnectionString);
        using var throttle = new LoginThrottle(redis, Options.Create(new LoginThrottleOptions { MaxAttemptsPerWindow = 3, Window = TimeSpan.FromMinutes(5) }),
            TimeProvider.System, NullLogger<LoginThrottle>.Instance);
        await throttle.LoadAsync();
        var prefix = RandomNumber.Bytes(8);
        IPAddress In64(byte last)
        {
            var bytes = new byte[16];
            prefix.CopyTo(bytes, 0);
            bytes[0] = 0x20;
            bytes[15] = last;
            return new IPAddress(bytes);
        }
        for (byte i = 1; i <= 3; i++)
        {
            var attempt = await throttle.BeginAsync(In64(i));
            Assert.IsTrue(attempt.Allowed);
            await throttle.CountAsync(attempt);
        }
        Assert.IsFalse((await throttle.BeginAsync(In64(200))).Allowed, "another address of the same /64 shares the count");
    }

    [TestMethod]
    public async Task Most_requests_from_one_untrusted_address_are_reported_as_per_address_limits_acting_globally()
    {
        var clock = new ShiftedClock();
        var logs = new ConcurrentQueue<string>();
        await using var identity = await StartAsync(Ct, new Dictionary<string, string?> { ["SharedAddressMonitor:MinimumRequests"] = "50" }, s =>
        {
            s.AddSingleton<TimeProvider>(clock);
            s.AddLogging(b => b.AddProvider(new CapturingLoggerProvider(logs)));
        });
        using var proxy = From(identity.CreateClient(), NewAddress());
        clock.Advance(TimeSpan.FromMinutes(5));
        for (var i = 0; i < 60; i++)
        {
            using var response = await proxy.GetAsync(new Uri("/account/login", UriKind.Relative), Ct);
        }
        Assert.IsFalse(logs.Any(l => l.Contains("acting as one global limit", StringComparison.Ordinal)), "nothing is said before the window ends");
        clock.Advance(TimeSpan.FromMinutes(5));
        using (await proxy.GetAsync(new Uri("/account/login", UriKind.Relative), Ct))
        {
        }
        Assert.IsTrue(logs.Any(l => l.Contains("acting as one global limit", StringComparison.Ordinal) && l.Contains("Edge:TrustedProxies", StringComparison.Ordinal)));
    }

    /// <summary>Counts this host's <c>clippybot.security.credentials_evaluated</c> by kind (other test classes' hosts run alongside).</summary>
    private sealed class EvaluationCounter : IDisposable
    {
        private readonly System.Diagnostics.Metrics.MeterListener _listener = new();
        private readonly ConcurrentDictionary<string, long> _counts = new(StringComparer.Ordinal);

        public EvaluationCounter(IServiceProvider services)
        {
            var scope = services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Name == "clippybot.security.credentials_evaluated" && ReferenceEquals(instrument.Meter.Scope, scope))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag.Key == "kind")
                    {
                        _counts.AddOrUpdate((string)tag.Value!, value, (_, c) => c + value);
                    }
                }
            });
            _listener.Start();
        }

        public long Of(string kind) => _counts.GetValueOrDefault(kind);

        public void Dispose() => _listener.Dispose();
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> PostTokenAsync(HttpClient client, string path, string clientId, string secret, CancellationToken ct)
    {
        using var content = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = clientId, ["client_secret"] = secret, ["scope"] = "pluginhost",
        });
        using var response = await client.PostAsync(new Uri(path, UriKind.Relative), content, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        return (response.StatusCode, text.Length > 0 && text[0] == '{' ? JsonDocument.Parse(text).RootElement.Clone() : default);
    }

    /// <summary>The test host's stand-in for distinct clients: the header names the connection's remote address.</summary>
    internal sealed class AddressFromHeader : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(following => context =>
            {
                if (IPAddress.TryParse(context.Request.Headers[AddressHeader].ToString(), out var address))
                {
                    context.Connection.RemoteIpAddress = address;
                }
                return following(context);
            });
            next(app);
        };
    }

    private static class RandomNumber
    {
        public static byte[] Bytes(int count) => System.Security.Cryptography.RandomNumberGenerator.GetBytes(count);
    }
}
