using ClippyBot.Security;
using System.Diagnostics;
using System.Globalization;
using ClippyBot.Identity.Crypto;

// ClippyBot.Bench argon2 [seconds] [memoryKiB] [iterations]: raw Argon2id rate with the service's own primitive and
//   parameters, one hashing loop per core — the ceiling that password logins are compared against (bench/run.sh).
// ClippyBot.Bench files [MiB]: streaming file encryption/decryption (StreamCipher) against raw AesGcm over the same chunks.
if (args.Length > 1 && args[0] == "echo-bundle")
{
    return ClippyBot.Bench.RoundTripBench.EchoBundle(args[1]);
}
if (args.Length > 5 && args[0] == "rate")
{
    return await ClippyBot.Bench.RoundTripBench.RateAsync(args[1], args[2], args[3],
        int.Parse(args[4], CultureInfo.InvariantCulture), int.Parse(args[5], CultureInfo.InvariantCulture),
        args.Length > 6 ? int.Parse(args[6], CultureInfo.InvariantCulture) : 15);
}
if (args.Length > 0 && args[0] == "registry-refresh")
{
    return await ClippyBot.Bench.RegistryBench.RefreshAsync(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1000);
}
if (args.Length > 0 && args[0] == "plugins")
{
    return ClippyBot.Bench.PluginBench.Run(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 20_000);
}
if (args.Length > 0 && args[0] == "files")
{
    return await ClippyBot.Bench.FileBench.RunAsync(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1024);
}
if (args.Length > 1 && args[0] == "apps-register")
{
    return await ClippyBot.Bench.AppsBench.RegisterAsync(args[1]);
}
if (args.Length > 2 && args[0] == "apps-propagation")
{
    return await ClippyBot.Bench.AppsBench.PropagationAsync(args[1], args[2], args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 20);
}
if (args.Length > 0 && args[0] == "pitr")
{
    // ClippyBot.Bench pitr [writes/s=500] [seconds=60] [databaseMiB=1024]: archive lag, CPU, RPO and RTO (docs/backup.md).
    return await ClippyBot.Bench.PitrBench.RunAsync(
        args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 500,
        args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 60,
        args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 1024);
}
if (args.Length == 0 || args[0] != "argon2")
{
    Console.Error.WriteLine("usage: ClippyBot.Bench argon2 [seconds=10] [memoryKiB=19456] [iterations=2] | files [MiB=1024] | plugins [invocations=20000]");
    return 2;
}
var seconds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10;
var parameters = new Argon2idParameters(
    args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 19_456,
    args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 2);
var hash = Argon2id.Hash("bench password 1234", parameters);
Argon2id.Verify(hash, "bench password 1234", out _); // warm-up

long count = 0;
var stopwatch = Stopwatch.StartNew();
var deadline = TimeSpan.FromSeconds(seconds);
var workers = Enumerable.Range(0, Environment.ProcessorCount).Select(worker => Task.Run(() =>
{
    while (stopwatch.Elapsed < deadline)
    {
        Argon2id.Verify(hash, "bench password 1234", out _);
        Interlocked.Increment(ref count);
    }
})).ToArray();
await Task.WhenAll(workers);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"RESULT rps={count / stopwatch.Elapsed.TotalSeconds:0.0} threads={Environment.ProcessorCount} m={parameters.MemoryKiB} t={parameters.Iterations}"));
return 0;
