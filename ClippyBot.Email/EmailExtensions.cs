using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace ClippyBot.Email;

public static class EmailExtensions
{
    /// <summary>Outgoing mail: an in-memory outbox, a background sender with retries, settings from <c>Email</c>.</summary>
    public static IHostApplicationBuilder AddEmail(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var section = builder.Configuration.GetSection(EmailOptions.SectionName);
        builder.Services.AddOptions<EmailOptions>().Bind(section)
            .Validate(o => !string.IsNullOrWhiteSpace(o.Host), "Email:Host is not set: the service sends mail (verification, password reset) and needs an SMTP server.")
            .Validate(o => System.Net.Mail.MailAddress.TryCreate(o.FromAddress, out _), "Email:FromAddress is not an email address.")
            .Validate(o => o.Security != SmtpSecurity.None || builder.Environment.IsLocal(), "Email:Security=None sends mail unencrypted; it is allowed only in local development.")
            .ValidateOnStart();
        var settings = section.Get<EmailOptions>() ?? new EmailOptions();
        builder.Services.AddSingleton<EmailOutbox>();
        builder.Services.AddHostedService<EmailDeliveryService>();
        builder.Services.AddResiliencePipeline(EmailDeliveryService.PipelineName, pipeline => pipeline.AddRetry(new RetryStrategyOptions
        {
            MaxRetryAttempts = Math.Max(0, settings.MaxAttempts - 1),
            Delay = settings.FirstRetryDelay,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            ShouldHandle = new PredicateBuilder().Handle<Exception>(EmailDeliveryService.IsTransient),
        }));
        return builder;
    }

    /// <summary>
    /// Adds the durable outbox in <typeparamref name="TContext"/> (its model must call <c>AddMailOutbox()</c>), sealed
    /// under <paramref name="keys"/>' protector with recipients tagged by its HMAC key, and its sender.
    /// </summary>
    public static IHostApplicationBuilder AddDurableEmail<TContext>(this IHostApplicationBuilder builder, Func<IServiceProvider, DurableEmailKey> keys)
        where TContext : Microsoft.EntityFrameworkCore.DbContext
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton(keys);
        builder.Services.AddSingleton<DurableEmailOutbox<TContext>>();
        builder.Services.AddHostedService<DurableEmailDeliveryService<TContext>>();
        return builder;
    }
}
