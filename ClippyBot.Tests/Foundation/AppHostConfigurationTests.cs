using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Aspire.Hosting.Testing;
using ClippyBot.AppHost.Infrastructure;
using ClippyBot.Tests.Rig;

namespace ClippyBot.Tests.Foundation;

/// <summary>Bad AppHost configuration fails at once with one message that names the fix; publish mode describes containers.</summary>
[TestClass]
public sealed class AppHostConfigurationTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void The_default_launch_profile_keeps_the_dashboards_login_and_only_a_named_one_drops_it()
    {
        using var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(Repository.Root, "ClippyBot.AppHost", "Properties", "launchSettings.json")));
        var profiles = settings.RootElement.GetProperty("profiles").EnumerateObject().ToList();
        // `dotnet run` takes the first profile.
        var first = profiles[0].Value.GetProperty("environmentVariables");
        Assert.IsFalse(first.TryGetProperty("ASPIRE_DASHBOARD_UNSECURED_ALLOW_ANONYMOUS", out _), $"the default profile '{profiles[0].Name}' must not open the dashboard to anyone");
        var anonymous = profiles.Where(p => p.Value.GetProperty("environmentVariables").TryGetProperty("ASPIRE_DASHBOARD_UNSECURED_ALLOW_ANONYMOUS", out _)).Select(p => p.Name).ToList();
        CollectionAssert.AreEqual(new[] { "http-anonymous-dashboard" }, anonymous, "only the documented profile is anonymous");
        StringAssert.Contains(File.ReadAllText(Path.Combine(Repository.Root, "README.md")), "http-anonymous-dashboard");
    }

    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void A_checkout_the_postgres_user_cannot_reach_keeps_its_cluster_where_it_can()
    {
        if (!PostgresCluster.RunningAsRoot)
        {
            Assert.Inconclusive("Only a root AppHost runs PostgreSQL as another OS user.");
        }
        // A clone in a private folder, as `mktemp -d` or root's home makes one (mode 0700).
        var parent = Directory.CreateTempSubdirectory("clippybot-private-").FullName;
        var state = Directory.CreateTempSubdirectory("clippybot-state-").FullName;
        File.SetUnixFileMode(parent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(state, (UnixFileMode)0b111_101_101);
        try
        {
            var checkout = Path.Combine(parent, "clippybot");
            var dataRoot = Path.Combine(checkout, ".clippybot");
            Directory.CreateDirectory(dataRoot);
            var binaries = PostgresCluster.LocateBinaries(configured: null);

            var inside = PostgresCluster.Create(Path.Combine(dataRoot, "postgres"), binaries);
            var refused = Assert.Throws<InfrastructureConfigurationException>(() => inside.EnsureInitialized(), "the old place fails, naming the fix");
            StringAssert.Contains(refused.Message, "cannot reach");

            var (folder, moved) = PostgresCluster.ClusterFolderFor(dataRoot, checkout, state);
            Assert.IsTrue(moved);
            StringAssert.StartsWith(folder, state);
            Assert.AreEqual(folder, PostgresCluster.ClusterFolderFor(dataRoot, checkout, state).Folder, "the same checkout always gets the same folder (persistence)");
            var password = PostgresCluster.Create(folder, binaries).EnsureInitialized();
            Assert.IsFalse(string.IsNullOrEmpty(password), "initdb ran as the postgres user in the new place");
            Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(folder));
        }
        finally
        {
            Directory.Delete(parent, recursive: true);
            Directory.Delete(state, recursive: true);
        }
    }

    [TestMethod]
    public async Task Unknown_infrastructure_mode_fails_fast_naming_the_valid_modes()
    {
        var error = await StartBuilderExpectingFailureAsync("--Infrastructure=kubernetes");

        StringAssert.Contains(error.Message, "Unknown infrastructure mode 'kubernetes'");
        StringAssert.Contains(error.Message, "--Infrastructure=local");
    }

    [TestMethod]
    [DataRow("--LocalInfrastructure:RestoreDrillInterval=120.00:00:00", "RestoreDrillInterval")]
    [DataRow("--LocalInfrastructure:RecoveryWindow=soon", "RecoveryWindow")]
    [DataRow("--LocalInfrastructure:BackupRepositories:0=/tmp/only-one", "give two to four separate locations")]
    public async Task Backup_settings_that_break_the_promises_fail_fast_naming_the_setting(string setting, string named)
    {
        // Drills less often than quarterly, an unreadable window, or one repository (one location) are refused at start.
        var error = await StartBuilderExpectingFailureAsync("--Infrastructure=local", "--LocalInfrastructure:Persistent=false", setting);

        StringAssert.Contains(error.Message, named);
    }

    [TestMethod]
    public async Task Two_backup_repositories_in_one_folder_are_one_location_and_are_refused()
    {
        var folder = Path.Combine(Path.GetTempPath(), "clippybot-same-repo-" + Guid.NewGuid().ToString("N")[..8]);
        var error = await StartBuilderExpectingFailureAsync("--Infrastructure=local", "--LocalInfrastructure:Persistent=false",
            $"--LocalInfrastructure:BackupRepositories:0={folder}", $"--LocalInfrastructure:BackupRepositories:1={folder}/");

        StringAssert.Contains(error.Message, "BackupRepositories");
        StringAssert.Contains(error.Message, "folder of its own");
    }

    [TestMethod]
    public async Task Postgres_bin_directory_without_server_binaries_fails_fast_naming_the_setting()
    {
        var empty = Directory.CreateTempSubdirectory("clippybot-nobin-");
        try
        {
            var error = await StartBuilderExpectingFailureAsync("--Infrastructure=local", "--LocalInfrastructure:Persistent=false",
                $"--LocalInfrastructure:PostgresBinDirectory={empty.FullName}");

            StringAssert.Contains(error.Message, "does not contain postgres, initdb and pg_ctl");
            StringAssert.Contains(error.Message, "pg_config --bindir");
        }
        finally
        {
            empty.Delete();
        }
    }

    [TestMethod]
    public void Missing_postgres_binaries_are_reported_with_the_install_command()
    {
        var empty = Directory.CreateTempSubdirectory("clippybot-nobin-");
        try
        {
            var error = Assert.ThrowsExactly<InfrastructureConfigurationException>(
                () => PostgresCluster.LocateBinaries(configured: null, candidates: [empty.FullName]));

            StringAssert.Contains(error.Message, "apt-get install -y postgresql");
            StringAssert.Contains(error.Message, "--Infrastructure=containers");
        }
        finally
        {
            empty.Delete();
        }
    }

    [TestMethod]
    public async Task Configured_port_already_in_use_fails_fast_naming_the_port()
    {
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var port = ((IPEndPoint)occupant.LocalEndpoint).Port;

        var error = await StartBuilderExpectingFailureAsync("--Infrastructure=local", "--LocalInfrastructure:Persistent=false",
            $"--LocalInfrastructure:PostgresPort={port}");

        StringAssert.Contains(error.Message, $"Port {port} (LocalInfrastructure:PostgresPort) is already in use");
    }

    [TestMethod]
    public async Task Publishing_a_manifest_describes_both_clusters_as_archiving_containers_with_backup_sidecars_and_redis_with_the_same_names()
    {
        var ct = TestContext.CancellationToken;
        var output = Directory.CreateTempSubdirectory("clippybot-manifest-");
        try
        {
            var appHost = typeof(InfrastructureExtensions).Assembly.Location;
            var manifestPath = Path.Combine(output.FullName, "aspire-manifest.json");
            using var process = Process.Start(new ProcessStartInfo("dotnet", [appHost, "--publisher", "manifest", "--output-path", manifestPath])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = Path.GetDirectoryName(appHost)!,
            })!;
            var stdout = process.StandardOutput.ReadToEndAsync(ct);
            var stderr = process.StandardError.ReadToEndAsync(ct);
            await process.WaitForExitAsync(ct);
            Assert.AreEqual(0, process.ExitCode, await stdout + await stderr);

            using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(manifestPath, ct));
            var resources = manifest.RootElement.GetProperty("resources");
            Assert.AreEqual("container.v0", resources.GetProperty("cache").GetProperty("type").GetString());
            foreach (var database in new[] { "identitydb", "apidb", "subjectkeysdb", "pluginsdb" })
            {
                Assert.AreEqual("value.v0", resources.GetProperty(database).GetProperty("type").GetString());
            }
            StringAssert.Contains(resources.GetProperty("subjectkeysdb").GetProperty("connectionString").GetString(), "{postgres-subjectkeys.connectionString}",
                "people's keys live in a cluster of their own in containers mode too");

            // Both clusters archive through pgBackRest into two encrypted repositories, each backed up by its sidecar.
            foreach (var (cluster, schedule, retentionDays) in new[] { ("postgres", "backups", "30"), ("postgres-subjectkeys", "backups-subjectkeys", "28") })
            {
                var postgres = resources.GetProperty(cluster);
                var sidecar = resources.GetProperty(schedule);
                foreach (var container in new[] { postgres, sidecar })
                {
                    Assert.AreEqual("container.v1", container.GetProperty("type").GetString());
                    StringAssert.EndsWith(container.GetProperty("build").GetProperty("dockerfile").GetString(), "ClippyBot.AppHost/Containers/postgres-pgbackrest/Dockerfile");
                    var env = container.GetProperty("env");
                    for (var n = 1; n <= 2; n++)
                    {
                        Assert.AreEqual("aes-256-cbc", env.GetProperty($"PGBACKREST_REPO{n}_CIPHER_TYPE").GetString());
                        Assert.AreEqual(retentionDays, env.GetProperty($"PGBACKREST_REPO{n}_RETENTION_FULL").GetString());
                        var passphrase = env.GetProperty($"PGBACKREST_REPO{n}_CIPHER_PASS").GetString()!;
                        Assert.AreEqual($"{{{schedule}-repo{n}-cipher-pass.value}}", passphrase, "a parameter, never a value in the manifest");
                        var input = resources.GetProperty($"{schedule}-repo{n}-cipher-pass").GetProperty("inputs").GetProperty("value");
                        Assert.IsTrue(input.GetProperty("secret").GetBoolean());
                        Assert.IsTrue(input.GetProperty("default").GetProperty("generate").GetProperty("minLength").GetInt32() >= 64);
                    }
                }
                var arguments = string.Join(' ', postgres.GetProperty("args").EnumerateArray().Select(a => a.GetString()));
                StringAssert.Contains(arguments, "archive_mode=on");
                StringAssert.Contains(arguments, "archive_command=pgbackrest --stanza=clippybot archive-push %p");
                StringAssert.Contains(arguments, "archive_timeout=60");
                Assert.AreEqual("clippybot-backups", sidecar.GetProperty("entrypoint").GetString());
                // The sidecar reaches the same data, socket and repositories; the repositories are the cluster's own.
                string[] Volumes(JsonElement container) => [.. container.GetProperty("volumes").EnumerateArray().Select(v => v.GetProperty("name").GetString()!)];
                CollectionAssert.IsSubsetOf(Volumes(postgres), Volumes(sidecar));
                Assert.IsTrue(sidecar.GetProperty("volumes").EnumerateArray().Single(v => v.GetProperty("target").GetString() == "/var/lib/postgresql").GetProperty("readOnly").GetBoolean(),
                    "the sidecar only reads the cluster's data");
                Assert.AreEqual(2, Volumes(postgres).Count(v => v.StartsWith($"clippybot-{schedule}-repo", StringComparison.Ordinal)));
            }
            Assert.AreEqual("86400", resources.GetProperty("backups-subjectkeys").GetProperty("env").GetProperty("CLIPPYBOT_FULL_INTERVAL_SECONDS").GetString(),
                "people's keys get a full backup daily, so that none outlives 30 days");
            foreach (var service in new[] { "identity", "api", "pluginhost" })
            {
                Assert.AreEqual("project.v0", resources.GetProperty(service).GetProperty("type").GetString());
            }
        }
        finally
        {
            output.Delete(recursive: true);
        }
    }

    private async Task<Exception> StartBuilderExpectingFailureAsync(params string[] args)
    {
        try
        {
            var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.ClippyBot_AppHost>(args, TestContext.CancellationToken);
            await using var app = await builder.BuildAsync(TestContext.CancellationToken);
        }
#pragma warning disable CA1031 // the test inspects whatever came out
        catch (Exception ex)
#pragma warning restore CA1031
        {
            // The testing builder may wrap what the AppHost threw; the configuration error is what the user sees.
            for (var current = ex; current is not null; current = current.InnerException)
            {
                if (current is InfrastructureConfigurationException)
                {
                    return current;
                }
            }
            Assert.Fail($"Expected an {nameof(InfrastructureConfigurationException)}, got: {ex}");
        }
        Assert.Fail("The AppHost started despite bad configuration.");
        return null!;
    }
}
