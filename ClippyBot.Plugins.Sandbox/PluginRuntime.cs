using ClippyBot.Contracts;
using System.Diagnostics;
using System.Text;
using ClippyBot.Plugins.Bundles;
using Microsoft.Extensions.Options;
using Wasmtime;

namespace ClippyBot.Plugins.Sandbox;

/// <summary>
/// A compiled module bound to one manifest: the permissions its imports need and everything else the manifest decides
/// (entry points, resources, hosts, providers, secret names). The module itself may be shared by every version and plugin
/// with the same wasm digest; what is derived from a manifest never is.
/// </summary>
public sealed class CompiledPlugin(Module module, PluginManifest manifest, IReadOnlySet<string> importedPermissions, bool ownsModule = true) : IDisposable
{
    public Module Module { get; } = module;

    public PluginManifest Manifest { get; } = manifest;

    public IReadOnlySet<string> ImportedPermissions { get; } = importedPermissions;

    /// <summary>Hosts the manifest's <c>http:fetch</c> names; read once here, not on every invocation.</summary>
    public IReadOnlySet<string> AllowedHosts { get; } = manifest.Hosts.ToHashSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>Providers the manifest's <c>oauth:use</c> names.</summary>
    public IReadOnlySet<string> OAuthProviders { get; } = manifest.OAuthProviders.ToHashSet(StringComparer.Ordinal);

    /// <summary>Workspace secrets the manifest's <c>secrets:read</c> names.</summary>
    public IReadOnlySet<string> SecretNames { get; } = manifest.SecretNames.ToHashSet(StringComparer.Ordinal);

    public void Dispose()
    {
        if (ownsModule)
        {
            Module.Dispose();
        }
    }
}

public enum InvocationOutcome
{
    Completed,
    Trapped,
    LimitHit,
    Refused,
}

/// <summary>What happened in one invocation: output (or the reason there is none), and what it cost.</summary>
public sealed record InvocationResult(
    InvocationOutcome Outcome,
    string Kind,
    byte[] Output,
    IReadOnlyList<string> Messages,
    long FuelUsed,
    TimeSpan Duration,
    long MemoryBytes,
    string? Backtrace)
{
    public bool Succeeded => Outcome == InvocationOutcome.Completed;

    /// <summary>The installed version that ran (or was refused); set by the invoker.</summary>
    public string? Version { get; init; }

    /// <summary>How many host functions the plugin called (the registry's review records it).</summary>
    public int HostCalls { get; init; }
}

/// <summary>A module that cannot be installed, with the reason (naming the missing permission or export).</summary>
public sealed class PluginRejectedException(string message) : Exception(message);

/// <summary>
/// Runs plugins under Wasmtime: one shared engine (pooling allocator, fuel metering, epoch interruption), a fresh store and
/// instance per invocation so nothing survives between calls or workspaces, only granted host functions linked, no WASI at
/// all (no filesystem, environment, clock or sockets). Every limit is from <see cref="SandboxOptions"/>.
/// </summary>
public sealed class PluginRuntime : IDisposable
{
    private static readonly string[] RequiredExports = ["memory", "alloc"];
    private readonly Engine _engine;
    private readonly EpochClock _clock;
    private readonly SandboxOptions _options;

    private readonly PluginHttp? _http;

    public PluginRuntime(IOptions<SandboxOptions> options, PluginHttp? http = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _http = http;
        using var pooling = new PoolingAllocationConfig().WithMaxMemoriesPerModule(1).WithMaxTablesPerModule(1).WithMaxCoreInstances(1000);
        using var config = new Config()
            .WithFuelConsumption(true)
            .WithEpochInterruption(true)
            .WithMaximumStackSize(512 * 1024)
            .WithPoolingAllocationStrategy(pooling);
        _engine = new Engine(config);
        _clock = new EpochClock(_engine);
    }

    /// <summary>Compiles and checks a verified bundle's module against its manifest; the result owns the module.</summary>
    public CompiledPlugin Compile(byte[] wasm, PluginManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var module = CompileModule(wasm);
        try
        {
            return Bind(module, manifest, ownsModule: true);
        }
        catch
        {
            module.Dispose();
            throw;
        }
    }

    /// <summary>Compiles a module (size and validity only): the part that may be shared by wasm digest.</summary>
    public Module CompileModule(byte[] wasm)
    {
        ArgumentNullException.ThrowIfNull(wasm);
        if (wasm.Length > _options.MaxModuleBytes)
        {
            throw new PluginRejectedException($"The module is {wasm.Length} bytes; at most {_options.MaxModuleBytes} are accepted.");
        }
        try
        {
            return Module.FromBytes(_engine, "plugin", wasm);
        }
        catch (WasmtimeException e)
        {
            throw new PluginRejectedException("The module is not valid WebAssembly: " + e.Message.Split('\n')[0]);
        }
    }

    /// <summary>
    /// Binds a compiled module to one manifest, checking its exports and every import against that manifest's permissions —
    /// on every bind, so a cached module is never trusted on the strength of another manifest's check.
    /// </summary>
#pragma warning disable CA1822 // Part of the runtime's surface: callers bind through the runtime that compiled the module.
    public CompiledPlugin Bind(Module module, PluginManifest manifest, bool ownsModule = false)
#pragma warning restore CA1822
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(manifest);
        var requested = (manifest.Permissions ?? []).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var needed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var import in module.Imports)
        {
            if (import.ModuleName != HostAbi.Module || !HostAbi.Functions.TryGetValue(import.Name, out var permission))
            {
                throw new PluginRejectedException($"The module imports {import.ModuleName}.{import.Name}, which the host does not provide (only {HostAbi.Module}.* functions exist; no WASI).");
            }
            if (permission is not null && !requested.Contains(permission))
            {
                throw new PluginRejectedException($"The module imports {HostAbi.Module}.{import.Name}, which needs permission {permission}; the manifest does not request it.");
            }
            if (permission is not null)
            {
                needed.Add(permission);
            }
        }
        var exports = module.Exports.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var required in RequiredExports.Concat((manifest.EntryPoints ?? []).Select(e => e.Export)))
        {
            if (!exports.Contains(required))
            {
                throw new PluginRejectedException($"The module does not export '{required}' (see docs/plugins/abi.md).");
            }
        }
        return new CompiledPlugin(module, manifest, needed, ownsModule);
    }

    /// <summary>Runs one entry point with <paramref name="input"/> (JSON); never throws for anything the plugin does.</summary>
    public InvocationResult Invoke(CompiledPlugin plugin, string export, ReadOnlySpan<byte> input, IReadOnlySet<string> granted, KvSnapshot? kv = null,
        InvocationCredentials? credentials = null)
    {
        ArgumentNullException.ThrowIfNull(plugin);
        ArgumentNullException.ThrowIfNull(granted);
        var stopwatch = Stopwatch.StartNew();
        var fuel = Math.Min(_options.Fuel, plugin.Manifest.Resources?.Fuel ?? long.MaxValue);
        var timeout = plugin.Manifest.Resources?.TimeoutMs is { } ms ? TimeSpan.FromMilliseconds(Math.Min(ms, _options.Timeout.TotalMilliseconds)) : _options.Timeout;
        var memoryCap = Math.Min(_options.MaxMemoryBytes, (plugin.Manifest.Resources?.MemoryMiB ?? long.MaxValue / (1024 * 1024)) * 1024 * 1024);
        var state = new InvocationState(_options)
        {
            Kv = kv,
            // Only providers and secrets the manifest names, whatever the caller sent.
            OAuthTokens = InvocationCredentials.Only(credentials?.OAuthTokens, plugin.OAuthProviders),
            Secrets = InvocationCredentials.Only(credentials?.Secrets, plugin.SecretNames),
            Deadline = DateTimeOffset.UtcNow + timeout,
            AllowedHosts = plugin.AllowedHosts,
        };
        if (plugin.ImportedPermissions.FirstOrDefault(p => !granted.Contains(p)) is { } missing)
        {
            return Result(InvocationOutcome.Refused, "permission_not_granted:" + missing);
        }
        if (input.Length > _options.MaxInputBytes)
        {
            return Result(InvocationOutcome.Refused, "input_too_large");
        }

        using var ticking = _clock.Enter();
        using var store = new Store(_engine, state);
        store.SetLimits(memorySize: memoryCap, tableElements: 10_000, instances: 1, tables: 1, memories: 1);
        store.Fuel = (ulong)fuel;
        store.SetEpochDeadline((ulong)Math.Max(1, timeout / EpochClock.Tick));
        using var linker = new Linker(_engine);
        DefineHostFunctions(linker, granted, kv is not null);
        Memory? memory = null;
        try
        {
            var instance = linker.Instantiate(store, plugin.Module);
            memory = instance.GetMemory("memory") ?? throw new PluginRejectedException("no memory export");
            var alloc = instance.GetFunction<int, int>("alloc") ?? throw new PluginRejectedException("alloc has the wrong signature");
            var entry = instance.GetFunction<int, int, long>(export) ?? throw new PluginRejectedException($"{export} has the wrong signature (i32, i32) -> i64");
            var pointer = alloc(input.Length);
            if (pointer < 0 || (long)pointer + input.Length > memory.GetLength())
            {
                return Result(InvocationOutcome.Trapped, "bad_alloc", store, memory);
            }
            input.CopyTo(memory.GetSpan(pointer, input.Length));
            var packed = entry(pointer, input.Length);
            var (outPointer, outLength) = ((int)(packed >> 32), (int)(packed & 0xffffffff));
            if (outLength > _options.MaxOutputBytes)
            {
                return Result(InvocationOutcome.LimitHit, "output_too_large", store, memory);
            }
            if (outPointer < 0 || outLength < 0 || (long)outPointer + outLength > memory.GetLength())
            {
                return Result(InvocationOutcome.Trapped, "output_out_of_bounds", store, memory);
            }
            return Result(InvocationOutcome.Completed, "ok", store, memory, memory.GetSpan(outPointer, outLength).ToArray());
        }
        catch (TrapException trap)
        {
            var (outcome, kind) = state.LimitHit is { } limit ? (InvocationOutcome.LimitHit, limit) : trap.Type switch
            {
                TrapCode.OutOfFuel => (InvocationOutcome.LimitHit, "fuel"),
                TrapCode.Interrupt => (InvocationOutcome.LimitHit, "timeout"),
                TrapCode.StackOverflow => (InvocationOutcome.Trapped, "stack_overflow"),
                TrapCode.MemoryOutOfBounds => (InvocationOutcome.Trapped, "memory_out_of_bounds"),
                TrapCode.Unreachable => (InvocationOutcome.Trapped, "unreachable"),
                var other => (InvocationOutcome.Trapped, other.ToString().ToLowerInvariant()),
            };
            return Result(outcome, kind, store, memory, backtrace: Backtrace(trap));
        }
        catch (WasmtimeException e) when (state.LimitHit is null && e.Message.Contains("concurrent", StringComparison.OrdinalIgnoreCase))
        {
            // The shared instance pool is exhausted ("maximum concurrent … limit reached"): the host's failure, not the
            // plugin's — refused, never charged toward its quarantine.
            return Result(InvocationOutcome.Refused, "host_busy");
        }
        catch (WasmtimeException e)
        {
            // Instantiation failures (a memory larger than allowed, a start function that traps…).
            return Result(state.LimitHit is null ? InvocationOutcome.Trapped : InvocationOutcome.LimitHit, state.LimitHit ?? "instantiation", store, memory, backtrace: e.Message.Split('\n')[0]);
        }
        catch (PluginRejectedException e)
        {
            return Result(InvocationOutcome.Refused, "abi:" + e.Message);
        }

        InvocationResult Result(InvocationOutcome outcome, string kind, Store? s = null, Memory? m = null, byte[]? output = null, string? backtrace = null) =>
            new(outcome, kind, output ?? [], state.Messages, s is null ? 0 : fuel - (long)s.Fuel, stopwatch.Elapsed, m?.GetLength() ?? 0, backtrace) { HostCalls = state.HostCalls };
    }

    private static string Backtrace(WasmtimeException e) =>
        e.Frames is { Count: > 0 } frames
            ? string.Join(" <- ", frames.Take(16).Select(f => $"{f.FunctionName ?? "?"}@{f.ModuleOffset}"))
            : e.Message.Split('\n')[0];

    private void DefineHostFunctions(Linker linker, IReadOnlySet<string> granted, bool kvAvailable)
    {
        linker.DefineFunction(HostAbi.Module, "log", (Caller caller, int pointer, int length) =>
        {
            var state = Charge(caller);
            if (state.Logs.Count < 20 && ReadString(caller, pointer, Math.Min(length, 1024)) is { } line)
            {
                state.Logs.Add(line);
            }
        });
        if (granted.Contains(PluginPermissions.MessagesSend))
        {
            linker.DefineFunction(HostAbi.Module, "send_message", (Caller caller, int pointer, int length) =>
            {
                var state = Charge(caller);
                if (state.Messages.Count >= _options.MaxMessagesPerInvocation || length > 4096)
                {
                    state.LimitHit = "messages";
                    throw new TrapException("message limit");
                }
                state.Messages.Add(ReadString(caller, pointer, length) ?? throw new TrapException("message outside memory"));
                return 0;
            });
        }
        if (granted.Contains(PluginPermissions.HttpFetch) && _http is { } http)
        {
            // http_fetch(request, requestLen, out, outCap) -> answer length (copies what fits); the answer is always JSON.
            linker.DefineFunction(HostAbi.Module, "http_fetch", (Caller caller, int requestPointer, int requestLength, int outPointer, int outCapacity) =>
            {
                var state = Charge(caller);
                if (requestLength > 64 * 1024)
                {
                    throw new TrapException("http_fetch request too large");
                }
                // Both buffers are checked before the network is touched, so a bad pointer never costs a fetch.
                GuestSpan(caller, outPointer, outCapacity, "output buffer");
                var answer = http.Fetch(GuestSpan(caller, requestPointer, requestLength, "request"), state.AllowedHosts, state.Deadline - DateTimeOffset.UtcNow);
                return CopyOut(caller, answer, outPointer, outCapacity);
            });
        }
        if (granted.Contains(PluginPermissions.OAuthUse))
        {
            // oauth_token(provider, providerLen, out, outCap) -> token length (copies what fits), or -1 when the workspace has no
            // connection for that provider (or the manifest does not name it).
            DefineLookup(linker, "oauth_token", "provider", state => state.OAuthTokens);
        }
        if (granted.Contains(PluginPermissions.SecretsRead))
        {
            // secret_get(name, nameLen, out, outCap) -> value length (copies what fits), or -1 when the workspace has no such
            // secret (or the manifest does not name it).
            DefineLookup(linker, "secret_get", "name", state => state.Secrets);
        }
        if (granted.Contains(PluginPermissions.StorageKv) && kvAvailable)
        {
            // kv_get(key, keyLen, out, outCap) -> value length (copies what fits), or -1 when absent.
            linker.DefineFunction(HostAbi.Module, "kv_get", (Caller caller, int keyPointer, int keyLength, int outPointer, int outCapacity) =>
            {
                var state = Charge(caller);
                var key = ReadString(caller, keyPointer, Math.Min(keyLength, KvSnapshot.MaxKeyBytes)) ?? throw new TrapException("key outside memory");
                if (!state.Kv!.TryGet(key, out var value))
                {
                    return -1;
                }
                return CopyOut(caller, value, outPointer, outCapacity);
            });
            // kv_set(key, keyLen, value, valueLen) -> 0, or -1 when the plugin's storage quota would be exceeded.
            linker.DefineFunction(HostAbi.Module, "kv_set", (Caller caller, int keyPointer, int keyLength, int valuePointer, int valueLength) =>
            {
                var state = Charge(caller);
                if (keyLength is < 1 or > KvSnapshot.MaxKeyBytes)
                {
                    return -1;
                }
                var key = ReadString(caller, keyPointer, keyLength) ?? throw new TrapException("key outside memory");
                return state.Kv!.TrySet(key, GuestSpan(caller, valuePointer, valueLength, "value").ToArray()) ? 0 : -1;
            });
        }
    }

    /// <summary>
    /// A host function <c>(key, keyLen, out, outCap) -> i32</c> that looks a name up in one of the invocation's credential
    /// sets: the value's length (copying what fits), or -1 when the set has no such name.
    /// </summary>
    private static void DefineLookup(Linker linker, string function, string what, Func<InvocationState, Dictionary<string, string>> set) =>
        linker.DefineFunction(HostAbi.Module, function, (Caller caller, int keyPointer, int keyLength, int outPointer, int outCapacity) =>
        {
            var state = Charge(caller);
            // Names are at most 64 bytes; a longer one names nothing (cutting it short could name something else).
            if (keyLength > 64)
            {
                return -1;
            }
            var key = ReadString(caller, keyPointer, keyLength) ?? throw new TrapException(what + " outside memory");
            return set(state).TryGetValue(key, out var value) ? CopyOut(caller, Encoding.UTF8.GetBytes(value), outPointer, outCapacity) : -1;
        });

    /// <summary>Counts a host call against the quota; past it the invocation traps as a limit hit.</summary>
    private static InvocationState Charge(Caller caller)
    {
        var state = (InvocationState)caller.GetData()!;
        if (++state.HostCalls > state.MaxHostCalls)
        {
            state.LimitHit = "host_calls";
            throw new TrapException("host call quota exceeded");
        }
        return state;
    }

    /// <summary>The guest's bytes at [pointer, pointer+length); a range outside its memory traps the invocation.</summary>
    private static Span<byte> GuestSpan(Caller caller, int pointer, int length, string what)
    {
        var memory = caller.GetMemory("memory");
        if (memory is null || pointer < 0 || length < 0 || (long)pointer + length > memory.GetLength())
        {
            throw new TrapException($"{what} outside memory");
        }
        return memory.GetSpan(pointer, length);
    }

    /// <summary>Copies what fits of <paramref name="bytes"/> into the guest's buffer and returns the full length, so the
    /// guest can retry with a larger buffer.</summary>
    private static int CopyOut(Caller caller, ReadOnlySpan<byte> bytes, int outPointer, int outCapacity)
    {
        var target = GuestSpan(caller, outPointer, outCapacity, "output buffer");
        bytes[..Math.Min(bytes.Length, outCapacity)].CopyTo(target);
        return bytes.Length;
    }

    private static string? ReadString(Caller caller, int pointer, int length)
    {
        var memory = caller.GetMemory("memory");
        return memory is null || pointer < 0 || length < 0 || (long)pointer + length > memory.GetLength()
            ? null
            : Encoding.UTF8.GetString(memory.GetSpan(pointer, length));
    }

    public void Dispose()
    {
        // The clock first (it waits for its thread): incrementing the epoch of a disposed engine would crash the process.
        _clock.Dispose();
        _engine.Dispose();
    }

    private sealed class InvocationState(SandboxOptions options)
    {
        public int MaxHostCalls { get; } = options.MaxHostCalls;

        public int HostCalls { get; set; }

        public string? LimitHit { get; set; }

        public List<string> Messages { get; } = [];

        public List<string> Logs { get; } = [];

        public KvSnapshot? Kv { get; init; }

        public DateTimeOffset Deadline { get; init; }

        public IReadOnlyCollection<string> AllowedHosts { get; init; } = [];

        public Dictionary<string, string> OAuthTokens { get; init; } = [];

        public Dictionary<string, string> Secrets { get; init; } = [];
    }
}

/// <summary>
/// Credentials the Api hands over for one invocation: OAuth access tokens by provider (<c>oauth:use</c>) and workspace
/// secrets by name (<c>secrets:read</c>). Held in memory for that invocation only; never stored or logged.
/// </summary>
public sealed record InvocationCredentials(IReadOnlyDictionary<string, string>? OAuthTokens, IReadOnlyDictionary<string, string>? Secrets)
{
    /// <summary>The entries of <paramref name="values"/> whose names the manifest declares.</summary>
    internal static Dictionary<string, string> Only(IReadOnlyDictionary<string, string>? values, IReadOnlySet<string> declared) =>
        (values ?? new Dictionary<string, string>()).Where(v => declared.Contains(v.Key)).ToDictionary(v => v.Key, v => v.Value, StringComparer.Ordinal);
}
