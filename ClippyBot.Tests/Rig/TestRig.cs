namespace ClippyBot.Tests.Rig;

/// <summary>
/// Assembly-wide real infrastructure: one PostgreSQL cluster, one Redis-protocol server and one SMTP server for the whole run, torn
/// down at the end. No Docker, no mocks.
/// </summary>
[TestClass]
public static class TestRig
{
    private static TestPostgres? s_postgres;
    private static TestRedis? s_redis;
    private static TestSmtp? s_smtp;

    public static TestPostgres Postgres => s_postgres ?? throw new InvalidOperationException("The test rig has not started.");

    public static TestRedis Redis => s_redis ?? throw new InvalidOperationException("The test rig has not started.");

    public static TestSmtp Smtp => s_smtp ?? throw new InvalidOperationException("The test rig has not started.");

    [AssemblyInitialize]
    public static async Task StartAsync(TestContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        s_redis = TestRedis.Start();
        var smtp = TestSmtp.StartAsync(context.CancellationToken);
        s_postgres = await TestPostgres.StartAsync(context.CancellationToken);
        s_smtp = await smtp;
    }

    [AssemblyCleanup]
    public static async Task StopAsync()
    {
        if (s_postgres is not null)
        {
            await s_postgres.DisposeAsync();
        }
        s_redis?.Dispose();
        s_smtp?.Dispose();
    }
}
