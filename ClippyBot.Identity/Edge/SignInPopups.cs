namespace ClippyBot.Identity.Edge;

/// <summary>
/// Browser apps (Scalar's "Authorize", single-page apps) sign people in through a popup and read the code from it when it
/// comes back to their own redirect page. Every page here says <c>Cross-Origin-Opener-Policy: same-origin</c>, which
/// cuts a popup off from the window that opened it — the app then never learns the code and the popup stays open. So
/// the pages of the authorization flow (the authorize endpoint and the sign-in pages that return to it) leave the opener
/// alone; every other page (account management, registration, the developer and admin pages) keeps <c>same-origin</c>.
/// They still refuse framing and run no script, so the opener can only watch where the popup goes, not read it.
/// </summary>
public static class SignInPopups
{
    public static IApplicationBuilder UseSignInPopupOpenerPolicy(this IApplicationBuilder app) => app.Use((context, next) =>
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
