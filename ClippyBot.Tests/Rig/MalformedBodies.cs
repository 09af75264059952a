using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.Rig;

/// <summary>
/// Walks every body-taking route in a service's own routing table (POST, PUT, PATCH, DELETE) and sends each a truncated
/// body, a JSON array, wrong member types, an empty body, no content type and a 10,000-deep nested array. Route
/// parameters become fresh GUIDs (for <c>:guid</c>) or a name that matches nothing, unless <c>fill</c> says otherwise.
/// </summary>
public static class MalformedBodies
{
    private static readonly string Deep = new string('[', 10_000) + new string(']', 10_000);

    private static readonly (string Name, string Text, string? ContentType)[] Bodies =
    [
        ("truncated", "{\"name\": ", "application/json"),
        ("array", "[]", "application/json"),
        ("wrong type", "{\"name\": 5, \"scopes\": \"x\", \"role\": 7, \"expiresAt\": true, \"workspaceId\": [], \"grants\": 1, \"userIds\": \"x\"}", "application/json"),
        ("empty", "", "application/json"),
        ("no content type", "x", null),
        ("10,000-deep", Deep, "application/json"),
    ];

    /// <summary>The routes walked (method and pattern) and every answer of 500 or more, as "METHOD pattern [body] → status".</summary>
    public static async Task<(int Routes, List<string> ServerErrors)> WalkAsync(IServiceProvider services, HttpClient client, CancellationToken ct,
        Func<string, string?>? fill = null)
    {
        var routes = services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? []).Select(m => (Method: m, Pattern: e.RoutePattern.RawText!)))
            .Where(r => r.Method is "POST" or "PUT" or "PATCH" or "DELETE")
            .Distinct()
            .ToList();
        var failures = new List<string>();
        foreach (var (method, pattern) in routes)
        {
            var path = System.Text.RegularExpressions.Regex.Replace(pattern, "\\{\\*?([A-Za-z]+)(:[a-z]+)?\\??\\}", m =>
                fill?.Invoke(m.Value) ?? (m.Groups[2].Value == ":guid" ? Guid.NewGuid().ToString() : "no-such-" + m.Groups[1].Value.ToLowerInvariant()));
            path = path.StartsWith('/') ? path : "/" + path;
            foreach (var (name, text, contentType) in Bodies)
            {
                using var request = new HttpRequestMessage(new HttpMethod(method), path)
                {
                    Content = new StringContent(text, Encoding.UTF8),
                };
                request.Content.Headers.ContentType = contentType is null ? null : new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
                using var response = await client.SendAsync(request, ct);
                if ((int)response.StatusCode >= 500)
                {
                    failures.Add($"{method} {pattern} [{name}] → {(int)response.StatusCode}");
                }
            }
        }
        return (routes.Count, failures);
    }
}
