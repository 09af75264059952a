using ClippyBot.ServiceDefaults;

namespace ClippyBot.Identity.Edge;

/// <summary>
/// Browser apps (Scalar's "Authorize", single-page apps) sign people in through a popup and read the code from it when it
/// comes back to their own redirect page. Every page here says <c>Cross-Origin-Opener-Policy: same-origin</c>, which
/// cuts a popup off from the window that opened it — the app then never learns the code and the popup stays open. So
/// the pages of the authorization flow (the authorize endpoint and the sign-in pages that return to it) leave the opener
/// alone; every other page (account management, registration, the developer and admin pages) keeps <c>same-origin</c>.
/// They still refuse framing and run no script, so the opener can only watch where the popup goes, not read it.
/// Only on a developer's machine (Development, Testing), where the one popup client is Scalar's development page: in a
/// deployment a page that opened the flow could keep a handle on it and on the client's callback page (a callback that
/// trusts <c>window.opener</c> would hand it the code), so production keeps <c>same-origin</c> until clients can be
/// registered as popup clients one by one.
/// </summary>
public static class SignInPopups
{
    public static WebApplication UseSignInPopupOpenerPolicy(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        if (!app.Environment.IsLocal())
        {
            return app;
        }
        app.Use((context, next) =>
        {
            if (IsAuthorizationFlowPage(context.Request))
            {
                // Runs before the edge defaults' own callback (callbacks run last-registered first), which then keeps it.
                context.Response.OnStarting(() =>
                {
                    context.Response.Headers["Cross-Origin-Opener-Policy"] = "unsafe-none";
                    return Task.CompletedTask;
                });
            }
            return next(context);
        });
        return app;
    }

    public static bool IsAuthorizationFlowPage(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Path.Equals("/connect/authorize", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }
        return request.Path.StartsWithSegments("/account", StringComparison.OrdinalIgnoreCase)
               && (request.Path.Value ?? "").StartsWith("/account/login", StringComparison.OrdinalIgnoreCase)
               && request.Query["ReturnUrl"].ToString().StartsWith("/connect/authorize", StringComparison.OrdinalIgnoreCase);
    }
}
