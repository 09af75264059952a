using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClippyBot.Tests.Foundation;

/// <summary>Background work on a schedule outlives a failing round: an exception escaping a hosted service stops the host.</summary>
[TestClass]
public sealed class PeriodicServiceTests
{
    public TestContext TestContext { get; set; } = null!;

    private sealed class Flaky(IConfiguration configuration) : PeriodicService(configuration, TimeProvider.System, NullLogger.Instance)
    {
        public int Rounds;

        public TaskCompletionSource SecondRound { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override string IntervalKey => "Test:Interval";

        protected override TimeSpan DefaultInterval => TimeSpan.FromSeconds(1);

        protected override Task RunOnceAsync(CancellationToken ct)
        {
            if (Interlocked.Increment(ref Rounds) == 1)
            {
                // What a slow neighbour looks like to a worker: not one of the exceptions anyone thought to catch.
                throw new TaskCanceledException("the HTTP client's own timeout");
            }
            SecondRound.TrySetResult();
            return Task.CompletedTask;
        }
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task A_round_that_throws_anything_is_logged_and_the_next_round_still_runs()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Test:Interval"] = "00:00:01" }).Build();
        using var service = new Flaky(configuration);
        await service.StartAsync(TestContext.CancellationToken);
        await service.SecondRound.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.CancellationToken);
        Assert.IsFalse(service.ExecuteTask!.IsFaulted, "the service is still running after a round failed");
        await service.StopAsync(CancellationToken.None);
        Assert.IsGreaterThanOrEqualTo(2, service.Rounds);
    }
}
