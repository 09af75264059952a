using System.Text.Json;
using ClippyBot.Identity.Data;
using ClippyBot.Identity.Oidc;
using ClippyBot.Tests.Rig;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Npgsql;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Identity;

[TestClass]
public sealed class KeyRotationTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task A_new_key_is_published_before_it_signs_and_the_old_one_stays_published_until_its_tokens_expire()
    {
        var ct = TestContext.CancellationToken;
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var identity = await IdentityHost.StartAsync(ct, new Dictionary<string, string?>
        {
            ["Oidc:SigningKeyRotationPeriod"] = "1.00:00:00",
            ["Oidc:SigningKeyPublishAhead"] = "02:00:00",
        }, services => services.AddSingleton<TimeProvider>(clock));
        var ring = identity.Services.GetRequiredService<SigningKeyRing>();
        var client = identity.CreateClient();

        var tokenA = await ServiceTokenAsync(client, ct);
        var kid1 = Kid(tokenA);
        CollectionAssert.AreEqual(new[] { kid1 }, await JwksKidsAsync(client, ct));

        // Inside the publish-ahead window: the successor appears in JWKS but does not sign yet.
        clock.Advance(TimeSpan.FromHours(23));
        await ring.RefreshAsync(ct);
        var published = await JwksKidsAsync(client, ct);
        Assert.HasCount(2, published);
        var kid2 = published.Single(k => k != kid1);
        Assert.AreEqual(kid1, Kid(await ServiceTokenAsync(client, ct)));

        // Past the rotation: the successor signs, the old key is still published, and old tokens still validate.
        clock.Advance(TimeSpan.FromHours(2));
        await ring.RefreshAsync(ct);
        var tokenC = await ServiceTokenAsync(client, ct);
        Assert.AreEqual(kid2, Kid(tokenC));
        CollectionAssert.Contains(await JwksKidsAsync(client, ct), kid1);
        Assert.IsTrue(await SignatureValidAsync(client, tokenA, ct), "a token signed by the retired key validates against JWKS");
        Assert.IsTrue(await SignatureValidAsync(client, tokenC, ct));

        // Once every token the old key could have signed has expired (refresh tokens: 14 days), it is gone.
        clock.Advance(TimeSpan.FromDays(15));
        await ring.RefreshAsync(ct);
        var later = await JwksKidsAsync(client, ct);
        CollectionAssert.DoesNotContain(later, kid1);
        Assert.IsFalse(await SignatureValidAsync(client, tokenA, ct));
    }

    [TestMethod]
    public async Task An_operators_rotation_signs_with_a_new_key_at_once_and_unpublishes_the_old_one_once_its_access_tokens_expired()
    {
        var ct = TestContext.CancellationToken;
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var identity = await IdentityHost.StartAsync(ct, new Dictionary<string, string?>(), services => services.AddSingleton<TimeProvider>(clock));
        var ring = identity.Services.GetRequiredService<SigningKeyRing>();
        var client = identity.CreateClient();
        // The scheduled successor already published ahead (never used) is dropped by the rotation too.
        clock.Advance(TimeSpan.FromDays(29));
        await ring.RefreshAsync(ct);
        var before = await JwksKidsAsync(client, ct);
        Assert.HasCount(2, before);
        var tokenA = await ServiceTokenAsync(client, ct);

        var newKid = await ring.RotateNowAsync(ct);

        Assert.AreEqual(newKid, Kid(await ServiceTokenAsync(client, ct)), "the new key signs at once");
        Assert.AreEqual(newKid, await ring.RotateNowAsync(ct), "a retried rotation (within a minute) keeps the key that has just begun signing");
        var after = await JwksKidsAsync(client, ct);
        CollectionAssert.AreEquivalent(new[] { Kid(tokenA), newKid }, after, "the key that signed stays published; the unused successor is gone");
        Assert.IsTrue(await SignatureValidAsync(client, tokenA, ct), "access tokens it signed keep working until they expire");

        // 20 minutes later (15-minute access tokens + 5): the rotated key is no longer published, not after 14 days.
        clock.Advance(TimeSpan.FromMinutes(21));
        await ring.RefreshAsync(ct);
        CollectionAssert.AreEqual(new[] { newKid }, await JwksKidsAsync(client, ct));
        Assert.IsFalse(await SignatureValidAsync(client, tokenA, ct));
    }

    [TestMethod]
    public async Task A_rotation_on_one_replica_reaches_the_others_at_once_through_the_announcement()
    {
        var ct = TestContext.CancellationToken;
        await using var first = await IdentityHost.StartAsync(ct);
        await using var second = await IdentityHost.StartReplicaAsync(first, new Dictionary<string, string?>(), ct);
        var before = Kid(await ServiceTokenAsync(second.CreateClient(), ct));

        // As the containment endpoint does: rotate here, announce to the others (the periodic refresh is 5 minutes away).
        var newKid = await first.Services.GetRequiredService<SigningKeyRing>().RotateNowAsync(ct);
        await first.Services.GetRequiredService<SigningKeyChanges>().AnnounceAsync();

        Assert.AreNotEqual(before, newKid);
        await Poll.UntilAsync(async () => Kid(await ServiceTokenAsync(second.CreateClient(), ct)) == newKid, TimeSpan.FromSeconds(5),
            "the other replica signs with the new key", ct);
        CollectionAssert.Contains(await JwksKidsAsync(second.CreateClient(), ct), newKid);
    }

    [TestMethod]
    public async Task Keys_are_stored_sealed_and_survive_a_restart()
    {
        var ct = TestContext.CancellationToken;
        var kek = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64);
        string kid;
        string connectionString;
        await using (var first = await IdentityHost.StartAsync(ct, new Dictionary<string, string?> { ["Oidc:KeyEncryptionKey"] = kek }))
        {
            kid = Kid(await ServiceTokenAsync(first.CreateClient(), ct));
            connectionString = first.Settings["ConnectionStrings:identitydb"]!;
        }

        // Nothing in the row reads as a PEM/PKCS#8 key: the private key is AES-GCM ciphertext.
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync(ct);
            await using var command = new NpgsqlCommand("""SELECT "ProtectedKey" FROM "SigningKeys" WHERE "Id" = @id""", connection);
            command.Parameters.AddWithValue("id", kid);
            var sealedKey = (byte[])(await command.ExecuteScalarAsync(ct))!;
            Assert.AreEqual(ClippyBot.Security.SealedValue.Version, sealedKey[0], "sealed-value format version");
            Assert.ThrowsExactly<System.Security.Cryptography.CryptographicException>(() =>
                System.Security.Cryptography.ECDsa.Create().ImportPkcs8PrivateKey(sealedKey, out _));
        }

        var settings = new Dictionary<string, string?>(IdentityHostSettingsFor(connectionString)) { ["Oidc:KeyEncryptionKey"] = kek };
        await using var second = new ServiceFactory<IdentityDataContext>(settings);
        second.ClientOptions.BaseAddress = new Uri("https://localhost");
        await Poll.UntilAsync(async () => (await second.CreateClient().GetAsync(new Uri("/health", UriKind.Relative), ct)).IsSuccessStatusCode, TimeSpan.FromSeconds(60), "restarted identity healthy", ct);
        Assert.AreEqual(kid, Kid(await ServiceTokenAsync(second.CreateClient(), ct)), "the same persisted key signs after a restart");
    }

    [TestMethod]
    public async Task Pruning_deletes_token_rows_only_once_they_can_no_longer_matter()
    {
        var ct = TestContext.CancellationToken;
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        // OpenIddict's store judges expiry by the real clock: one-second tokens expire during the test.
        await using var identity = await IdentityHost.StartAsync(ct, new Dictionary<string, string?>
        {
            ["Oidc:AccessTokenLifetime"] = "00:00:01",
            ["Oidc:IdentityTokenLifetime"] = "00:00:01",
        }, services => services.AddSingleton<TimeProvider>(clock));
        var (code, pkce) = await NewUserCodeAsync(identity, ct);
        var (_, tokens) = await RedeemCodeAsync(identity.CreateClient(), code, pkce, ct);
        await RefreshAsync(identity.CreateClient(), tokens.GetProperty("refresh_token").GetString()!, ct);
        var pruner = identity.Services.GetRequiredService<TokenPruningService>();

        var rowsBefore = await CountTokensAsync(identity, ct);
        Assert.IsGreaterThanOrEqualTo(3, rowsBefore);
        var expiredBy = DateTimeOffset.UtcNow.AddSeconds(2);
        await Poll.UntilAsync(() => Task.FromResult(DateTimeOffset.UtcNow > expiredBy), TimeSpan.FromSeconds(5), "one-second tokens expired", ct);

        // Expired, but younger than the retention (the longest token lifetime): kept.
        await pruner.PruneAsync(ct);
        Assert.AreEqual(rowsBefore, await CountTokensAsync(identity, ct));

        // Past the retention, every expired row goes; the live refresh token stays.
        clock.Advance(TimeSpan.FromDays(15));
        await Poll.UntilAsync(async () =>
        {
            await pruner.PruneAsync(ct);
            return await CountTokensAsync(identity, ct) == 1;
        }, TimeSpan.FromSeconds(15), "only the live refresh token left", ct);
    }

    private static async Task<long> CountTokensAsync(ServiceFactory<IdentityDataContext> identity, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(identity.Settings["ConnectionStrings:identitydb"]);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand("SELECT count(*) FROM \"OpenIddictTokens\"", connection);
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }

    private static Dictionary<string, string?> IdentityHostSettingsFor(string connectionString) => new()
    {
        ["ConnectionStrings:identitydb"] = connectionString,
        ["ConnectionStrings:cache"] = TestRig.Redis.ConnectionString,
        ["Oidc:ClientSecretHashKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
        ["Oidc:Clients:0:ClientId"] = IdentityHost.ServiceClient,
        ["Oidc:Clients:0:ClientSecret"] = IdentityHost.ServiceSecret,
        ["Oidc:Clients:0:GrantTypes:0"] = "client_credentials",
        ["Oidc:Clients:0:Scopes:0"] = "pluginhost",
    };

    private static async Task<string> ServiceTokenAsync(HttpClient client, CancellationToken ct)
    {
        var (status, body) = await ClientCredentialsAsync(client, IdentityHost.ServiceClient, IdentityHost.ServiceSecret, ct);
        Assert.AreEqual(System.Net.HttpStatusCode.OK, status, body.ToString());
        return body.GetProperty("access_token").GetString()!;
    }

    private static string Kid(string jwt) => DecodeJwt(jwt).Header.GetProperty("kid").GetString()!;

    private static async Task<string[]> JwksKidsAsync(HttpClient client, CancellationToken ct)
    {
        using var jwks = JsonDocument.Parse(await client.GetStringAsync(new Uri("/.well-known/jwks", UriKind.Relative), ct));
        return [.. jwks.RootElement.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()!)];
    }

    /// <summary>Signature against the published JWKS only: the fake clock runs days ahead of token lifetimes.</summary>
    private static async Task<bool> SignatureValidAsync(HttpClient client, string token, CancellationToken ct)
    {
        var jwks = new JsonWebKeySet(await client.GetStringAsync(new Uri("/.well-known/jwks", UriKind.Relative), ct));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = false,
            IssuerSigningKeys = jwks.GetSigningKeys(),
        });
        return result.IsValid;
    }
}
