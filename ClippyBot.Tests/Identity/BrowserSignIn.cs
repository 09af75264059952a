using System.Net;
using System.Net.Sockets;
using ClippyBot.Identity.Data;
using Microsoft.Playwright;
using Totp = ClippyBot.Identity.Crypto.Totp;

namespace ClippyBot.Tests.Identity;

/// <summary>What a person does on Identity's pages in a real browser before using another service's pages.</summary>
public static class BrowserSignIn
{
    /// <summary>Registers <paramref name="email"/>, verifies it, turns on TOTP and signs in again with a code: the session says <c>mfa</c>.</summary>
    public static async Task SignUpWithSecondFactorAsync(IPage page, Rig.ServiceFactory<IdentityDataContext> identity, string origin, string email)
    {
        ArgumentNullException.ThrowIfNull(page);
        ArgumentNullException.ThrowIfNull(identity);
        await page.GotoAsync(origin + "/account/register");
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(OidcFlows.GoodPassword);
        await page.GetByRole(AriaRole.Button, new() { Name = "Create account" }).ClickAsync();
        await identity.ConfirmEmailAsync(email);
        await SignInAsync(page, origin, email);
        await page.GotoAsync(origin + "/account/manage/two-factor");
        await page.GetByRole(AriaRole.Button, new() { Name = "Set up two-factor authentication" }).ClickAsync();
        var secret = OtpNet.Base32Encoding.ToBytes(await page.Locator("#totp-secret").InnerTextAsync());
        await page.GetByLabel("Code from your authenticator app").FillAsync(Totp.Compute(secret, DateTimeOffset.UtcNow));
        await page.GetByRole(AriaRole.Button, new() { Name = "Turn on" }).ClickAsync();
        await Assertions.Expect(page.Locator("#recovery-codes code").First).ToBeVisibleAsync();
        await page.Context.ClearCookiesAsync();
        await SignInAsync(page, origin, email);
        // The next time step's code: the one used to turn it on is spent.
        await page.GetByLabel("Code from your authenticator app, or one of your recovery codes").FillAsync(Totp.Compute(secret, DateTimeOffset.UtcNow.AddSeconds(30)));
        await page.GetByRole(AriaRole.Button, new() { Name = "Verify" }).ClickAsync();
        await Assertions.Expect(page).ToHaveURLAsync(origin + "/account/manage");
    }

    public static async Task SignInAsync(IPage page, string origin, string email)
    {
        ArgumentNullException.ThrowIfNull(page);
        await page.GotoAsync(origin + "/account/login");
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(OidcFlows.GoodPassword);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
