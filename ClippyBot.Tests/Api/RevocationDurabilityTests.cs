using ClippyBot.Contracts;
using System.Net;
using System.Net.Http.Headers;
using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.Api;

/// <summary>
/// "Sign out everywhere" holds through a cache restart: Identity keeps every marker in its database and puts it back,
/// replicas keep what they knew, and a replica started afterwards learns it from the restored cache.
/// </summary>
[TestClass]
public sealed class RevocationDurabilityTests
{
    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [TestMethod]
    [Timeout(180_000, CooperativeCancellation = true)]
    public async Task A_token_revoked_before_the_cache_restarts_empty_is_still_refused_on_every_replica()
    {
        var cache = TestRedis.Start();
        try
        {
            var redis = cache.ConnectionString + ",connectTimeout=500,asyncTimeout=500,syncTimeout=500";
            await using var identity = await IdentityHost.StartAsync(Ct, new Dictionary<string, string?>
            {
                ["ConnectionStrings:cache"] = redis,
                ["Revocation:RepublishInterval"] = "00:00:02",
            });
            await using var first = await ApiHost.StartAsync(identity, redis, Ct);
            await using var second = await ApiHost.StartReplicaAsync(identity, first, Ct);
            var (access, _, _) = await OidcFlows.NewLoginAsync(identity, Ct);
            var subject = OidcFlows.DecodeJwt(access).Payload.GetProperty("sub").GetString()!;
            async Task<HttpStatusCode> MeAsync(ServiceFactory<ClippyBot.Api.Data.ApiDbContext> api)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, "/api/me");
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", access);
                using var response = await api.CreateClient().SendAsync(request, Ct);
                return response.StatusCode;
            }
            Assert.AreEqual(HttpStatusCode.OK, await MeAsync(first));
            Assert.AreEqual(HttpStatusCode.OK, await MeAsync(second));

            await using (var scope = identity.Services.CreateAsyncScope())
            {
                var user = await scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>().FindByIdAsync(subject);
                await scope.ServiceProvider.GetRequiredService<ClippyBot.Identity.Oidc.SessionRevoker>().RevokeAllAsync(user!, Ct);
            }
            foreach (var api in new[] { first, second })
            {
                await Poll.UntilAsync(async () => await MeAsync(api) == HttpStatusCode.Unauthorized, TimeSpan.FromSeconds(2), "refused after sign-out everywhere", Ct);
            }

            // The cache process stops and starts again on its port, empty (no persistence in local mode).
            var (port, password) = (cache.Port, cache.Password);
            cache.Dispose();
            cache = TestRedis.Start(port, password);

            // Every answer from here on is a refusal (or 503 while the connection comes back): never 200.
            var answers = new List<HttpStatusCode>();
            var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(20);
            var restored = false;
            while (DateTimeOffset.UtcNow < deadline && !restored)
            {
                answers.Add(await MeAsync(first));
                answers.Add(await MeAsync(second));
                var db = StackExchange.Redis.ConnectionMultiplexer.Connect(redis);
                restored = await db.GetDatabase().KeyExistsAsync(ClippyBot.Contracts.RevocationKeys.RevokedBefore(subject));
                await db.DisposeAsync();
                await Task.Delay(200, Ct);
            }
            Assert.IsTrue(restored, "Identity put the marker back into the restarted cache");
            CollectionAssert.DoesNotContain(answers, HttpStatusCode.OK, string.Join(",", answers));
            foreach (var api in new[] { first, second })
            {
                await Poll.UntilAsync(async () => await MeAsync(api) == HttpStatusCode.Unauthorized, TimeSpan.FromSeconds(10), "refused once the cache is back", Ct);
            }

            // A replica that never saw the revocation learns it from the restored cache.
            await using var late = await ApiHost.StartReplicaAsync(identity, first, Ct);
            Assert.AreEqual(HttpStatusCode.Unauthorized, await MeAsync(late));
        }
        finally
        {
            cache.Dispose();
        }
    }

    [TestMethod]
    public async Task A_marker_only_ever_moves_later_when_identity_writes_or_restores_it()
    {
        await using var identity = await IdentityHost.StartAsync(Ct);
        var subject = Guid.NewGuid().ToString();
        var key = ClippyBot.Contracts.RevocationKeys.RevokedBefore(subject);
        var redis = identity.Services.GetRequiredService<StackExchange.Redis.IConnectionMultiplexer>().GetDatabase();
        // A later event is already in Redis (another replica's, say); an earlier one is in the database.
        var later = DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 3600;
        await redis.StringSetAsync(key, later, TimeSpan.FromMinutes(20));
        await using (var scope = identity.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<ClippyBot.Identity.Data.IdentityDataContext>();
            db.RevocationMarkers.Add(new ClippyBot.Identity.Oidc.StoredRevocationMarker { Key = key, Value = later - 600, ExpiresAt = DateTimeOffset.UtcNow.AddMinutes(20) });
            await db.SaveChangesAsync(Ct);
        }
        var republisher = identity.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<ClippyBot.Identity.Oidc.RevocationRepublisher>().Single();
        await republisher.RepublishAsync(Ct);
        Assert.AreEqual(later, (long)await redis.StringGetAsync(key), "a restore never moves a marker earlier");

        // A new event now (earlier than the one in Redis) leaves the later value too.
        await identity.Services.GetRequiredService<ClippyBot.Identity.Oidc.RevocationMarkers>().PublishAsync(subject);
        Assert.AreEqual(later, (long)await redis.StringGetAsync(key), "nor does a write");

        // Gone from Redis (a cache restart): restored from the database.
        await redis.KeyDeleteAsync(key);
        await republisher.RepublishAsync(Ct);
        Assert.IsTrue((long)await redis.StringGetAsync(key) >= later - 600, "restored");
    }
}
