using System.Net;
using System.Text.Json;
using ClippyBot.Api.Data;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;

namespace ClippyBot.Tests.Api;

[TestClass]
public sealed class OpenApiTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task The_OpenAPI_document_lists_the_endpoints_and_declares_both_security_schemes_and_Scalar_serves_it()
    {
        var ct = TestContext.CancellationToken;
        await using var identity = await IdentityHost.StartAsync(ct);
        await using var api = await ApiHost.StartAsync(identity, TestRig.Redis.ConnectionString, ct);
        using var client = api.CreateClient();

        using var document = JsonDocument.Parse(await client.GetStringAsync(new Uri("/openapi/v1.json", UriKind.Relative), ct));
        var schemes = document.RootElement.GetProperty("components").GetProperty("securitySchemes");
        Assert.AreEqual("bearer", schemes.GetProperty("oidc").GetProperty("scheme").GetString());
        Assert.AreEqual("bearer", schemes.GetProperty("apiKey").GetProperty("scheme").GetString());
        var paths = document.RootElement.GetProperty("paths");
        Assert.IsTrue(paths.TryGetProperty("/api/workspaces", out _));
        Assert.IsTrue(paths.TryGetProperty("/api/workspaces/{workspaceId}/api-keys", out _));

        using var ui = await client.GetAsync(new Uri("/scalar", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.OK, ui.StatusCode);
        StringAssert.Contains(await ui.Content.ReadAsStringAsync(ct), "openapi");
    }
}
