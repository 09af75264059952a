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

    /// <summary>One answer: the route's method and pattern (as in the routing table), the body sent, and the status.</summary>
    public sealed record Answer(string Method, string Pattern, string Body, int Status, string? ContentType)
    {
        public override string ToString() => $"{Method} {Pattern} [{Body}] → {Status} {ContentType}";
    }

    /// <summary>The routes walked (method and pattern) and every answer of 500 or more, as "METHOD pattern [body] → status".</summary>
    public static async Task<(int Routes, List<string> ServerErrors)> WalkAsync(IServiceProvider services, HttpClient client, CancellationToken ct,
        Func<string, string?>? fill = null)
    {
        var (routes, answers) = await AnswersAsync(services, client, ct, fill);
        return (routes, answers.Where(a => a.Status >= 500).Select(a => $"{a.Method} {a.Pattern} [{a.Body}] → {a.Status}").ToList());
    }

    /// <summary>
    /// Every answer of the walk. With <paramref name="includeReads"/>, GET routes are asked once each as well, and
    /// body-taking routes also get an empty JSON object (well-formed, every field missing).
    /// </summary>
    public static async Task<(int Routes, List<Answer> Answers)> AnswersAsync(IServiceProvider services, HttpClient client, CancellationToken ct,
        Func<string, string?>? fill = null, bool includeReads = false, Func<string, bool>? patterns = null)
    {
        var routes = services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? []).Select(m => (Method: m, Pattern: e.RoutePattern.RawText!)))
            .Where(r => r.Method is "POST" or "PUT" or "PATCH" or "DELETE" || (includeReads && r.Method == "GET"))
            .Where(r => patterns?.Invoke(r.Pattern) ?? true)
            .Distinct()
            .ToList();
        var answers = new List<Answer>();
        foreach (var (method, pattern) in routes)
        {
            var path = System.Text.RegularExpressions.Regex.Replace(pattern, "\\{\\*?([A-Za-z]+)(:[a-z]+)?\\??\\}", m =>
                fill?.Invoke(m.Value) ?? (m.Groups[2].Value == ":guid" ? Guid.NewGuid().ToString() : "no-such-" + m.Groups[1].Value.ToLowerInvariant()));
            path = path.StartsWith('/') ? path : "/" + path;
            IEnumerable<(string Name, string Text, string? ContentType)?> bodies = method == "GET"
                ? [null]
                : includeReads ? Bodies.Append(("empty object", "{}", "application/json")).Cast<(string, string, string?)?>() : Bodies.Cast<(string, string, string?)?>();
            foreach (var body in bodies)
            {
                using var request = new HttpRequestMessage(new HttpMethod(method), path);
                if (body is var (_, text, contentType))
                {
                    request.Content = new StringContent(text, Encoding.UTF8);
                    request.Content.Headers.ContentType = contentType is null ? null : new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
                }
                using var response = await client.SendAsync(request, ct);
                answers.Add(new Answer(method, pattern, body?.Name ?? "none", (int)response.StatusCode, response.Content.Headers.ContentType?.MediaType));
            }
        }
        return (routes.Count, answers);
    }
}
