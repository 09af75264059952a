using System.Text.Json;
using ClippyBot.Plugins.Bundles;
using ClippyBot.Registry.Data;
using ClippyBot.Registry.Versions;
using ClippyBot.Tests.PluginHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.Registry;

/// <summary>
/// The automated review a submission goes through: the module against its manifest (no WASI, no import without its
/// permission), every entry point run in the sandbox with generated inputs (a trap or a runaway loop rejects, with the
/// reason), the risk summary, and what a new version asks for that the approved one did not.
/// </summary>
[TestClass]
public sealed class RegistryReviewTests
{
    private static RegistryRig s_registry = null!;

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) => s_registry = await RegistryRig.StartAsync(context.CancellationToken);

    [ClassCleanup]
    public static async Task StopAsync() => await s_registry.DisposeAsync();

    private async Task<SubmissionOutcome> SubmitAsync(byte[] bundle)
    {
        await using var scope = s_registry.Factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<RegistryDbContext>();
        var publisher = await db.Publishers.SingleAsync(p => p.FirstParty, Ct);
        return await scope.ServiceProvider.GetRequiredService<Submissions>().SubmitAsync(publisher, bundle, Ct);
    }

    private static string Id() => "dev.clippybot.review" + Guid.NewGuid().ToString("N")[..8];

    [TestMethod]
    [DataRow("(import \"wasi_snapshot_preview1\" \"fd_write\" (func (param i32 i32 i32 i32) (result i32)))", "[]", "no WASI")]
    [DataRow("(import \"clippybot\" \"secret_get\" (func (param i32 i32 i32 i32) (result i32)))", "[]", "needs permission secrets:read")]
    [DataRow("(import \"env\" \"abort\" (func (param i32 i32 i32 i32)))", "[]", "does not provide")]
    public async Task A_module_importing_what_the_host_does_not_provide_or_the_manifest_does_not_request_is_rejected_with_the_reason(string imports, string permissions, string reason)
    {
        var outcome = await SubmitAsync(PluginCatalogTests.Bundle(Id(), "1.0.0", imports: imports, permissions: permissions, key: s_registry.FirstPartyPrivateKey));

        Assert.AreEqual(VersionStatus.Rejected, outcome.Version!.Status);
        var module = outcome.Checks.Single(c => c.Check == "module");
        Assert.IsFalse(module.Passed);
        StringAssert.Contains(module.Detail, reason);
        Assert.AreEqual(JsonSerializer.Serialize(outcome.Checks, PluginManifest.Json), outcome.Version.ChecksJson, "the reasons are stored for the publisher");
    }

    [TestMethod]
    [DataRow("unreachable", "Trapped")]
    [DataRow("(loop (br 0)) (i64.const 0)", "LimitHit")]
    public async Task An_entry_point_that_traps_or_runs_away_on_generated_inputs_is_rejected_naming_the_input_and_the_outcome(string body, string outcome)
    {
        var result = await SubmitAsync(PluginCatalogTests.Bundle(Id(), "1.0.0", body: body, key: s_registry.FirstPartyPrivateKey));

        var dynamic = result.Checks.Single(c => c.Check == "dynamic");
        Assert.IsFalse(dynamic.Passed);
        StringAssert.Contains(dynamic.Detail, "on_message with a message: " + outcome);
        Assert.AreEqual(VersionStatus.Rejected, result.Version!.Status);
    }

    [TestMethod]
    public async Task A_passing_version_shows_its_runs_and_risks_and_the_next_one_highlights_every_new_permission_host_and_secret()
    {
        var id = Id();
        var fetch = """[{ "name": "http:fetch", "parameters": { "hosts": ["api.example.com"] } }]""";
        var first = await SubmitAsync(PluginCatalogTests.Bundle(id, "1.0.0", permissions: fetch,
            imports: "(import \"clippybot\" \"http_fetch\" (func (param i32 i32 i32 i32) (result i32)))", key: s_registry.FirstPartyPrivateKey));
        Assert.IsTrue(first.Passed, string.Join("; ", first.Checks.Where(c => !c.Passed)));
        StringAssert.Contains(first.Checks.Single(c => c.Check == "dynamic").Detail, "on_message with a 16 KB payload: Completed");
        StringAssert.Contains(first.Checks.Single(c => c.Check == "risk").Detail, "http:fetch to api.example.com");
        Assert.AreEqual("the first version of this plugin", first.Checks.Single(c => c.Check == "changes").Detail);

        var more = """
            [{ "name": "http:fetch", "parameters": { "hosts": ["api.example.com", "evil.example.net"] } },
             { "name": "secrets:read", "parameters": { "names": ["GITHUB_TOKEN"] } }]
            """;
        var second = await SubmitAsync(PluginCatalogTests.Bundle(id, "1.1.0", permissions: more, key: s_registry.FirstPartyPrivateKey));
        Assert.IsTrue(second.Passed);
        var changes = second.Checks.Single(c => c.Check == "changes").Detail;
        StringAssert.Contains(changes, "NEW since 1.0.0");
        StringAssert.Contains(changes, "host evil.example.net");
        StringAssert.Contains(changes, "permission secrets:read");
        StringAssert.Contains(changes, "secret GITHUB_TOKEN");
        Assert.IsFalse(changes.Contains("host api.example.com", StringComparison.Ordinal), "what was approved before is not new");
    }
}
