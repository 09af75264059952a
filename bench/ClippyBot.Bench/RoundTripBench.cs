using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using ClippyBot.Plugins.Bundles;

namespace ClippyBot.Bench;

/// <summary>
/// <c>echo-bundle DIR</c>: a signed bundle of a trivial echo plugin and its public key (for bench/run.sh).
/// <c>rate URL BEARER JSON RPS SECONDS</c>: POSTs (GETs when JSON is <c>-</c>) at a fixed rate (open loop, like a steady stream of chat events) and reports
/// latency percentiles — what wrk's closed loop cannot show at a given request rate.
/// </summary>
internal static class RoundTripBench
{
    public static int EchoBundle(string directory)
    {
        var wasm = PluginBench.EchoWasm;
        var manifest = """
            { "id": "dev.clippybot.echo", "name": "Echo", "version": "1.0.0", "publisher": "ClippyBot", "description": "Echoes the event.",
              "entryPoints": [{ "event": "on_message", "export": "on_message" }], "permissions": [] }
            """u8.ToArray();
        var (privateKey, publicKey) = PluginSigning.GenerateKey();
        var bundle = new PluginBundle(manifest, wasm, []);
        bundle = bundle.WithSignature(PluginSigning.Sign(bundle, privateKey, DateTimeOffset.UtcNow));
        using (var file = File.Create(Path.Combine(directory, "echo.cbp")))
        {
            bundle.Write(file);
        }
        Console.WriteLine(Convert.ToBase64String(publicKey));
        return 0;
    }

    public static async Task<int> RateAsync(string url, string bearer, string json, int rps, int seconds, int warmupSeconds = 15)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        var legs = new System.Collections.Concurrent.ConcurrentBag<double>();
        var slow = new System.Collections.Concurrent.ConcurrentBag<(double At, double Leg, double Total)>();
        var clock = Stopwatch.StartNew();
        var measuring = false;
        async Task<(double Ms, bool Ok)> OneAsync()
        {
            using var content = json == "-" ? null : new StringContent(json, Encoding.UTF8, "application/json");
            var start = Stopwatch.GetTimestamp();
            try
            {
                using var response = content is null ? await client.GetAsync(new Uri(url)) : await client.PostAsync(new Uri(url), content);
                await response.Content.ReadAsByteArrayAsync();
                var elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                // The Api reports its own PluginHost leg (Server-Timing: pluginhost;dur=…).
                if (measuring && response.Headers.TryGetValues("Server-Timing", out var timings)
                    && timings.SelectMany(t => t.Split(',')).Select(t => t.Trim()).FirstOrDefault(t => t.StartsWith("pluginhost;dur=", StringComparison.Ordinal)) is { } leg
                    && double.TryParse(leg["pluginhost;dur=".Length..], NumberStyles.Float, CultureInfo.InvariantCulture, out var legMs))
                {
                    legs.Add(legMs);
                    if (legMs > 2.5)
                    {
                        slow.Add((clock.Elapsed.TotalMilliseconds, legMs, elapsed));
                    }
                }
                return (elapsed, response.IsSuccessStatusCode);
            }
            catch (HttpRequestException)
            {
                return (Stopwatch.GetElapsedTime(start).TotalMilliseconds, false);
            }
        }
        async Task<(double Ms, bool Ok)[]> AtRateAsync(int duration)
        {
            var tasks = new List<Task<(double Ms, bool Ok)>>();
            var interval = TimeSpan.FromSeconds(1.0 / rps);
            var begin = Stopwatch.GetTimestamp();
            for (var i = 0; i < rps * duration; i++)
            {
                var due = TimeSpan.FromTicks(interval.Ticks * i) - Stopwatch.GetElapsedTime(begin);
                if (due > TimeSpan.Zero)
                {
                    await Task.Delay(due);
                }
                tasks.Add(OneAsync());
            }
            return await Task.WhenAll(tasks);
        }
        // Warm-up at the same rate, results discarded: every service's hot path reaches tier-1 code first (50 requests left
        // much of it at tier 0, which is not what a running system serves with).
        await AtRateAsync(warmupSeconds);
        measuring = true;
        var results = await AtRateAsync(seconds);
        var latencies = results.Select(r => r.Ms).Order().ToArray();
        var legLatencies = legs.Order().ToArray();
        var legText = legLatencies.Length == 0 ? "" : string.Create(CultureInfo.InvariantCulture,
            $" | server-timing pluginhost n={legLatencies.Length} p50_ms={legLatencies[legLatencies.Length / 2]:0.00} p99_ms={legLatencies[legLatencies.Length * 99 / 100]:0.00} max_ms={legLatencies[^1]:0.00}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT rps={rps} n={latencies.Length} p50_ms={latencies[latencies.Length / 2]:0.00} p99_ms={latencies[latencies.Length * 99 / 100]:0.00} max_ms={latencies[^1]:0.00} errors={results.Count(r => !r.Ok)}{legText}"));
        if (Environment.GetEnvironmentVariable("SLOW_DUMP") is { Length: > 0 } dump)
        {
            File.AppendAllLines(dump, [$"# {url}", .. slow.OrderBy(x => x.At).Select(x => string.Create(CultureInfo.InvariantCulture, $"{x.At:0} {x.Leg:0.00} {x.Total:0.00}"))]);
        }
        return results.All(r => r.Ok) ? 0 : 1;
    }
}
