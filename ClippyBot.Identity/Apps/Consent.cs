using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Data;
using ClippyBot.Identity.Oidc;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace ClippyBot.Identity.Apps;

/// <summary>
/// The consent step of the authorization endpoint for third-party apps: the first time, whenever an app asks for more
/// than was granted, and on <c>prompt=consent</c>, the person sees in plain words what each scope lets the app do and
/// allows or denies. The page posts back to the authorization endpoint with the request's parameters and an
/// anti-forgery token (no script); allowing is remembered per person and app (<see cref="AppConsent"/>), denying answers
/// the app <c>access_denied</c>.
/// </summary>
internal static class Consent
{
    public const string DecisionField = "consent_decision";

    /// <summary>Null to go on issuing the code; otherwise the answer (the page, or an error for the app).</summary>
    public static async Task<IResult?> DecideAsync(HttpContext context, OpenIddictRequest request, ApplicationUser user, OidcServices services)
    {
        var ct = context.RequestAborted;
        var db = services.Services.GetRequiredService<IdentityDataContext>();
        var clientId = request.ClientId!;
        var requested = request.GetScopes().Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var consent = await db.AppConsents.SingleOrDefaultAsync(c => c.UserId == user.Id && c.ClientId == clientId, ct);
        var granted = consent?.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [];

        var decision = HttpMethods.IsPost(context.Request.Method) && context.Request.HasFormContentType
            ? context.Request.Form[DecisionField].ToString()
            : "";
        var antiforgery = services.Services.GetRequiredService<IAntiforgery>();
        if (decision.Length > 0 && await antiforgery.IsRequestValidAsync(context))
        {
            var registry = services.Apps;
            if (decision == "deny")
            {
                await registry.RecordConsentAsync(user.Id, clientId, "app.consent-denied", string.Join(' ', requested), ct);
                return OidcEndpoints.Forbid(Errors.AccessDenied, "The person did not allow the app's request.");
            }
            if (decision == "allow")
            {
                var scopes = string.Join(' ', granted.Union(requested, StringComparer.Ordinal).Order(StringComparer.Ordinal));
                var now = services.Time.GetUtcNow();
                // One statement: two "Allow" posts at once (a double click) both succeed instead of racing to insert.
                await db.Database.ExecuteSqlAsync($"""
                    INSERT INTO "AppConsents" ("UserId", "ClientId", "Scopes", "GrantedAt") VALUES ({user.Id}, {clientId}, {scopes}, {now})
                    ON CONFLICT ("UserId", "ClientId") DO UPDATE SET "Scopes" = EXCLUDED."Scopes", "GrantedAt" = EXCLUDED."GrantedAt"
                    """, ct);
                await registry.RecordConsentAsync(user.Id, clientId, "app.consent-granted", scopes, ct);
                return null;
            }
        }

        if (requested.All(granted.Contains) && !request.HasPromptValue(PromptValues.Consent))
        {
            return null;
        }
        if (request.HasPromptValue(PromptValues.None))
        {
            return OidcEndpoints.Forbid(Errors.ConsentRequired, "The person has not allowed this app yet.");
        }
        var application = await services.Services.GetRequiredService<IOpenIddictApplicationManager>().FindByClientIdAsync(clientId, ct);
        var name = application is null ? clientId : await services.Services.GetRequiredService<IOpenIddictApplicationManager>().GetDisplayNameAsync(application, ct) ?? clientId;
        return Page(context, antiforgery, name, requested, granted);
    }

    private static IResult Page(HttpContext context, IAntiforgery antiforgery, string appName, List<string> requested, string[] granted)
    {
        var html = HtmlEncoder.Default;
        var tokens = antiforgery.GetAndStoreTokens(context);
        var fields = new StringBuilder();
        var source = context.Request.HasFormContentType ? context.Request.Form.Select(p => (p.Key, p.Value)) : context.Request.Query.Select(p => (p.Key, p.Value));
        foreach (var (name, values) in source)
        {
            // The request's own parameters come back with the decision (not a decision or token of an earlier post).
            if (name is DecisionField || name == tokens.FormFieldName)
            {
                continue;
            }
            foreach (var value in values)
            {
                fields.Append(CultureInfo.InvariantCulture, $"<input type=\"hidden\" name=\"{html.Encode(name)}\" value=\"{html.Encode(value ?? "")}\" />");
            }
        }
        var list = new StringBuilder();
        foreach (var scope in requested)
        {
            var words = AppRules.ScopeDescriptions.GetValueOrDefault(scope, scope);
            var isNew = granted.Length > 0 && !granted.Contains(scope, StringComparer.Ordinal) ? " <strong>(new)</strong>" : "";
            list.Append(CultureInfo.InvariantCulture, $"<li data-scope=\"{html.Encode(scope)}\">{html.Encode(words)}{isNew}</li>");
        }
        var page = $"""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Allow {html.Encode(appName)}? · ClippyBot</title><link rel="stylesheet" href="/css/site.css"></head>
            <body><main><h1>Allow {html.Encode(appName)} to use your ClippyBot account?</h1>
            <p>{html.Encode(appName)} is not made by ClippyBot. If you allow it, it can:</p>
            <ul class="consent-scopes">{list}</ul>
            <p>You can disconnect it at any time under <a href="/account/manage/apps">Connected apps</a>.</p>
            <form method="post" action="{html.Encode(context.Request.PathBase + context.Request.Path)}">{fields}<input name="{html.Encode(tokens.FormFieldName)}" type="hidden" value="{html.Encode(tokens.RequestToken ?? "")}" />
            <button type="submit" name="{DecisionField}" value="allow">Allow</button>
            <button type="submit" name="{DecisionField}" value="deny">Deny</button></form></main></body></html>
            """;
        context.Response.Headers.CacheControl = "no-store";
        // The page must not be framed by the app asking (clickjacking the Allow button).
        context.Response.Headers["X-Frame-Options"] = "DENY";
        return Results.Content(page, "text/html; charset=utf-8");
    }
}
