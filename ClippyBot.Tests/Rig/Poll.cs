namespace ClippyBot.Tests.Rig;

/// <summary>Waits for a condition by polling with a deadline (never a fixed sleep).</summary>
public static class Poll
{
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var deadline = DateTime.UtcNow + timeout;
        var delay = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            if (await condition())
            {
                return;
            }
            if (DateTime.UtcNow >= deadline)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0} s waiting for: {what}");
            }
            await Task.Delay(delay, ct);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 500));
        }
    }

    /// <summary>Polls until <paramref name="value"/> gives something other than null, and returns it.</summary>
    public static async Task<T> UntilAsync<T>(Func<Task<T?>> value, TimeSpan timeout, string what, CancellationToken ct = default) where T : class
    {
        ArgumentNullException.ThrowIfNull(value);
        T? result = null;
        await UntilAsync(async () => (result = await value()) is not null, timeout, what, ct);
        return result!;
    }
}
