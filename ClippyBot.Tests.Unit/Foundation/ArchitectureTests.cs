using System.Reflection;
using Mono.Cecil;
using Mono.Cecil.Cil;
using NetArchTest.Rules;

namespace ClippyBot.Tests.Foundation;

/// <summary>
/// Boundaries that were conventions, checked on the compiled code (NetArchTest): services talk over HTTP, never through
/// each other's code; the command-line tools carry no service; only Identity writes revocation markers.
/// </summary>
[TestClass]
public sealed class ArchitectureTests
{
    private static readonly Assembly Api = typeof(ClippyBot.Api.Data.ApiDbContext).Assembly;
    private static readonly Assembly Identity = typeof(ClippyBot.Identity.Data.IdentityDataContext).Assembly;
    private static readonly Assembly PluginHost = typeof(ClippyBot.PluginHost.Data.PluginsDbContext).Assembly;
    private static readonly Assembly Registry = typeof(ClippyBot.Registry.Data.RegistryDbContext).Assembly;
    private static readonly Assembly Tuf = typeof(ClippyBot.Tuf.TufUpdater).Assembly;
    private static readonly Assembly Sandbox = typeof(ClippyBot.Plugins.Sandbox.PluginRuntime).Assembly;
    private static readonly Assembly PluginTool = typeof(ClippyBot.PluginTool.PluginCli).Assembly;
    private static readonly Assembly Backup = typeof(ClippyBot.Backup.BackupCli).Assembly;
    private static readonly Assembly ServiceDefaults = typeof(Microsoft.Extensions.Hosting.PeriodicService).Assembly;
    private static readonly Assembly Contracts = typeof(ClippyBot.Contracts.RevocationKeys).Assembly;
    private static readonly Assembly Bundles = typeof(ClippyBot.Plugins.Bundles.PluginBundle).Assembly;
    private static readonly Assembly Security = typeof(ClippyBot.Security.SealedValue).Assembly;
    private static readonly Assembly AppHost = typeof(ClippyBot.AppHost.Infrastructure.DevelopmentCertificates).Assembly;

    private static readonly Dictionary<string, Assembly> Services = new(StringComparer.Ordinal)
    {
        ["ClippyBot.Api"] = Api,
        ["ClippyBot.Identity"] = Identity,
        ["ClippyBot.PluginHost"] = PluginHost,
        ["ClippyBot.Registry"] = Registry,
    };

    [TestMethod]
    public void No_service_uses_another_services_code()
    {
        foreach (var (name, assembly) in Services)
        {
            var others = Services.Keys.Where(k => k != name).ToArray();
            var result = Types.InAssembly(assembly).ShouldNot().HaveDependencyOnAny(others).GetResult();
            Assert.IsTrue(result.IsSuccessful, $"{name} uses {string.Join(", ", others)}: {string.Join(", ", result.FailingTypeNames ?? [])}");
            foreach (var other in others)
            {
                Assert.DoesNotContain(other, AllClippyBotReferences(assembly), $"{name} references {other}");
            }
        }
    }

    [TestMethod]
    public void The_command_line_tools_carry_no_service_and_no_web_stack()
    {
        foreach (var (tool, assembly) in new[] { ("PluginTool", PluginTool), ("Backup", Backup) })
        {
            var references = AllClippyBotReferences(assembly);
            foreach (var service in Services.Keys)
            {
                Assert.DoesNotContain(service, references, $"{tool} references the web project {service}");
            }
            var result = Types.InAssembly(assembly).ShouldNot()
                .HaveDependencyOnAny([.. Services.Keys, "Microsoft.AspNetCore", "Microsoft.EntityFrameworkCore", "Wasmtime"]).GetResult();
            Assert.IsTrue(result.IsSuccessful, $"{tool}: {string.Join(", ", result.FailingTypeNames ?? [])}");
        }
        // The plugin author's CLI gets the bundle format from its own library, with nothing of a service underneath.
        CollectionAssert.AreEquivalent(new[] { "ClippyBot.Contracts", "ClippyBot.Plugins.Bundles" }, AllClippyBotReferences(PluginTool));
        var bundles = Types.InAssembly(Bundles).ShouldNot().HaveDependencyOnAny("ClippyBot.ServiceDefaults", "Microsoft.AspNetCore", "Microsoft.EntityFrameworkCore", "Wasmtime", "StackExchange.Redis").GetResult();
        Assert.IsTrue(bundles.IsSuccessful, string.Join(", ", bundles.FailingTypeNames ?? []));
        Assert.IsEmpty(Contracts.GetReferencedAssemblies().Where(r => r.Name!.StartsWith("ClippyBot", StringComparison.Ordinal)).ToList(), "the contracts depend on nothing of ours");
    }

    [TestMethod]
    public void The_backup_cli_and_the_apphost_take_the_primitives_they_need_without_the_service_defaults()
    {
        // Before #21 both referenced all of ServiceDefaults (MailKit, EF Core, OpenTelemetry…) for one type each.
        CollectionAssert.AreEquivalent(new[] { "ClippyBot.Security" }, AllClippyBotReferences(Backup));
        var appHost = AllClippyBotReferences(AppHost);
        Assert.Contains("ClippyBot.Security", appHost, "the development CA's trust rule");
        // pgBackRest's configuration and commands come from the Backup CLI's library part (no service, no web stack: see above).
        // The registry's development key ceremony (the offline root role) signs with the TUF and bundle libraries.
        CollectionAssert.IsSubsetOf(appHost, new[] { "ClippyBot.Contracts", "ClippyBot.Security", "ClippyBot.Backup", "ClippyBot.Tuf", "ClippyBot.Plugins.Bundles" }, string.Join(", ", appHost));
        // TUF stands on the base library and NSec alone: the registry signs with it, the PluginHost and the AppHost too.
        Assert.IsEmpty(AllClippyBotReferences(Tuf), "the TUF library depends on nothing of ours");
        var tuf = Types.InAssembly(Tuf).ShouldNot().HaveDependencyOnAny("Microsoft.AspNetCore", "Microsoft.EntityFrameworkCore", "Microsoft.Extensions").GetResult();
        Assert.IsTrue(tuf.IsSuccessful, string.Join(", ", tuf.FailingTypeNames ?? []));
        // The sandbox is shared by the PluginHost and the registry's review: it carries no service's data or web stack.
        var sandbox = Types.InAssembly(Sandbox).ShouldNot().HaveDependencyOnAny("Microsoft.AspNetCore", "Microsoft.EntityFrameworkCore", "ClippyBot.PluginHost", "ClippyBot.Registry").GetResult();
        Assert.IsTrue(sandbox.IsSuccessful, string.Join(", ", sandbox.FailingTypeNames ?? []));
        // ServiceDefaults is what every service starts with; mail (MailKit) is a library of its own for the two services that send it.
        var defaults = Types.InAssembly(ServiceDefaults).ShouldNot().HaveDependencyOnAny("MailKit", "MimeKit", "ClippyBot.Email").GetResult();
        Assert.IsTrue(defaults.IsSuccessful, string.Join(", ", defaults.FailingTypeNames ?? []));
        Assert.DoesNotContain("ClippyBot.Email", AllClippyBotReferences(PluginHost), "the PluginHost sends no mail");
        // The primitives themselves stand on the base library alone, so every CLI and service can share them.
        Assert.IsEmpty(AllClippyBotReferences(Security), "the security primitives depend on nothing of ours");
        var security = Types.InAssembly(Security).ShouldNot()
            .HaveDependencyOnAny("Microsoft.AspNetCore", "Microsoft.EntityFrameworkCore", "Microsoft.Extensions", "StackExchange.Redis").GetResult();
        Assert.IsTrue(security.IsSuccessful, string.Join(", ", security.FailingTypeNames ?? []));
    }

    [TestMethod]
    public void Nothing_but_the_security_library_calls_aes_gcm_or_hkdf_directly()
    {
        // One sealed-value format and one key derivation: a second AesGcm or HKDF call site is a second format in the making.
        foreach (var assembly in new[] { Api, Identity, PluginHost, Registry, Tuf, Sandbox, ServiceDefaults, Contracts, Bundles, Backup, PluginTool, AppHost })
        {
            var result = Types.InAssembly(assembly).ShouldNot()
                .HaveDependencyOnAny("System.Security.Cryptography.AesGcm", "System.Security.Cryptography.HKDF", "System.Security.Cryptography.HMACSHA256").GetResult();
            Assert.IsTrue(result.IsSuccessful, $"{assembly.GetName().Name}: {string.Join(", ", result.FailingTypeNames ?? [])}");
        }
        var inSecurity = Types.InAssembly(Security).That().HaveDependencyOnAny("System.Security.Cryptography.AesGcm").GetTypes().ToList();
        Assert.IsNotEmpty(inSecurity, "the check can find a call site (positive control)");
    }

    [TestMethod]
    public void Only_identity_writes_revocation_markers()
    {
        var rule = new WritesRevocationMarkers();
        // The check finds the one writer there is (else it could never fail).
        var identityWriters = Types.InAssembly(Identity).That().MeetCustomRule(rule).GetTypes().Select(t => t.FullName).ToList();
        Assert.IsTrue(identityWriters.Any(t => t!.StartsWith("ClippyBot.Identity.Oidc.RevocationMarkers", StringComparison.Ordinal)), string.Join(", ", identityWriters));

        var elsewhere = Types.InAssemblies([Api, PluginHost, ServiceDefaults, Contracts, Bundles, Backup, PluginTool])
            .That().MeetCustomRule(rule).GetTypes().Select(t => t.FullName).ToList();
        Assert.IsEmpty(elsewhere, "a Redis write next to a revocation-marker key outside Identity: " + string.Join(", ", elsewhere));
    }

    [TestMethod]
    public void Problem_types_have_one_home_and_each_is_documented()
    {
        var literals = Directory.EnumerateFiles(Rig.Repository.Root, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains("ClippyBot.Contracts", StringComparison.Ordinal) && !f.Contains("ClippyBot.Tests", StringComparison.Ordinal))
            .Where(f => File.ReadAllText(f).Contains("clippybot.dev/problems/", StringComparison.Ordinal))
            .ToList();
        Assert.IsEmpty(literals, "problem types written outside ClippyBot.Contracts.ProblemTypes: " + string.Join(", ", literals));

        var documented = File.ReadAllText(Path.Combine(Rig.Repository.Root, "docs", "problems.md"));
        var types = typeof(ClippyBot.Contracts.ProblemTypes).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.Name != nameof(ClippyBot.Contracts.ProblemTypes.Base)).Select(f => (string)f.GetRawConstantValue()!).ToList();
        Assert.IsGreaterThan(40, types.Count);
        Assert.HasCount(types.Count, types.Distinct().ToList(), "no two names for one type");
        foreach (var type in types)
        {
            StringAssert.Contains(documented, $"| `{type[ClippyBot.Contracts.ProblemTypes.Base.Length..]}` |", $"docs/problems.md describes {type}");
        }
    }

    /// <summary>ClippyBot assemblies <paramref name="assembly"/> references, directly or through other ClippyBot assemblies.</summary>
    private static List<string> AllClippyBotReferences(Assembly assembly)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<AssemblyName>(assembly.GetReferencedAssemblies());
        while (pending.TryPop(out var name))
        {
            if (!name.Name!.StartsWith("ClippyBot", StringComparison.Ordinal) || !seen.Add(name.Name))
            {
                continue;
            }
            foreach (var next in Assembly.Load(name).GetReferencedAssemblies())
            {
                pending.Push(next);
            }
        }
        return [.. seen];
    }

    /// <summary>
    /// A type that, in its own code or its nested types' (async state machines, lambdas), both names a revocation marker —
    /// the key prefix as a literal (constants are inlined) or RevocationKeys' key builders — and calls a Redis write (set,
    /// script, delete, expire, increment, rename, raw command). Publishing an announcement is not a write: anyone may end
    /// tokens. Type-wide, because a writer takes the key from another of its methods.
    /// </summary>
    private sealed class WritesRevocationMarkers : ICustomRule
    {
        private static readonly string[] Writes = ["StringSet", "StringGetSet", "StringGetDelete", "StringAppend", "ScriptEvaluate", "KeyDelete", "KeyExpire", "KeyPersist", "KeyCopy", "StringIncrement", "StringDecrement", "KeyRename", "Execute", "KeyRestore", "KeyMove"];

        public bool MeetsRule(TypeDefinition type)
        {
            var instructions = Instructions(type).ToList();
            var namesMarker = instructions.Any(i =>
                (i.OpCode == OpCodes.Ldstr && ((string)i.Operand).StartsWith("clippybot:revoked-", StringComparison.Ordinal))
                || (i.Operand is MethodReference called && called.DeclaringType.FullName == "ClippyBot.Contracts.RevocationKeys"
                    && called.Name is "RevokedBefore" or "RevokedSession"));
            var writesRedis = instructions.Any(i => i.Operand is MethodReference called
                && called.DeclaringType.Namespace == "StackExchange.Redis" && Writes.Any(w => called.Name.StartsWith(w, StringComparison.Ordinal)));
            return namesMarker && writesRedis;
        }

        private static IEnumerable<Instruction> Instructions(TypeDefinition type) =>
            type.Methods.Where(m => m.HasBody).SelectMany(m => m.Body.Instructions).Concat(type.NestedTypes.SelectMany(Instructions));
    }
}
