using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ClippyBot.Identity.Data;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.WebUtilities;

namespace ClippyBot.Tests.Identity;

/// <summary>What a relying party and a user's browser do, over real HTTP against the Identity service.</summary>
public static partial class OidcFlows
{
    public const string UserScopes = "openid profile email offline_access api";

    public sealed record Pkce(string Verifier, string Challenge)
    {
        public static Pkce Create()
        {
            var verifier = Base64Url(RandomNumberGenerator.GetBytes(32));
            return new Pkce(verifier, Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(verifier))));
        }
    }

    public static string NewEmail() => $"user-{Guid.NewGuid():N}@example.test";

    public const string GoodPassword = "correct horse battery staple 42";

    public static async Task<HttpResponseMessage> PostFormAsync(HttpClient browser, string pagePath, IDictionary<string, string> fields, CancellationToken ct,
        string? handler = null)
    {
        using var page = await browser.GetAsync(new Uri(pagePath, UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.OK, page.StatusCode, $"GET {pagePath}");
        var html = await page.Content.ReadAsStringAsync(ct);
        var token = AntiforgeryField().Match(html);
        Assert.IsTrue(token.Success, $"No anti-forgery token on {pagePath}: {html}");
        var form = new Dictionary<string, string>(fields) { ["__RequestVerificationToken"] = WebUtility.HtmlDecode(token.Groups[1].Value) };
        using var content = new FormUrlEncodedContent(form);
        var target = handler is null ? pagePath : $"{pagePath}{(pagePath.Contains('?', StringComparison.Ordinal) ? '&' : '?')}handler={handler}";
        return await browser.PostAsync(new Uri(target, UriKind.Relative), content, ct);
    }

    public static async Task RegisterAsync(HttpClient browser, string email, string password, CancellationToken ct)
    {
        using var response = await PostFormAsync(browser, "/account/register", new Dictionary<string, string> { ["Email"] = email, ["Password"] = password }, ct);
        Assert.AreEqual(HttpStatusCode.Redirect, response.StatusCode, await response.Content.ReadAsStringAsync(ct));
    }

    /// <summary>Posts the login form; returns the response (302 on success).</summary>
    public static Task<HttpResponseMessage> LoginAsync(HttpClient browser, string email, string password, CancellationToken ct, string? returnUrl = null) =>
        PostFormAsync(browser, "/account/login" + (returnUrl is null ? "" : "?ReturnUrl=" + Uri.EscapeDataString(returnUrl)),
            new Dictionary<string, string> { ["Email"] = email, ["Password"] = password, ["ReturnUrl"] = returnUrl ?? "" }, ct);

    public static string AuthorizeUrl(Pkce? pkce, string state, string redirectUri = IdentityHost.WebRedirect, string method = "S256",
        string scope = UserScopes, string clientId = IdentityHost.DevClient) =>
        QueryHelpers.AddQueryString("/connect/authorize", new Dictionary<string, string?>
        {
            ["client_id"] = clientId,
            ["response_type"] = "code",
            ["redirect_uri"] = redirectUri,
            ["scope"] = scope,
            ["state"] = state,
            ["code_challenge"] = pkce?.Challenge,
            ["code_challenge_method"] = pkce is null ? null : method,
        }.Where(p => p.Value is not null).ToDictionary());

    /// <summary>Authorize → login form → authorize again → code at the redirect URI.</summary>
    public static async Task<string> SignInForCodeAsync(HttpClient browser, string email, string password, Pkce pkce, CancellationToken ct,
        string clientId = IdentityHost.DevClient, string redirectUri = IdentityHost.WebRedirect, string scope = UserScopes)
    {
        var state = Guid.NewGuid().ToString("N");
        var authorize = AuthorizeUrl(pkce, state, redirectUri, scope: scope, clientId: clientId);
        using var first = await browser.GetAsync(new Uri(authorize, UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.Redirect, first.StatusCode, await first.Content.ReadAsStringAsync(ct));
        StringAssert.StartsWith(first.Headers.Location!.AbsolutePath, "/account/login");
        var returnUrl = QueryHelpers.ParseQuery(first.Headers.Location.Query)["ReturnUrl"].ToString();

        using var login = await LoginAsync(browser, email, password, ct, returnUrl);
        Assert.AreEqual(HttpStatusCode.Redirect, login.StatusCode, await login.Content.ReadAsStringAsync(ct));
        Assert.AreEqual(returnUrl, login.Headers.Location!.OriginalString);

        using var second = await browser.GetAsync(login.Headers.Location, ct);
        Assert.AreEqual(HttpStatusCode.Redirect, second.StatusCode, await second.Content.ReadAsStringAsync(ct));
        var callback = second.Headers.Location!;
        StringAssert.StartsWith(callback.ToString(), redirectUri);
        var query = QueryHelpers.ParseQuery(callback.Query);
        Assert.AreEqual(state, query["state"].ToString());
        return query["code"].ToString();
    }

    /// <summary>In <paramref name="browser"/>, a new user registers and signs in through <paramref name="clientId"/>.</summary>
    public static async Task<(string Email, string Code, Pkce Pkce)> RegisterAndSignInAsync(HttpClient browser, CancellationToken ct,
        string clientId = IdentityHost.DevClient, string redirectUri = IdentityHost.WebRedirect)
    {
        var email = NewEmail();
        await RegisterAsync(browser, email, GoodPassword, ct);
        var pkce = Pkce.Create();
        return (email, await SignInForCodeAsync(browser, email, GoodPassword, pkce, ct, clientId, redirectUri), pkce);
    }

    /// <summary>A new user signs in through <paramref name="clientId"/>; returns the code the client receives.</summary>
    public static async Task<(string Code, Pkce Pkce)> NewUserCodeAsync(
        WebApplicationFactory<IdentityDataContext> identity, CancellationToken ct, string clientId = IdentityHost.DevClient)
    {
        using var browser = identity.Browser();
        var (_, code, pkce) = await RegisterAndSignInAsync(browser, ct, clientId);
        return (code, pkce);
    }

    /// <summary>A new user's login redeemed by the body-refresh client: access, ID and refresh token.</summary>
    public static async Task<(string Access, string Id, string Refresh)> NewLoginAsync(WebApplicationFactory<IdentityDataContext> identity, CancellationToken ct)
    {
        var (code, pkce) = await NewUserCodeAsync(identity, ct);
        var (status, tokens) = await RedeemCodeAsync(identity.CreateClient(), code, pkce, ct);
        Assert.AreEqual(HttpStatusCode.OK, status, tokens.ToString());
        return (tokens.GetProperty("access_token").GetString()!, tokens.GetProperty("id_token").GetString()!, tokens.GetProperty("refresh_token").GetString()!);
    }

    public static async Task<(HttpStatusCode Status, JsonElement Body)> TokenAsync(HttpClient client, IDictionary<string, string> form, CancellationToken ct)
    {
        using var content = new FormUrlEncodedContent(form);
        using var response = await client.PostAsync(new Uri("/connect/token", UriKind.Relative), content, ct);
        var json = await response.Content.ReadAsStringAsync(ct);
        using var doc = JsonDocument.Parse(json);
        return (response.StatusCode, doc.RootElement.Clone());
    }

    public static Task<(HttpStatusCode Status, JsonElement Body)> RedeemCodeAsync(HttpClient client, string code, Pkce pkce, CancellationToken ct,
        string clientId = IdentityHost.DevClient, string redirectUri = IdentityHost.WebRedirect) =>
        TokenAsync(client, new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code",
            ["client_id"] = clientId,
            ["code"] = code,
            ["redirect_uri"] = redirectUri,
            ["code_verifier"] = pkce.Verifier,
        }, ct);

    public static Task<(HttpStatusCode Status, JsonElement Body)> RefreshAsync(HttpClient client, string refreshToken, CancellationToken ct) =>
        TokenAsync(client, new Dictionary<string, string>
        {
            ["grant_type"] = "refresh_token",
            ["client_id"] = IdentityHost.DevClient,
            ["refresh_token"] = refreshToken,
        }, ct);

    public static Task<(HttpStatusCode Status, JsonElement Body)> ClientCredentialsAsync(HttpClient client, string clientId, string secret, CancellationToken ct, string scope = "pluginhost") =>
        TokenAsync(client, new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = clientId,
            ["client_secret"] = secret,
            ["scope"] = scope,
        }, ct);

    public static async Task<bool> IsActiveAsync(HttpClient client, string token, CancellationToken ct)
    {
        using var content = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["token"] = token,
            ["client_id"] = IdentityHost.ApiResourceClient,
            ["client_secret"] = IdentityHost.ApiResourceSecret,
        });
        using var response = await client.PostAsync(new Uri("/connect/introspect", UriKind.Relative), content, ct);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        return doc.RootElement.GetProperty("active").GetBoolean();
    }

    /// <summary>Header and payload of a JWS, decoded without validation (validation is a separate assertion).</summary>
    public static (JsonElement Header, JsonElement Payload) DecodeJwt(string jwt)
    {
        var parts = jwt.Split('.');
        Assert.HasCount(3, parts, "a signed JWT has three parts");
        using var header = JsonDocument.Parse(Base64UrlDecode(parts[0]));
        using var payload = JsonDocument.Parse(Base64UrlDecode(parts[1]));
        return (header.RootElement.Clone(), payload.RootElement.Clone());
    }

    public static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static byte[] Base64UrlDecode(string text)
    {
        var s = text.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(s + new string('=', (4 - s.Length % 4) % 4));
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();

    [GeneratedRegex("<input type=\"hidden\" name=\"([^\"]+)\" value=\"([^\"]*)\" />")]
    private static partial Regex HiddenField();

    /// <summary>
    /// The person answers the consent page <paramref name="page"/> (200 from the authorization endpoint) as a browser
    /// would: the page's form with its hidden fields, its anti-forgery token and the button pressed ("allow" or "deny").
    /// </summary>
    public static async Task<HttpResponseMessage> AnswerConsentAsync(HttpClient browser, HttpResponseMessage page, string decision, CancellationToken ct)
    {
        Assert.AreEqual(HttpStatusCode.OK, page.StatusCode, "the consent page");
        var html = await page.Content.ReadAsStringAsync(ct);
        StringAssert.Contains(html, "consent_decision");
        var form = HiddenField().Matches(html).Select(m => new KeyValuePair<string, string>(WebUtility.HtmlDecode(m.Groups[1].Value), WebUtility.HtmlDecode(m.Groups[2].Value))).ToList();
        form.Add(new("__RequestVerificationToken", WebUtility.HtmlDecode(AntiforgeryField().Match(html).Groups[1].Value)));
        form.Add(new("consent_decision", decision));
        using var content = new FormUrlEncodedContent(form);
        return await browser.PostAsync(new Uri("/connect/authorize", UriKind.Relative), content, ct);
    }
}
