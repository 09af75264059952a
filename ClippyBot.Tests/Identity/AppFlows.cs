using System.Net;
using System.Text.RegularExpressions;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Mvc.Testing;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Identity;

/// <summary>A developer's steps on Identity's app pages, as a browser performs them.</summary>
public static partial class AppFlows
{
    /// <summary>A new developer: registered, address verified, signed in in the returned browser (and with two-factor if asked).</summary>
    public static async Task<(HttpClient Browser, string Email)> NewDeveloperAsync(WebApplicationFactory<IdentityDataContext> identity, CancellationToken ct, bool twoFactor = false)
    {
        var browser = identity.Browser();
        var email = NewEmail();
        await RegisterAsync(browser, email, GoodPassword, ct);
        await identity.ConfirmEmailAsync(email);
        using (var login = await LoginAsync(browser, email, GoodPassword, ct))
        {
            Assert.AreEqual(HttpStatusCode.Redirect, login.StatusCode);
        }
        if (twoFactor)
        {
            await AccountFlows.EnrolTwoFactorAsync(browser, TimeProvider.System, ct);
        }
        return (browser, email);
    }

    /// <summary>Posts a page's form (fields may repeat, as checkboxes do) with the page's anti-forgery token.</summary>
    public static async Task<HttpResponseMessage> PostPageAsync(HttpClient browser, string path, string handler, IEnumerable<KeyValuePair<string, string>> fields, CancellationToken ct)
    {
        using var page = await browser.GetAsync(new Uri(path, UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.OK, page.StatusCode, $"GET {path}");
        var token = Antiforgery().Match(await page.Content.ReadAsStringAsync(ct));
        Assert.IsTrue(token.Success, $"no anti-forgery token on {path}");
        using var content = new FormUrlEncodedContent([.. fields, new("__RequestVerificationToken", WebUtility.HtmlDecode(token.Groups[1].Value))]);
        return await browser.PostAsync(new Uri($"{path}?handler={handler}", UriKind.Relative), content, ct);
    }

    /// <summary>The form fields of an app (names as the page's form has them).</summary>
    public static List<KeyValuePair<string, string>> Fields(string name, string kind, string[] grants, string[] redirects, string[] scopes, string[]? postLogout = null)
    {
        var fields = new List<KeyValuePair<string, string>> { new("Form.Name", name), new("Form.Kind", kind) };
        fields.AddRange(grants.Select(g => new KeyValuePair<string, string>("Form.GrantTypes", g)));
        fields.Add(new("Form.RedirectUris", string.Join('\n', redirects)));
        fields.Add(new("Form.PostLogoutRedirectUris", string.Join('\n', postLogout ?? [])));
        fields.AddRange(scopes.Select(s => new KeyValuePair<string, string>("Form.Scopes", s)));
        return fields;
    }

    /// <summary>Registers an app on the developer page; its client id and (once) its secret, read from the page.</summary>
    public static async Task<(string Html, string? ClientId, string? Secret)> CreateAppAsync(HttpClient browser, List<KeyValuePair<string, string>> fields, CancellationToken ct)
    {
        using var response = await PostPageAsync(browser, "/developers/apps", "Create", fields, ct);
        var html = await response.Content.ReadAsStringAsync(ct);
        Assert.AreEqual(HttpStatusCode.OK, response.StatusCode, html);
        var clientId = ClientIdOnPage().Match(html);
        var secret = SecretOnPage().Match(html);
        return (html, clientId.Success ? clientId.Groups[1].Value : null, secret.Success ? secret.Groups[1].Value : null);
    }

    /// <summary>The text beside one field of the form (RFC 7591's field name), empty when it has none.</summary>
    public static string ErrorOf(string html, string field)
    {
        var match = Regex.Match(html, $"data-error=\"{Regex.Escape(field)}\">([^<]*)<", RegexOptions.None, TimeSpan.FromSeconds(1));
        return match.Success ? WebUtility.HtmlDecode(match.Groups[1].Value).Trim() : "";
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex Antiforgery();

    [GeneratedRegex("<code data-client-id>([^<]+)</code>")]
    private static partial Regex ClientIdOnPage();

    [GeneratedRegex("<code data-client-secret>([^<]+)</code>")]
    public static partial Regex SecretOnPage();
}
