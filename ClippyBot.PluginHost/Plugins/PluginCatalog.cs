using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using ClippyBot.Plugins.Bundles;
using ClippyBot.PluginHost.Data;
using ClippyBot.Plugins.Sandbox;
using Wasmtime;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.PluginHost.Plugins;

/// <summary>
/// Installs and updates plugins (verified against the trust store, compiled and checked, strictly newer than the current
/// version), and loads them for invocation — re-verifying the stored bundle before its code enters memory. Compiled
/// modules are cached in memory only, keyed by the verified wasm digest (a serialized-module cache on disk would be
/// trusted code that anything able to write there could replace); each installed version binds the shared module to its
/// own manifest, so hosts, limits and entry points are always those of the version that runs.
/// </summary>
public sealed class PluginCatalog(PluginsDbContext db, PluginTrustStore trust, PluginRuntime runtime, CompiledPluginCache cache, PluginState state, TimeProvider time,
    Registry.RegistryTrust registry, Microsoft.Extensions.Options.IOptions<Registry.RegistryTrustOptions> registryOptions)
{
    public async Task<VerifiedBundle> InstallAsync(Stream bundleStream, CancellationToken ct)
    {
        using var bytes = new MemoryStream();
        await bundleStream.CopyToAsync(bytes, ct);
        bytes.Position = 0;
        var bundle = PluginBundle.Read(bytes);
        var verified = PluginSigning.Verify(bundle, trust);
        var manifest = verified.Manifest;
        if (registryOptions.Value.Enabled)
        {
            // With a registry, only what its signed targets list (exactly these bytes) is installed, whoever asks.
            registry.RequireListed(manifest.Id, manifest.Version, bytes.ToArray(), verified.SignerKeyId);
        }
        // Binding checks exports and every import against this manifest (even when the module is cached from another
        // bundle); a module that fails changes nothing.
        using (runtime.Bind(cache.Module(verified.WasmSha256, () => runtime.CompileModule(bundle.Wasm)), manifest))
        {
        }

        var current = await db.InstalledPlugins.SingleOrDefaultAsync(p => p.PluginId == manifest.Id && p.Current, ct);
        if (current is not null && SemVersion.Parse(current.Version) >= manifest.ParsedVersion)
        {
            throw new BundleException(BundleError.NotNewer,
                $"{manifest.Id} {manifest.Version} is not newer than the installed {current.Version}; updates must move forward (no rollback).");
        }
        var strategy = db.Database.CreateExecutionStrategy();
        await strategy.ExecuteAsync(async () =>
        {
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            await db.InstalledPlugins.Where(p => p.PluginId == manifest.Id && p.Current).ExecuteUpdateAsync(s => s.SetProperty(p => p.Current, false), ct);
            db.InstalledPlugins.Add(new InstalledPlugin
            {
                Id = Guid.CreateVersion7(), PluginId = manifest.Id, Version = manifest.Version, ManifestBytes = bundle.ManifestBytes, Wasm = bundle.Wasm,
                WasmSha256 = verified.WasmSha256, SignaturesJson = JsonSerializer.Serialize(bundle.Signatures, PluginManifest.Json),
                SignerKeyId = verified.SignerKeyId, InstalledAt = time.GetUtcNow(), Current = true,
            });
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
        });
        await state.ChangedAsync(ct);
        return verified;
    }

    /// <summary>
    /// A version (the current one when <paramref name="version"/> is null), re-verified and bound to its own manifest, or
    /// from this replica's cache of verified versions; null when not installed.
    /// </summary>
    public async Task<(InstalledPlugin Row, CompiledPlugin Compiled)?> LoadAsync(string pluginId, CancellationToken ct, string? version = null)
    {
        if (version is null)
        {
            // Hot path: the state snapshot (re-read on every change and every second) names the current version — no
            // database round trip; a stale snapshot is not relied on.
            var (known, current) = state.CurrentVersionOf(pluginId);
            version = known
                ? current?.Version
                : await db.InstalledPlugins.AsNoTracking().Where(p => p.PluginId == pluginId && p.Current).Select(p => p.Version).SingleOrDefaultAsync(ct);
            if (version is null)
            {
                return null;
            }
        }
        // An installed version never changes (the row is re-verified before it is first used on this replica).
        if (cache.Version(pluginId, version) is { } held)
        {
            return held;
        }
        var row = await db.InstalledPlugins.AsNoTracking().SingleOrDefaultAsync(p => p.PluginId == pluginId && p.Version == version, ct);
        if (row is null)
        {
            return null;
        }
        var signatures = JsonSerializer.Deserialize<List<BundleSignature>>(row.SignaturesJson, PluginManifest.Json) ?? [];
        var verified = PluginSigning.Verify(new PluginBundle(row.ManifestBytes, row.Wasm, signatures), trust);
        if (!CryptographicOperations.FixedTimeEquals(Convert.FromHexString(verified.WasmSha256), Convert.FromHexString(row.WasmSha256))
            || verified.Manifest.Id != row.PluginId || verified.Manifest.Version != row.Version)
        {
            throw new BundleException(BundleError.Tampered, $"The stored bundle of {pluginId} {row.Version} changed since it was installed.");
        }
        var compiled = runtime.Bind(cache.Module(verified.WasmSha256, () => runtime.CompileModule(row.Wasm)), verified.Manifest);
        // The wasm is in the shared module now; the cached row does not need to hold the bytes as well.
        row.Wasm = [];
        return cache.RememberVersion(pluginId, version, row, compiled);
    }
}

/// <summary>
/// Compiled modules by verified wasm digest (engine-specific, in memory only), and the verified installed versions bound
/// to their own manifests.
/// </summary>
public sealed class CompiledPluginCache : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<Module>> _modules = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string PluginId, string Version), (InstalledPlugin Row, CompiledPlugin Compiled)> _versions = new();

    public (InstalledPlugin Row, CompiledPlugin Compiled)? Version(string pluginId, string version) =>
        _versions.TryGetValue((pluginId, version), out var entry) ? entry : null;

    /// <summary>Keeps the first verified binding of a version (a concurrent load's duplicate is dropped).</summary>
    public (InstalledPlugin Row, CompiledPlugin Compiled) RememberVersion(string pluginId, string version, InstalledPlugin row, CompiledPlugin compiled) =>
        _versions.GetOrAdd((pluginId, version), (row, compiled));

    public Module Module(string wasmSha256, Func<Module> compile)
    {
        var lazy = _modules.GetOrAdd(wasmSha256, _ => new Lazy<Module>(compile));
        try
        {
            return lazy.Value;
        }
        catch
        {
            _modules.TryRemove(wasmSha256, out _);
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var module in _modules.Values.Where(l => l.IsValueCreated))
        {
            module.Value.Dispose();
        }
    }
}
