using System.Net;
using System.Text;
using System.Text.Json;
using ClippyBot.AppHost.Infrastructure;
using ClippyBot.Plugins.Bundles;
using ClippyBot.PluginHost.Data;
using ClippyBot.Plugins.Sandbox;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ClippyBot.Tests.PluginHost;

/// <summary>
/// <c>http:fetch</c> against a real HTTPS server on this machine: allowed hosts only, https only, response size and time caps,
/// and private/loopback addresses refused after DNS unless explicitly allow-listed.
/// </summary>
[TestClass]
public sealed class PluginHttpTests
{
    private static string s_tls = null!;
    private static WebApplication s_upstream = null!;
    private static int s_port;
    private static ServiceFactory<PluginsDbContext> s_allowed = null!;
    private static ServiceFactory<PluginsDbContext> s_strict = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context)
    {
        var ct = context.CancellationToken;
        s_tls = Directory.CreateTempSubdirectory("clippybot-plugin-http-").FullName;
        var certificates = DevelopmentCertificates.Ensure(s_tls, TimeProvider.System);
        s_port = LocalInfrastructureOptions.FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, s_port, l => l.UseHttps(
            System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(certificates.ServerCertificatePath, certificates.ServerKeyPath))));
        s_upstream = builder.Build();
        s_upstream.MapGet("/hello", () => Results.Json(new { greeting = "hi" }));
        s_upstream.MapGet("/big", () => Results.Text(new string('x', 1024 * 1024)));
        s_upstream.MapGet("/slow", async (CancellationToken abort) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(10), abort);
            return Results.Ok();
        });
        // Headers at once, then a byte every 200 ms for 20 s: only a deadline on the body ends it.
        s_upstream.MapGet("/trickle", async (HttpContext context) =>
        {
            context.Response.ContentType = "text/plain";
            await context.Response.Body.FlushAsync(context.RequestAborted);
            for (var i = 0; i < 100 && !context.RequestAborted.IsCancellationRequested; i++)
            {
                await context.Response.Body.WriteAsync("x"u8.ToArray(), context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
                await Task.Delay(TimeSpan.FromMilliseconds(200), context.RequestAborted);
            }
        });
        await s_upstream.StartAsync(ct);

        Dictionary<string, string?> Settings(bool allowLoopback)
        {
            var settings = new Dictionary<string, string?>
            {
                ["Encryption:KeyEncryptionKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
                ["Tls:TrustedCaFile"] = certificates.CaCertificatePath,
                ["Sandbox:HttpTimeout"] = "00:00:01",
                ["Sandbox:HttpMaxResponseBytes"] = "65536",
            };
            if (allowLoopback)
            {
                settings["Sandbox:HttpPrivateNetworkAllowList:0"] = "127.0.0.1/32";
            }
            return settings;
        }
        s_allowed = await ServiceFactory.WithFreshDatabaseAsync<PluginsDbContext>("pluginsdb", Settings(allowLoopback: true), ct: ct);
        s_strict = await ServiceFactory.WithFreshDatabaseAsync<PluginsDbContext>("pluginsdb", Settings(allowLoopback: false), ct: ct);
    }

    [ClassCleanup]
    public static async Task StopAsync()
    {
        await s_strict.DisposeAsync();
        await s_allowed.DisposeAsync();
        await s_upstream.DisposeAsync();
        Directory.Delete(s_tls, recursive: true);
    }

    /// <summary>A plugin that sends its input (a fetch request) to http_fetch and answers with what came back.</summary>
    private static readonly byte[] Fetcher = Wasmtime.Module.ConvertText("""
        (module
          (import "clippybot" "http_fetch" (func $fetch (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 2)
          (global $heap (mut i32) (i32.const 1024))
          (func (export "alloc") (param $n i32) (result i32)
            (local $q i32) (local.set $q (global.get $heap))
            (global.set $heap (i32.add (global.get $heap) (local.get $n))) (local.get $q))
          (func (export "on_message") (param $p i32) (param $n i32) (result i64)
            (local $len i32)
            (local.set $len (call $fetch (local.get $p) (local.get $n) (i32.const 65536) (i32.const 65536)))
            (i64.or (i64.shl (i64.const 65536) (i64.const 32)) (i64.extend_i32_u (local.get $len)))))
        """);

    private static PluginManifest Manifest(params string[] hosts) => new("dev.test.fetch", "Fetch", "1.0.0", "ClippyBot", "",
        [new EntryPoint("on_message", "on_message")],
        [new PermissionRequest("http:fetch", new Dictionary<string, JsonElement> { ["hosts"] = JsonSerializer.SerializeToElement(hosts) })], null);

    private static JsonElement Fetch(ServiceFactory<PluginsDbContext> host, string url, params string[] hosts)
    {
        var runtime = host.Services.GetRequiredService<PluginRuntime>();
        // The test server listens on a port of its own: the manifest names it (only 443 is implied).
        using var plugin = runtime.Compile(Fetcher, Manifest(hosts.Length == 0 ? [$"localhost:{s_port}"] : hosts));
        var result = runtime.Invoke(plugin, "on_message", JsonSerializer.SerializeToUtf8Bytes(new { method = "GET", url }), new HashSet<string> { "http:fetch" });
        Assert.AreEqual(InvocationOutcome.Completed, result.Outcome, result.Kind);
        return JsonDocument.Parse(result.Output).RootElement.Clone();
    }

    [TestMethod]
    public void An_allowed_https_host_is_fetched()
    {
        var answer = Fetch(s_allowed, $"https://localhost:{s_port}/hello");
        Assert.AreEqual(200, answer.GetProperty("status").GetInt32(), answer.ToString());
        StringAssert.Contains(answer.GetProperty("body").GetString(), "\"greeting\":\"hi\"");
    }

    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task The_fetcher_example_built_from_AssemblyScript_fetches_through_the_host()
    {
        var (wasm, manifestBytes) = await ExamplePlugins.BuildAsync("fetcher", TestContext.CancellationToken);
        // The example names "localhost" (port 443 only); the test server listens elsewhere, so that port is named here.
        var manifest = ManifestValidator.Parse(manifestBytes).Manifest! with
        {
            Permissions = [new PermissionRequest("http:fetch", new Dictionary<string, JsonElement> { ["hosts"] = JsonSerializer.SerializeToElement(new[] { $"localhost:{s_port}" }) })],
        };
        var runtime = s_allowed.Services.GetRequiredService<PluginRuntime>();
        using var plugin = runtime.Compile(wasm, manifest);
        var request = JsonSerializer.SerializeToUtf8Bytes(new { method = "GET", url = $"https://localhost:{s_port}/hello" });
        var result = runtime.Invoke(plugin, "on_message", request, new HashSet<string> { "http:fetch" });
        Assert.AreEqual(InvocationOutcome.Completed, result.Outcome, result.Kind);
        var answer = JsonDocument.Parse(result.Output).RootElement;
        Assert.AreEqual(200, answer.GetProperty("status").GetInt32(), answer.ToString());
        StringAssert.Contains(answer.GetProperty("body").GetString(), "greeting");

        var elsewhere = runtime.Invoke(plugin, "on_message", JsonSerializer.SerializeToUtf8Bytes(new { url = "https://example.org/" }), new HashSet<string> { "http:fetch" });
        Assert.AreEqual("host_not_allowed", JsonDocument.Parse(elsewhere.Output).RootElement.GetProperty("error").GetString());
    }

    [TestMethod]
    public void Other_hosts_plain_http_and_non_urls_are_refused()
    {
        Assert.AreEqual("host_not_allowed", Fetch(s_allowed, $"https://127.0.0.1:{s_port}/hello").GetProperty("error").GetString());
        Assert.AreEqual("https_only", Fetch(s_allowed, $"http://localhost:{s_port}/hello").GetProperty("error").GetString());
        Assert.AreEqual("https_only", Fetch(s_allowed, "https+http://identity/.well-known/openid-configuration", "identity").GetProperty("error").GetString(),
            "service-discovery names never reach internal services");
        Assert.AreEqual("bad_request", Fetch(s_allowed, "not a url").GetProperty("error").GetString());
        Assert.AreEqual("port_not_allowed", Fetch(s_allowed, $"https://localhost:{s_port}/hello", "localhost").GetProperty("error").GetString(),
            "a host named without a port is reachable on 443 only");
    }

    [TestMethod]
    public void Loopback_and_private_addresses_are_refused_after_DNS_unless_allow_listed()
    {
        Assert.AreEqual("private_address", Fetch(s_strict, $"https://localhost:{s_port}/hello").GetProperty("error").GetString());
        foreach (var forbidden in new[] { "127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fd00::1", "::ffff:10.0.0.1" })
        {
            Assert.IsFalse(GlobalAddress.IsGloballyRoutable(IPAddress.Parse(forbidden)), forbidden);
        }
        Assert.IsTrue(GlobalAddress.IsGloballyRoutable(IPAddress.Parse("93.184.216.34")));
        Assert.IsTrue(GlobalAddress.IsGloballyRoutable(IPAddress.Parse("2606:4700::1111")));
    }

    [TestMethod]
    public void Oversized_and_slow_responses_are_cut_off()
    {
        Assert.AreEqual("response_too_large", Fetch(s_allowed, $"https://localhost:{s_port}/big").GetProperty("error").GetString());
        Assert.AreEqual("timeout", Fetch(s_allowed, $"https://localhost:{s_port}/slow").GetProperty("error").GetString());
    }

    [TestMethod]
    public void A_body_trickled_a_byte_at_a_time_is_cut_at_the_deadline()
    {
        Assert.AreEqual("timeout", Fetch(s_allowed, $"https://localhost:{s_port}/trickle").GetProperty("error").GetString(),
            "the body is read under the same deadline as the headers");
    }
}
