using System.Globalization;
using System.Text;
using ClippyBot.Contracts;
using ClippyBot.Plugins.Bundles;
using ClippyBot.Plugins.Sandbox;
using Microsoft.Extensions.Options;

namespace ClippyBot.Registry.Versions;

/// <summary>Section <c>Registry:Review</c>: the limits a submission is checked under (stricter than what installed plugins get).</summary>
public sealed class ReviewOptions
{
    public const string SectionName = "Registry:Review";

    /// <summary>Largest module a community version may ship.</summary>
    public int MaxModuleBytes { get; set; } = 8 * 1024 * 1024;
    public int MaxImports { get; set; } = 32;
    public int MaxExports { get; set; } = 64;
    /// <summary>Fuel, time and memory for each generated run of an entry point.</summary>
    public long Fuel { get; set; } = 10_000_000;
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMilliseconds(500);
    public long MaxMemoryBytes { get; set; } = 32L * 1024 * 1024;
}

/// <summary>
/// The automated review of a bundle's module: it compiles and binds (imports only of the host ABI and each covered by a
/// requested permission — no WASI — and the declared exports), stays within size and complexity limits, and every entry
/// point survives generated inputs in the real sandbox under strict limits (no network: the registry's runtime has no
/// HTTP client). Also the risk summary of what it asks for and what changed since the last approved version.
/// </summary>
public sealed class ModuleReview(IOptions<ReviewOptions> options) : IDisposable
{
    public const int MaxEntryPoints = 16;

    private readonly PluginRuntime _runtime = Runtime(options.Value);

    private static PluginRuntime Runtime(ReviewOptions review)
    {
        var sandbox = Options.Create(new SandboxOptions
        {
            Fuel = review.Fuel,
            Timeout = review.Timeout,
            MaxMemoryBytes = review.MaxMemoryBytes,
            MaxModuleBytes = review.MaxModuleBytes,
        });
        return new PluginRuntime(sandbox, PluginHttp.Offline(sandbox));
    }

    /// <summary>The inputs each entry point is run with: an ordinary event, an empty one, odd text, and a 16 KB payload (a plugin must take any event the platform delivers).</summary>
    public static IReadOnlyList<(string Name, byte[] Input)> GeneratedInputs(string @event) =>
    [
        ("a message", Json($$$"""{"event":"{{{@event}}}","workspaceId":"{{{Guid.Empty}}}","payload":{"text":"hello"}}""")),
        ("an empty payload", Json($$$"""{"event":"{{{@event}}}","payload":{}}""")),
        ("odd text", Json($$$"""{"event":"{{{@event}}}","payload":{"text":"\u0000\ud83d\ude00\"\\ <script>","n":-1e308}}""")),
        ("a 16 KB payload", Json($$$"""{"event":"{{{@event}}}","payload":{"text":"{{{new string('x', 16 * 1024)}}}"}}""")),
    ];

    public IReadOnlyList<CheckResult> Check(PluginBundle bundle, PluginManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        ArgumentNullException.ThrowIfNull(manifest);
        var settings = options.Value;
        if (bundle.Wasm.Length > settings.MaxModuleBytes)
        {
            return [new("module", false, $"The module is {bundle.Wasm.Length} bytes; community versions may ship at most {settings.MaxModuleBytes}.")];
        }
        Wasmtime.Module module;
        try
        {
            module = _runtime.CompileModule(bundle.Wasm);
        }
        catch (Exception e) when (e is Wasmtime.WasmtimeException or PluginRejectedException)
        {
            return [new("module", false, "Not a valid WebAssembly module: " + e.Message)];
        }
        using var owned = module;
        if (module.Imports.Count > settings.MaxImports || module.Exports.Count > settings.MaxExports)
        {
            return [new("module", false, $"The module has {module.Imports.Count} imports and {module.Exports.Count} exports; at most {settings.MaxImports} and {settings.MaxExports}.")];
        }
        CompiledPlugin compiled;
        try
        {
            compiled = _runtime.Bind(module, manifest);
        }
        catch (PluginRejectedException e)
        {
            return [new("module", false, e.Message)];
        }
        var results = new List<CheckResult>
        {
            new("module", true, $"{bundle.Wasm.Length} bytes; imports {string.Join(", ", module.Imports.Select(i => i.Name).DefaultIfEmpty("none"))}, each covered by a requested permission"),
        };
        // Each export runs once per input however often the manifest names it, and at most MaxEntryPoints of them: a
        // manifest listing one export a thousand times must not cost a thousand runs.
        var entries = (manifest.EntryPoints ?? []).DistinctBy(e => e.Export, StringComparer.Ordinal).ToList();
        if (entries.Count > MaxEntryPoints)
        {
            return [.. results, new("dynamic", false, $"The manifest names {entries.Count} entry points; at most {MaxEntryPoints}.")];
        }
        var runs = new List<string>();
        var failures = new List<string>();
        foreach (var entry in entries)
        {
            foreach (var (name, input) in GeneratedInputs(entry.Event))
            {
                var kv = new KvSnapshot(new Dictionary<string, byte[]>(StringComparer.Ordinal), Quota(manifest));
                var result = _runtime.Invoke(compiled, entry.Export, input, compiled.ImportedPermissions, kv);
                var line = string.Create(CultureInfo.InvariantCulture,
                    $"{entry.Export} with {name}: {result.Outcome} {result.Kind}, {result.FuelUsed} fuel, {result.Duration.TotalMilliseconds:0} ms, {result.Output.Length} bytes out, {result.HostCalls} host calls, {result.Messages.Count} messages");
                runs.Add(line);
                if (!result.Succeeded)
                {
                    failures.Add(line);
                }
            }
        }
        results.Add(failures.Count == 0
            ? new("dynamic", true, string.Join("; ", runs))
            : new("dynamic", false, "Entry points failed on generated inputs (fix them to handle any event): " + string.Join("; ", failures)));
        return results;
    }

    /// <summary>What a reviewer should look at first: each permission with its parameters.</summary>
    public static string RiskSummary(PluginManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var permissions = manifest.Permissions ?? [];
        if (permissions.Count == 0)
        {
            return "asks for no permission";
        }
        return string.Join("; ", permissions.Select(p => p.Name switch
        {
            PluginPermissions.HttpFetch => $"{p.Name} to {string.Join(", ", manifest.Hosts)} (sends workspace data off the platform)",
            PluginPermissions.SecretsRead => $"{p.Name} of {string.Join(", ", manifest.SecretNames)} (reads the workspace's secrets)",
            PluginPermissions.OAuthUse => $"{p.Name} with {string.Join(", ", manifest.OAuthProviders)} (acts as the workspace's members elsewhere)",
            PluginPermissions.StorageKv => $"{p.Name} up to {Quota(manifest)} bytes",
            _ => p.Name,
        }));
    }

    /// <summary>What a version asks for that the last approved one did not (new permissions, hosts, secret names, providers).</summary>
    public static IReadOnlyList<string> NewSince(PluginManifest manifest, PluginManifest? approved)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var before = approved is null ? [] : Facets(approved);
        return [.. Facets(manifest).Except(before, StringComparer.Ordinal)];
    }

    private static HashSet<string> Facets(PluginManifest manifest) =>
    [
        .. (manifest.Permissions ?? []).Select(p => "permission " + p.Name),
        .. manifest.Hosts.Select(h => "host " + h),
        .. manifest.SecretNames.Select(s => "secret " + s),
        .. manifest.OAuthProviders.Select(p => "provider " + p),
    ];

    private static byte[] Json(string text) => Encoding.UTF8.GetBytes(text);

    private static long Quota(PluginManifest manifest) => manifest.RequestedKvQuotaBytes ?? new SandboxOptions().DefaultKvQuotaBytes;

    public void Dispose() => _runtime.Dispose();
}
