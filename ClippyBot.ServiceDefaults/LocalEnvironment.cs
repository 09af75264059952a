namespace Microsoft.Extensions.Hosting;

public static class LocalEnvironment
{
    /// <summary>Where the service runs is a developer's machine or the test rig (plain http, developer tooling on).</summary>
    public static bool IsLocal(this IHostEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        return environment.IsDevelopment() || environment.IsEnvironment("Testing");
    }

    /// <summary>Plain http is allowed locally unless <paramref name="settingKey"/> says otherwise; production terminates TLS 1.3.</summary>
    public static bool AllowsPlainHttp(this IHostApplicationBuilder builder, string settingKey)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return Microsoft.Extensions.Configuration.ConfigurationBinder.GetValue(builder.Configuration, settingKey, builder.Environment.IsLocal());
    }
}
