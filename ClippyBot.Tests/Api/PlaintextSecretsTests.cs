using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using StackExchange.Redis;

namespace ClippyBot.Tests.Api;

/// <summary>
/// After exercising every feature that handles a secret, a <c>pg_dump</c> of every database and a full scan of Redis hold
/// none of them — not as text, hex (bytea) or base64: passwords, TOTP secrets and recovery codes, emailed tokens, API keys,
/// OAuth tokens, file contents, client secrets, configured keys.
/// </summary>
[TestClass]
public sealed class PlaintextSecretsTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(180_000, CooperativeCancellation = true)]
    public async Task No_known_secret_appears_in_database_dumps_or_redis()
    {
        var ct = TestContext.CancellationToken;
        await using var testbed = await ApiTestbed.StartWithAdminAsync(ct);
        var secrets = new List<(string What, string Value)>
        {
            ("client secret", IdentityHost.ServiceSecret),
            ("API key hashing key", ApiHost.ApiKeyHashKey),
            ("Api key-encryption key", ApiHost.EncryptionKey),
            ("Identity key-encryption key", testbed.Identity.Settings["Oidc:KeyEncryptionKey"]!),
        };

        // A person: password, verification link, TOTP secret, recovery codes, password reset link.
        using var browser = testbed.Identity.Browser();
        var (email, verify) = await AccountFlows.RegisterWithMailAsync(browser, ct);
        secrets.Add(("password", OidcFlows.GoodPassword));
        secrets.Add(("verification token", Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(verify.Query)["token"].ToString()));
        using (await OidcFlows.LoginAsync(browser, email, OidcFlows.GoodPassword, ct))
        {
        }
        var (totp, codes) = await AccountFlows.EnrolTwoFactorAsync(browser, TimeProvider.System, ct);
        secrets.Add(("TOTP secret (base32)", ClippyBot.Identity.Crypto.Totp.ToBase32(totp)));
        secrets.Add(("TOTP secret (bytes)", Convert.ToHexStringLower(totp)));
        secrets.AddRange(codes.Select(c => ("recovery code", c)));
        using (await OidcFlows.PostFormAsync(testbed.Identity.Browser(), "/account/forgot-password", new Dictionary<string, string> { ["Email"] = email }, ct))
        {
        }
        var reset = TestSmtp.LinkIn(await TestRig.Smtp.WaitForAsync(email, "Reset your ClippyBot password", ct), "/account/reset-password");
        secrets.Add(("reset token", Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(reset.Query)["token"].ToString()));

        // A workspace: an API key, an OAuth connection, a file.
        var owner = await testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Secrets", ct);
        var (_, apiKey) = await ApiTestbed.CreateApiKeyAsync(owner.Client, workspaceId, ["dataRead"], null, ct);
        secrets.Add(("API key", apiKey));
        // cbk_ + 16 hex + _ ; the secret itself may contain '_' (base64url), so it is everything after that.
        secrets.Add(("API key secret part", apiKey[21..]));
        var access = "oauth-access-" + RandomNumberGenerator.GetHexString(24);
        var refresh = "oauth-refresh-" + RandomNumberGenerator.GetHexString(24);
        using (var created = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/connections", new { provider = "acme", accessToken = access, refreshToken = refresh }, ct))
        {
            Assert.AreEqual(HttpStatusCode.Created, created.StatusCode);
        }
        secrets.Add(("OAuth access token", access));
        secrets.Add(("OAuth refresh token", refresh));
        var workspaceSecret = "workspace-secret-" + RandomNumberGenerator.GetHexString(24);
        using (var stored = await owner.Client.SendJsonAsync(HttpMethod.Put, $"/api/workspaces/{workspaceId}/secrets/WEBHOOK_KEY", new { value = workspaceSecret }, ct))
        {
            Assert.AreEqual(HttpStatusCode.Created, stored.StatusCode);
        }
        secrets.Add(("workspace secret", workspaceSecret));
        var fileText = "confidential file content " + RandomNumberGenerator.GetHexString(24);
        using (var file = new ByteArrayContent(Encoding.UTF8.GetBytes(fileText)))
        {
            file.Headers.ContentType = new MediaTypeHeaderValue("text/plain");
            using var uploaded = await owner.Client.PostAsync(new Uri($"/api/workspaces/{workspaceId}/files?name=c.txt", UriKind.Relative), file, ct);
            Assert.AreEqual(HttpStatusCode.Created, uploaded.StatusCode);
        }
        secrets.Add(("file content", fileText));
        using (var keyClient = testbed.KeyClient(apiKey))
        {
            Assert.AreEqual(HttpStatusCode.OK, (await keyClient.GetAsync(new Uri($"/api/workspaces/{workspaceId}", UriKind.Relative), ct)).StatusCode);
        }

        var haystacks = new Dictionary<string, string>
        {
            ["identitydb dump"] = await TestRig.Postgres.DumpAsync(testbed.Identity.Settings["ConnectionStrings:identitydb"]!, ct),
            ["apidb dump"] = await TestRig.Postgres.DumpAsync(testbed.Api.Settings["ConnectionStrings:apidb"]!, ct),
            ["subjectkeysdb dump"] = await TestRig.Postgres.DumpAsync(testbed.Api.Settings["ConnectionStrings:subjectkeysdb"]!, ct),
            ["redis"] = await RedisContentsAsync(),
        };
        // Positive controls: the dumps hold the data (the address is not a secret), Redis holds our keys.
        StringAssert.Contains(haystacks["apidb dump"], "OAuthConnections");
        StringAssert.Contains(haystacks["identitydb dump"], email);
        StringAssert.Contains(haystacks["redis"], "clippybot");
        foreach (var (where, text) in haystacks)
        {
            foreach (var (what, value) in secrets)
            {
                foreach (var form in Forms(value))
                {
                    Assert.DoesNotContain(form, text, $"{what} found in {where}");
                }
            }
        }
    }

    /// <summary>The value as text, as hex of its UTF-8 bytes (bytea in a dump) and as base64.</summary>
    private static IEnumerable<string> Forms(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        return [value, Convert.ToHexStringLower(bytes), Convert.ToBase64String(bytes)];
    }

    private static async Task<string> RedisContentsAsync()
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(TestRig.Redis.ConnectionString + ",allowAdmin=true");
        var server = redis.GetServers().Single();
        var db = redis.GetDatabase();
        var text = new StringBuilder();
        await foreach (var key in server.KeysAsync(pageSize: 1000))
        {
            text.Append(key.ToString()).Append('=');
            switch (await db.KeyTypeAsync(key))
            {
                case RedisType.String:
                    text.Append(await db.StringGetAsync(key));
                    break;
                case RedisType.Hash:
                    foreach (var entry in await db.HashGetAllAsync(key))
                    {
                        text.Append(entry.Name).Append(':').Append(entry.Value).Append(';');
                    }
                    break;
                case RedisType.List:
                    text.AppendJoin(';', await db.ListRangeAsync(key));
                    break;
                case RedisType.Set:
                    text.AppendJoin(';', await db.SetMembersAsync(key));
                    break;
                case RedisType.SortedSet:
                    text.AppendJoin(';', await db.SortedSetRangeByRankAsync(key));
                    break;
            }
            text.Append('\n');
        }
        return text.ToString();
    }
}
