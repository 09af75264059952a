using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using ClippyBot.PluginHost.Bundles;
using ClippyBot.PluginHost.Data;
using ClippyBot.PluginHost.Sandbox;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.PluginHost.Plugins;

/// <summary>
/// Installs and updates plugins (verified against the trust store, compiled and checked, strictly newer than the current
/// version), and loads them for invocation — re-verifying the stored bundle before its code enters memory. Compiled
/// modules are cached in memory only, keyed by the verified wasm digest (a serialized-module cache on disk would be
/// trusted code that anything able to write there could replace).
/// </summary>
public sealed class PluginCatalog(PluginsDbContext db, PluginTrustStore trust, PluginRuntime runtime, CompiledPluginCache cache, PluginState state, TimeProvider time)
{
    /// <summary>How long a replica trusts its idea of a plugin's current version before asking the database again.</summary>
    public static readonly TimeSpan CurrentVersionRecheck = TimeSpan.FromSeconds(2);

    public async Task<VerifiedBundle> InstallAsync(Stream bundleStream, CancellationToken ct)
    {
        var bundle = PluginBundle.Read(bundleStream);
        var verified = PluginSigning.Verify(bundle, trust);
        var manifest = verified.Manifest;
        // Compiling checks exports and every import against the manifest; a module that fails changes nothing.
        cache.GetOrAdd(verified.WasmSha256, () => runtime.Compile(bundle.Wasm, manifest));

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
        cache.ForgetCurrent(manifest.Id);
        await state.ChangedAsync(ct);
        return verified;
    }

    /// <summary>The current version, re-verified and compiled (or from the digest-keyed cache); null when not installed.</summary>
    public async Task<(InstalledPlugin Row, CompiledPlugin Compiled)?> LoadAsync(string pluginId, CancellationToken ct)
    {
        // Hot path: the version this replica verified and holds in memory, while the state snapshot (PluginState, re-read
        // on every change and every second) still names it as current — no database round trip.
        var (known, current) = state.CurrentVersionOf(pluginId);
        if (known && current is null)
        {
            return null;
        }
        if (cache.Current(pluginId, known ? DateTimeOffset.MinValue : time.GetUtcNow() - CurrentVersionRecheck) is { } held
            && (!known || (held.Row.Version == current!.Version && held.Row.WasmSha256 == current.WasmSha256)))
        {
            return held;
        }
        var row = await db.InstalledPlugins.AsNoTracking().SingleOrDefaultAsync(p => p.PluginId == pluginId && p.Current, ct);
        if (row is null)
        {
            return null;
        }
        var signatures = JsonSerializer.Deserialize<List<BundleSignature>>(row.SignaturesJson, PluginManifest.Json) ?? [];
        var verified = PluginSigning.Verify(new PluginBundle(row.ManifestBytes, row.Wasm, signatures), trust);
        if (!CryptographicOperations.FixedTimeEquals(Convert.FromHexString(verified.WasmSha256), Convert.FromHexString(row.WasmSha256)))
        {
            throw new BundleException(BundleError.Tampered, $"The stored module of {pluginId} {row.Version} changed since it was installed.");
        }
        var compiled = cache.GetOrAdd(verified.WasmSha256, () => runtime.Compile(row.Wasm, verified.Manifest));
        cache.RememberCurrent(pluginId, row, compiled, time.GetUtcNow());
        return (row, compiled);
    }
}

/// <summary>Compiled modules by verified wasm digest (engine-specific, in memory only).</summary>
public sealed class CompiledPluginCache : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<CompiledPlugin>> _modules = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (InstalledPlugin Row, CompiledPlugin Compiled, DateTimeOffset CheckedAt)> _current = new(StringComparer.Ordinal);

    /// <summary>The verified current version of <paramref name="pluginId"/> if it was checked after <paramref name="notBefore"/>.</summary>
    public (InstalledPlugin Row, CompiledPlugin Compiled)? Current(string pluginId, DateTimeOffset notBefore) =>
        _current.TryGetValue(pluginId, out var entry) && entry.CheckedAt >= notBefore ? (entry.Row, entry.Compiled) : null;

    public void RememberCurrent(string pluginId, InstalledPlugin row, CompiledPlugin compiled, DateTimeOffset checkedAt) =>
        _current[pluginId] = (row, compiled, checkedAt);

    public void ForgetCurrent(string pluginId) => _current.TryRemove(pluginId, out _);

    public CompiledPlugin GetOrAdd(string wasmSha256, Func<CompiledPlugin> compile)
    {
        var lazy = _modules.GetOrAdd(wasmSha256, _ => new Lazy<CompiledPlugin>(compile));
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
