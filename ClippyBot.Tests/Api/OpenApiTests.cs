using System.Net;
using System.Text.Json;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.Api;

[TestClass]
public sealed class OpenApiTests
{
    private static ApiTestbed s_testbed = null!;

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) => s_testbed = await ApiTestbed.StartWithAdminAsync(context.CancellationToken,
        // The walk below sends about two thousand requests from one address: limits high enough that it sees the endpoints'
        // own answers, not only 429 (which every operation documents anyway).
        new Dictionary<string, string?>
        {
            ["RateLimits:KeyPrefix"] = "clippybot:rl:openapi-" + Guid.NewGuid().ToString("N"),
            ["RateLimits:Anonymous:PermitLimit"] = "100000",
            ["RateLimits:Authenticated:PermitLimit"] = "100000",
            ["RateLimits:Sensitive:PermitLimit"] = "100000",
            // As the AppHost sets them: Scalar's "Authorize" signs in through Identity with the development client.
            ["ApiDocumentation:Authority"] = "https://identity.test/",
            ["ApiDocumentation:RedirectUri"] = "https://api.test/scalar/",
        });

    [ClassCleanup]
    public static async Task StopAsync() => await s_testbed.DisposeAsync();

    [TestMethod]
    public async Task The_OpenAPI_document_lists_the_endpoints_and_declares_both_security_schemes_and_Scalar_serves_it()
    {
        using var client = s_testbed.Api.CreateClient();
        using var document = await DocumentAsync(client);
        var schemes = document.RootElement.GetProperty("components").GetProperty("securitySchemes");
        Assert.AreEqual("bearer", schemes.GetProperty("oidc").GetProperty("scheme").GetString());
        Assert.AreEqual("bearer", schemes.GetProperty("apiKey").GetProperty("scheme").GetString());
        var paths = document.RootElement.GetProperty("paths");
        Assert.IsTrue(paths.TryGetProperty("/api/workspaces", out _));
        Assert.IsTrue(paths.TryGetProperty("/api/workspaces/{workspaceId}/api-keys", out _));

        using var ui = await client.GetAsync(new Uri("/scalar", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.OK, ui.StatusCode);
        StringAssert.Contains(await ui.Content.ReadAsStringAsync(Ct), "openapi");
    }

    [TestMethod]
    public async Task The_document_and_Scalar_carry_the_authorization_code_flow_so_Authorize_signs_in_through_Identity()
    {
        using var client = s_testbed.Api.CreateClient();
        using var document = await DocumentAsync(client);
        var oauth2 = document.RootElement.GetProperty("components").GetProperty("securitySchemes").GetProperty("oauth2");
        Assert.AreEqual("oauth2", oauth2.GetProperty("type").GetString());
        var flow = oauth2.GetProperty("flows").GetProperty("authorizationCode");
        Assert.AreEqual("https://identity.test/connect/authorize", flow.GetProperty("authorizationUrl").GetString());
        Assert.AreEqual("https://identity.test/connect/token", flow.GetProperty("tokenUrl").GetString());
        Assert.IsTrue(flow.GetProperty("scopes").TryGetProperty("api", out _));
        Assert.IsTrue(document.RootElement.GetProperty("security").EnumerateArray().Any(r => r.TryGetProperty("oauth2", out _)), "oauth2 is one way in");

        using var ui = await client.GetAsync(new Uri("/scalar/", UriKind.Relative), Ct);
        var page = await ui.Content.ReadAsStringAsync(Ct);
        StringAssert.Contains(page, "clippybot-dev", "Scalar signs in as the development client");
        StringAssert.Contains(page, "https://api.test/scalar/", "and comes back to its own page");
        StringAssert.Contains(ui.Headers.GetValues("Content-Security-Policy").Single(), "connect-src 'self' https://identity.test",
            "the page may redeem the code at Identity's token endpoint, and nowhere else");
    }

    [TestMethod]
    public async Task The_document_has_exactly_the_routing_tables_operations_and_every_refusal_is_problem_details()
    {
        using var client = s_testbed.Api.CreateClient();
        using var document = await DocumentAsync(client);
        var documented = Operations(document).ToDictionary(o => (o.Method, o.Path), o => o.Responses);
        var routed = s_testbed.Api.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText!.StartsWith("/api/", StringComparison.Ordinal))
            .SelectMany(e => (e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.HttpMethodMetadata>()?.HttpMethods ?? []).Select(m => (Method: m, Path: DocumentPath(e.RoutePattern.RawText!), Endpoint: e)))
            .ToList();
        CollectionAssert.AreEquivalent(routed.Select(r => $"{r.Method} {r.Path}").Distinct().ToList(), documented.Keys.Select(k => $"{k.Method} {k.Path}").ToList(),
            "the document describes exactly the routing table's public operations");

        var problemSchema = document.RootElement.GetProperty("components").GetProperty("schemas").GetProperty("ProblemDetails").GetProperty("properties");
        foreach (var member in new[] { "type", "title", "status", "detail", "instance" })
        {
            Assert.IsTrue(problemSchema.TryGetProperty(member, out _), $"ProblemDetails has {member}: {problemSchema}");
        }
        foreach (var ((method, path), responses) in documented)
        {
            var endpoint = routed.First(r => r.Method == method && r.Path == path).Endpoint;
            var anonymous = endpoint.Metadata.GetMetadata<Microsoft.AspNetCore.Authorization.IAllowAnonymous>() is not null;
            var required = anonymous ? ["429"] : new[] { "401", "403", "429", "503" };
            foreach (var status in required)
            {
                Assert.IsTrue(responses.TryGetProperty(status, out _), $"{method} {path} documents {status}");
            }
            Assert.IsTrue(responses.EnumerateObject().Any(r => r.Name.StartsWith('2')), $"{method} {path} documents its success");
            foreach (var refusal in responses.EnumerateObject().Where(r => r.Name[0] is '4' or '5'))
            {
                var problem = default(JsonElement);
                Assert.IsTrue(refusal.Value.TryGetProperty("content", out var content) && content.TryGetProperty("application/problem+json", out problem),
                    $"{method} {path} {refusal.Name} is problem details: {refusal.Value}");
                // A named schema, so that generated clients map every refusal to one ProblemDetails type.
                StringAssert.EndsWith(problem.GetProperty("schema").GetProperty("$ref").GetString(), "ProblemDetails", $"{method} {path} {refusal.Name}: {problem}");
            }
        }
    }

    [TestMethod]
    public async Task Every_status_the_api_answers_to_callers_and_attackers_is_in_the_document()
    {
        using var anonymous = s_testbed.Api.CreateClient();
        using var document = await DocumentAsync(anonymous);
        var documented = Operations(document).ToDictionary(o => (o.Method, o.Path), o => o.Responses);

        var owner = await s_testbed.NewUserAsync(Ct);
        var workspace = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Documented", Ct);
        var (_, key) = await ApiTestbed.CreateApiKeyAsync(owner.Client, workspace, ["dataRead", "dataWrite"], null, Ct);
        using var keyClient = s_testbed.KeyClient(key);
        var stranger = await s_testbed.NewUserAsync(Ct);
        await ApiTestbed.CreateWorkspaceAsync(stranger.Client, "Stranger's own", Ct);
        var adminWorkspace = await ApiTestbed.CreateWorkspaceAsync(s_testbed.Admin, "Admin's own", Ct);

        string? Fill(Guid workspaceId, string parameter) => parameter == "{workspaceId:guid}" ? workspaceId.ToString() : null;
        var callers = new (string Who, HttpClient Client, Guid Workspace)[]
        {
            ("anonymous", anonymous, workspace),
            ("another tenant", stranger.Client, workspace),
            ("the workspace's API key", keyClient, workspace),
            ("the platform administrator", s_testbed.Admin, adminWorkspace),
            // Last: the walk includes DELETE /api/me.
            ("the owner", owner.Client, workspace),
        };
        var undocumented = new List<string>();
        var notProblems = new List<string>();
        var answered = 0;
        foreach (var (who, client, workspaceId) in callers)
        {
            var (_, answers) = await MalformedBodies.AnswersAsync(s_testbed.Api.Services, client, Ct, p => Fill(workspaceId, p), includeReads: true,
                patterns: p => p.StartsWith("/api/", StringComparison.Ordinal));
            answered += answers.Count;
            undocumented.AddRange(answers
                .Where(a => !documented[(a.Method, DocumentPath(a.Pattern))].TryGetProperty(a.Status.ToString(System.Globalization.CultureInfo.InvariantCulture), out _))
                .Select(a => $"{who}: {a}"));
            notProblems.AddRange(answers.Where(a => a.Status >= 400 && a.ContentType != "application/problem+json").Select(a => $"{who}: {a}"));
        }
        Assert.IsGreaterThan(1000, answered);
        Assert.IsEmpty(undocumented, "answers the document does not list:\n" + string.Join("\n", undocumented.Distinct()));
        Assert.IsEmpty(notProblems, "refusals that are not problem details:\n" + string.Join("\n", notProblems.Distinct()));
    }

    private async Task<JsonDocument> DocumentAsync(HttpClient client) =>
        JsonDocument.Parse(await client.GetStringAsync(new Uri("/openapi/v1.json", UriKind.Relative), Ct));

    private static IEnumerable<(string Method, string Path, JsonElement Responses)> Operations(JsonDocument document) =>
        document.RootElement.GetProperty("paths").EnumerateObject().SelectMany(path => path.Value.EnumerateObject()
            .Where(op => op.Name is "get" or "post" or "put" or "patch" or "delete")
            .Select(op => (op.Name.ToUpperInvariant(), path.Name, op.Value.GetProperty("responses"))));

    /// <summary>A route pattern as the document writes it: no constraints, no trailing slash.</summary>
    private static string DocumentPath(string pattern)
    {
        var path = System.Text.RegularExpressions.Regex.Replace(pattern, "\\{(\\*?)([A-Za-z]+)(:[a-z]+)?(\\?)?\\}", "{$2}");
        return path.Length > 1 ? path.TrimEnd('/') : path;
    }
}
