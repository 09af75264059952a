using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;

namespace ClippyBot.Bench;

/// <summary>
/// Apps registered at run time (docs/apps.md), over HTTP as a developer would: sign up, verify (the bench has no mail:
/// the row is set as the link would), two-factor, register a confidential app on the page. <c>register</c> prints its
/// client id and secret for wrk; <c>propagation</c> rotates its secret on one replica N times and measures how long the
/// other replica takes to accept each new secret (the cost of a client change reaching every replica).
/// </summary>
public static partial class AppsBench
{
    /// <summary>ClippyBot.Bench apps-register IDENTITY_URL: prints "CLIENT id secret".</summary>
    public static async Task<int> RegisterAsync(string identity)
    {
        using var developer = new Developer(new Uri(identity));
        await developer.SignUpAsync();
        var (id, secret) = await developer.CreateAppAsync();
        Console.WriteLine($"CLIENT {id} {secret} {developer.Email} {developer.Password}");
        return 0;
    }

    /// <summary>ClippyBot.Bench apps-propagation REPLICA_A REPLICA_B rounds: rotation on A until B accepts the new secret.</summary>
    public static async Task<int> PropagationAsync(string replicaA, string replicaB, int rounds)
    {
        using var developer = new Developer(new Uri(replicaA));
        await developer.SignUpAsync();
        var (id, _) = await developer.CreateAppAsync();
        using var other = new HttpClient { BaseAddress = new Uri(replicaB) };
        var latencies = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            var secret = await developer.RotateAsync(id);
            var clock = Stopwatch.StartNew();
            while (!await IssuesAsync(other, id, secret))
            {
                if (clock.Elapsed > TimeSpan.FromSeconds(60))
                {
                    Console.Error.WriteLine("the other replica did not accept the new secret within 60 s");
                    return 1;
                }
            }
            latencies.Add(clock.Elapsed.TotalMilliseconds);
        }
        latencies.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT rounds={rounds} p50_ms={latencies[latencies.Count / 2]:0.0} max_ms={latencies[^1]:0.0} (rotation answered on A → first token from B with the new secret)"));
        return 0;
    }

    private static async Task<bool> IssuesAsync(HttpClient client, string id, string secret)
    {
        using var content = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = id, ["client_secret"] = secret, ["scope"] = "api",
        });
        using var response = await client.PostAsync(new Uri("/connect/token", UriKind.Relative), content);
        return response.StatusCode == HttpStatusCode.OK;
    }

    /// <summary>A browser over plain http to a service behind "TLS termination": Secure cookies are kept by hand.</summary>
    private sealed partial class Developer(Uri identity) : IDisposable
    {
        private readonly HttpClient _http = new(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = identity };
        private readonly Dictionary<string, string> _cookies = new(StringComparer.Ordinal);

        public string Email { get; } = $"bench-{Guid.NewGuid():N}@example.test";

        public string Password { get; } = "bench developer passphrase 42";

        public async Task SignUpAsync()
        {
            await PostAsync("/account/register", null, [new("Email", Email), new("Password", Password)]);
            await using (var db = new Npgsql.NpgsqlConnection(Environment.GetEnvironmentVariable("ConnectionStrings__identitydb")))
            {
                await db.OpenAsync();
                await using var verify = new Npgsql.NpgsqlCommand("UPDATE \"AspNetUsers\" SET \"EmailConfirmed\" = true WHERE \"Email\" = @email", db);
                verify.Parameters.AddWithValue("email", Email);
                await verify.ExecuteNonQueryAsync();
            }
            await PostAsync("/account/login", null, [new("Email", Email), new("Password", Password)]);
            var started = await PostAsync("/account/manage/two-factor", "Start", []);
            var secret = OtpNet.Base32Encoding.ToBytes(TotpSecret().Match(started).Groups[1].Value);
            await PostAsync("/account/manage/two-factor", "Confirm", [new("Code", ClippyBot.Identity.Crypto.Totp.Compute(secret, DateTimeOffset.UtcNow))]);
        }

        public async Task<(string Id, string Secret)> CreateAppAsync()
        {
            var page = await PostAsync("/developers/apps", "Create",
            [
                new("Form.Name", "Bench app"), new("Form.Kind", "server"), new("Form.GrantTypes", "client_credentials"),
                new("Form.RedirectUris", ""), new("Form.PostLogoutRedirectUris", ""), new("Form.Scopes", "api"),
            ]);
            var id = ClientId().Match(page);
            return id.Success ? (id.Groups[1].Value, Secret().Match(page).Groups[1].Value) : throw new InvalidOperationException("not registered: " + page);
        }

        public void Dispose() => _http.Dispose();

        public async Task<string> RotateAsync(string id) => Secret().Match(await PostAsync("/developers/apps/" + id, "Rotate", [])).Groups[1].Value;

        private async Task<string> PostAsync(string path, string? handler, List<KeyValuePair<string, string>> fields)
        {
            var form = await SendAsync(new HttpRequestMessage(HttpMethod.Get, path));
            var token = Antiforgery().Match(form);
            fields.Add(new("__RequestVerificationToken", WebUtility.HtmlDecode(token.Groups[1].Value)));
            return await SendAsync(new HttpRequestMessage(HttpMethod.Post, handler is null ? path : $"{path}?handler={handler}") { Content = new FormUrlEncodedContent(fields) });
        }

        private async Task<string> SendAsync(HttpRequestMessage request)
        {
            using (request)
            {
                if (_cookies.Count > 0)
                {
                    request.Headers.Add("Cookie", string.Join("; ", _cookies.Select(c => $"{c.Key}={c.Value}")));
                }
                using var response = await _http.SendAsync(request);
                foreach (var header in response.Headers.TryGetValues("Set-Cookie", out var values) ? values : [])
                {
                    var pair = header.Split(';')[0].Split('=', 2);
                    _cookies[pair[0]] = pair[1];
                }
                return await response.Content.ReadAsStringAsync();
            }
        }

        [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
        private static partial Regex Antiforgery();

        [GeneratedRegex("<code id=\"totp-secret\">([^<]+)</code>")]
        private static partial Regex TotpSecret();

        [GeneratedRegex("<code data-client-id>([^<]+)</code>")]
        private static partial Regex ClientId();

        [GeneratedRegex("<code data-client-secret>([^<]+)</code>")]
        private static partial Regex Secret();
    }
}
