using System.Text;
using System.Xml.Linq;
using ClippyBot.Security;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace ClippyBot.ServiceDefaults.Data;

/// <summary>
/// ASP.NET Core Data Protection for every service: the key ring lives in the service's own database (shared by its
/// replicas, surviving restarts) and every key is sealed with AES-256-GCM under a key derived from one of the service's
/// configured secrets — never in Redis, never plaintext on disk or in a dump.
/// </summary>
public static class SealedDataProtection
{
    public static IHostApplicationBuilder AddSealedDataProtection<TContext>(this IHostApplicationBuilder builder, string serviceName, string secretKey)
        where TContext : DbContext, IDataProtectionKeyContext
    {
        ArgumentNullException.ThrowIfNull(builder);
        var scope = "clippybot-" + serviceName;
        builder.Services.AddDataProtection().SetApplicationName(scope).PersistKeysToDbContext<TContext>();
        var message = $"{secretKey} must be a random secret of at least 43 characters: it seals the Data Protection key ring.";
        // Checked at start, not at the first cookie: a missing secret is a deployment error.
        builder.Services.AddOptions<KeyManagementOptions>().Validate<IConfiguration>(
            (_, configuration) => configuration[secretKey] is { Length: >= 43 }, message).ValidateOnStart();
        builder.Services.AddSingleton(sp =>
        {
            var secret = sp.GetRequiredService<IConfiguration>()[secretKey];
            return secret is not { Length: >= 43 }
                ? throw new InvalidOperationException(message)
                : new DataProtectionKeySealer(new KeyProtector(KeyDerivation.DeriveKey(secret, scope, DataProtectionKeySealer.Purpose), scope));
        });
        builder.Services.AddSingleton<IConfigureOptions<KeyManagementOptions>>(sp =>
            new ConfigureOptions<KeyManagementOptions>(o => o.XmlEncryptor = new SealedXmlEncryptor(sp.GetRequiredService<DataProtectionKeySealer>())));
        builder.Services.AddSingleton<IPostConfigureOptions<KeyManagementOptions>>(sp =>
            new PostConfigureOptions<KeyManagementOptions>(null, o =>
                o.XmlRepository = new MigratedXmlRepository<TContext>(o.XmlRepository!, sp.GetRequiredService<MigrationStatus<TContext>>())));
        return builder;
    }
}

/// <summary>Seals and opens Data Protection key XML (purpose <see cref="Purpose"/>, one key ring per service).</summary>
public sealed class DataProtectionKeySealer(KeyProtector protector)
{
    internal const string Purpose = "data-protection";
    private const string Id = "key-ring";

    public byte[] Seal(XElement element) => protector.Seal(Encoding.UTF8.GetBytes(element.ToString(SaveOptions.DisableFormatting)), Purpose, Id);

    public XElement Open(byte[] sealedKey) => XElement.Parse(Encoding.UTF8.GetString(protector.Open(sealedKey, Purpose, Id)));
}

public sealed class SealedXmlEncryptor(DataProtectionKeySealer sealer) : IXmlEncryptor
{
    public EncryptedXmlInfo Encrypt(XElement plaintextElement)
    {
        ArgumentNullException.ThrowIfNull(plaintextElement);
        var element = new XElement("sealedKey",
            new XComment(" AES-256-GCM under a key derived from the service's configured secret "),
            new XElement("value", Convert.ToBase64String(sealer.Seal(plaintextElement))));
        return new EncryptedXmlInfo(element, typeof(SealedXmlDecryptor));
    }
}

/// <summary>Opens what <see cref="SealedXmlEncryptor"/> sealed (Data Protection creates it through its service provider).</summary>
public sealed class SealedXmlDecryptor(IServiceProvider services) : IXmlDecryptor
{
    public XElement Decrypt(XElement encryptedElement)
    {
        ArgumentNullException.ThrowIfNull(encryptedElement);
        var value = encryptedElement.Element("value")?.Value ?? throw new FormatException("Sealed key element has no value.");
        return services.GetRequiredService<DataProtectionKeySealer>().Open(Convert.FromBase64String(value));
    }
}

/// <summary>
/// The key ring lives in a table that the background migration creates; a request arriving in the first moments after
/// start-up waits a few seconds for it rather than failing at once (or, worse, minting a key that cannot be stored). With
/// the database down it gives up after <see cref="MaxWait"/>, so Data Protection's start-up warm-up cannot hold the host.
/// </summary>
internal sealed class MigratedXmlRepository<TContext>(IXmlRepository inner, MigrationStatus<TContext> migrations) : IXmlRepository
    where TContext : DbContext
{
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(5);

    public IReadOnlyCollection<XElement> GetAllElements()
    {
        WaitForSchema();
        return inner.GetAllElements();
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        WaitForSchema();
        inner.StoreElement(element, friendlyName);
    }

    // Data Protection's repository API is synchronous; this blocks only until the schema exists (normally never).
    private void WaitForSchema()
    {
        if (!migrations.Completed && !migrations.WhenCompleted(CancellationToken.None).Wait(MaxWait))
        {
            throw new InvalidOperationException("The Data Protection key ring is not available yet: the service's database schema is not ready.");
        }
    }
}
