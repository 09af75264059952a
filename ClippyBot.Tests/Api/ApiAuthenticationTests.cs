using ClippyBot.Contracts;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using ClippyBot.AppHost.Infrastructure;
using ClippyBot.Api.Data;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.Extensions.DependencyInjection;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Api;

/// <summary>The Api accepts Identity's access tokens for it and nothing else, and drops revoked logins at once.</summary>
[TestClass]
public sealed class ApiAuthenticationTests
{
    private static ApiTestbed s_testbed = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) => s_testbed = await ApiTestbed.StartAsync(context.CancellationToken);

    [ClassCleanup]
    public static async Task StopAsync() => await s_testbed.DisposeAsync();

    [TestMethod]
    public async Task A_users_access_token_is_accepted_and_says_who_and_how_they_signed_in()
    {
        var ct = TestContext.CancellationToken;
        var tokens = await NewLoginAsync(s_testbed.Identity, ct);

        using var response = await GetMeAsync(tokens.Access, ct);

        Assert.AreEqual(HttpStatusCode.OK, response.StatusCode);
        using var me = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        Assert.AreEqual(DecodeJwt(tokens.Access).Payload.GetProperty("sub").GetString(), me.RootElement.GetProperty("subject").GetString());
        CollectionAssert.Contains(me.RootElement.GetProperty("authenticationMethods").EnumerateArray().Select(e => e.GetString()).ToArray(), "pwd");
    }

    [TestMethod]
    [DataRow(null, DisplayName = "no token")]
    [DataRow("not-a-jwt", DisplayName = "garbage")]
    [DataRow("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4IiwiYXVkIjoiY2xpcHB5Ym90LWFwaSJ9.", DisplayName = "alg none")]
    public async Task Requests_without_a_valid_token_get_401(string? token)
    {
        using var response = await GetMeAsync(token, TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [TestMethod]
    public async Task A_token_for_another_audience_is_refused()
    {
        var ct = TestContext.CancellationToken;
        var (_, body) = await ClientCredentialsAsync(s_testbed.Identity.CreateClient(), IdentityHost.ServiceClient, IdentityHost.ServiceSecret, ct);

        using var response = await GetMeAsync(body.GetProperty("access_token").GetString(), ct);

        Assert.AreEqual(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [TestMethod]
    public async Task After_a_password_change_the_old_access_token_is_refused_within_a_second()
    {
        var ct = TestContext.CancellationToken;
        using var browser = s_testbed.Identity.Browser();
        var (_, code, pkce) = await RegisterAndSignInAsync(browser, ct);
        var (_, tokens) = await RedeemCodeAsync(s_testbed.Identity.CreateClient(), code, pkce, ct);
        var access = tokens.GetProperty("access_token").GetString()!;
        using (var before = await GetMeAsync(access, ct))
        {
            Assert.AreEqual(HttpStatusCode.OK, before.StatusCode);
        }
        // That request started the mirror's load (in the background); the revocation below must be answered from it.
        var mirror = s_testbed.Api.Services.GetRequiredService<ClippyBot.Api.Authentication.RevocationMarkers>();
        await Poll.UntilAsync(() => Task.FromResult(mirror.Mirrored), TimeSpan.FromSeconds(10), "mirror loaded", ct);

        // Tokens issued in the same second as the marker would still pass (markers have one-second resolution).
        await Poll.UntilAsync(() => Task.FromResult(DateTimeOffset.UtcNow.ToUnixTimeSeconds() > DecodeJwt(access).Payload.GetProperty("iat").GetInt64()),
            TimeSpan.FromSeconds(3), "next second", ct);
        using var change = await PostFormAsync(browser, "/account/manage/password", new Dictionary<string, string>
        {
            ["CurrentPassword"] = GoodPassword,
            ["NewPassword"] = "another long passphrase 77",
        }, ct);
        Assert.AreEqual(HttpStatusCode.OK, change.StatusCode);

        // Identity announces the marker; every Api replica applies it from memory (docs/revocation.md: within a second).
        await Poll.UntilAsync(async () => (await GetMeAsync(access, ct)).StatusCode == HttpStatusCode.Unauthorized, TimeSpan.FromSeconds(1), "token refused", ct);
        Assert.IsTrue(mirror.Mirrored, "answered from the in-memory mirror");
        using var after = await GetMeAsync(access, ct);
        Assert.AreEqual(HttpStatusCode.Unauthorized, after.StatusCode);
        Assert.AreEqual("application/problem+json", after.Content.Headers.ContentType?.MediaType);
        StringAssert.Contains(after.Headers.WwwAuthenticate.ToString(), "invalid_token");
    }

    [TestMethod]
    public async Task Ending_one_session_refuses_only_that_sessions_access_token()
    {
        var ct = TestContext.CancellationToken;
        var email = NewEmail();
        using var laptop = s_testbed.Identity.Browser();
        await RegisterAsync(laptop, email, GoodPassword, ct);
        var first = await RedeemAsync(laptop, email, ct);
        using var phone = s_testbed.Identity.Browser();
        var second = await RedeemAsync(phone, email, ct);
        var sid = DecodeJwt(first).Payload.GetProperty("sid").GetString()!;

        using var end = await PostFormAsync(laptop, "/account/manage/sessions", new Dictionary<string, string> { ["sessionId"] = sid }, ct, handler: "End");
        Assert.AreEqual(HttpStatusCode.OK, end.StatusCode);

        await Poll.UntilAsync(async () => (await GetMeAsync(first, ct)).StatusCode == HttpStatusCode.Unauthorized, TimeSpan.FromSeconds(1), "session's token refused", ct);
        using var ended = await GetMeAsync(first, ct);
        using var other = await GetMeAsync(second, ct);
        Assert.AreEqual(HttpStatusCode.Unauthorized, ended.StatusCode);
        Assert.AreEqual(HttpStatusCode.OK, other.StatusCode);
    }

    [TestMethod]
    public async Task A_replica_that_starts_after_a_revocation_loads_the_marker_into_its_mirror()
    {
        var ct = TestContext.CancellationToken;
        var tokens = await NewLoginAsync(s_testbed.Identity, ct);
        var subject = DecodeJwt(tokens.Access).Payload.GetProperty("sub").GetString()!;
        var issuedAt = DecodeJwt(tokens.Access).Payload.GetProperty("iat").GetInt64();
        // Written before the replica exists, and never announced to it.
        var redis = s_testbed.Api.Services.GetRequiredService<StackExchange.Redis.IConnectionMultiplexer>().GetDatabase();
        await redis.StringSetAsync(ClippyBot.Contracts.RevocationKeys.RevokedBefore(subject), issuedAt, TimeSpan.FromMinutes(20));

        await using var replica = await ApiHost.StartReplicaAsync(s_testbed.Identity, s_testbed.Api, ct);
        var mirror = replica.Services.GetRequiredService<ClippyBot.Api.Authentication.RevocationMarkers>();
        // A load may already be under way (then LoadAsync returns at once): wait for it.
        await Poll.UntilAsync(async () => { await mirror.LoadAsync(); return mirror.Mirrored; }, TimeSpan.FromSeconds(10), "mirror loaded", ct);
        Assert.IsTrue(mirror.Mirrored);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/me");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", tokens.Access);
        using var response = await replica.CreateClient().SendAsync(request, ct);
        Assert.AreEqual(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [TestMethod]
    public async Task When_redis_cannot_answer_authenticated_requests_fail_closed_with_503()
    {
        var ct = TestContext.CancellationToken;
        var deadRedis = $"127.0.0.1:{LocalInfrastructureOptions.FreePort()},connectTimeout=300,asyncTimeout=300,syncTimeout=300";
        await using var api = await ApiHost.StartAsync(s_testbed.Identity, deadRedis, ct, waitHealthy: false);
        var tokens = await NewLoginAsync(s_testbed.Identity, ct);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/me");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", tokens.Access);
        using var response = await api.CreateClient().SendAsync(request, ct);

        Assert.AreEqual(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        StringAssert.Contains(await response.Content.ReadAsStringAsync(ct), "revocation-unavailable");
    }

    [TestMethod]
    public async Task A_loaded_mirror_stops_answering_when_the_redis_connection_drops_and_requests_fail_closed()
    {
        var ct = TestContext.CancellationToken;
        var redis = TestRedis.Start();
        var stopped = false;
        try
        {
            await using var api = await ApiHost.StartAsync(s_testbed.Identity, redis.ConnectionString + ",connectTimeout=300,asyncTimeout=300,syncTimeout=300", ct);
            var mirror = api.Services.GetRequiredService<ClippyBot.Api.Authentication.RevocationMarkers>();
            await Poll.UntilAsync(async () => { await mirror.LoadAsync(); return mirror.Mirrored; }, TimeSpan.FromSeconds(10), "mirror loaded", ct);
            var tokens = await NewLoginAsync(s_testbed.Identity, ct);
            async Task<HttpStatusCode> MeAsync()
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, "/api/me");
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", tokens.Access);
                using var response = await api.CreateClient().SendAsync(request, ct);
                return response.StatusCode;
            }
            Assert.AreEqual(HttpStatusCode.OK, await MeAsync(), "answered from the loaded mirror");

            // The cache goes away under a loaded mirror: revocations published meanwhile would be missed, so the mirror must
            // stop answering and every authenticated request fail closed.
            redis.Dispose();
            stopped = true;
            await Poll.UntilAsync(async () => await MeAsync() == HttpStatusCode.ServiceUnavailable, TimeSpan.FromSeconds(15), "fail closed once the connection drops", ct);
            Assert.IsFalse(mirror.Mirrored);
        }
        finally
        {
            if (!stopped)
            {
                redis.Dispose();
            }
        }
    }

    private static async Task<string> RedeemAsync(HttpClient browser, string email, CancellationToken ct)
    {
        var pkce = Pkce.Create();
        var code = await SignInForCodeAsync(browser, email, GoodPassword, pkce, ct);
        var (_, tokens) = await RedeemCodeAsync(s_testbed.Identity.CreateClient(), code, pkce, ct);
        return tokens.GetProperty("access_token").GetString()!;
    }

    private static async Task<HttpResponseMessage> GetMeAsync(string? accessToken, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/me");
        if (accessToken is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        }
        return await s_testbed.Api.CreateClient().SendAsync(request, ct);
    }
}
