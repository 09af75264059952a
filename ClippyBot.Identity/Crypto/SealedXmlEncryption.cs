using System.Text;
using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;
using Microsoft.Extensions.Options;
using ClippyBot.Identity.Oidc;

namespace ClippyBot.Identity.Crypto;

/// <summary>
/// Seals ASP.NET Core Data Protection keys (which protect sign-in and anti-forgery cookies) with AES-256-GCM before they
/// are stored in <c>identitydb</c>, under a key derived from <c>Oidc:KeyEncryptionKey</c>: replicas share the key ring,
/// and a database dump does not contain usable keys.
/// </summary>
public sealed class SealedXmlEncryptor(IOptions<OidcOptions> options) : IXmlEncryptor
{
    internal const string Purpose = "data-protection";
    internal const string Id = "key-ring";

    private readonly KeyProtector _protector = new(OidcOptions.DeriveKey(options.Value.KeyEncryptionKey, Purpose));

    public EncryptedXmlInfo Encrypt(XElement plaintextElement)
    {
        ArgumentNullException.ThrowIfNull(plaintextElement);
        var sealedKey = _protector.Seal(Encoding.UTF8.GetBytes(plaintextElement.ToString(SaveOptions.DisableFormatting)), Purpose, Id);
        var element = new XElement("sealedKey",
            new XComment(" AES-256-GCM under a key derived from Oidc:KeyEncryptionKey "),
            new XElement("value", Convert.ToBase64String(sealedKey)));
        return new EncryptedXmlInfo(element, typeof(SealedXmlDecryptor));
    }
}

/// <summary>Opens what <see cref="SealedXmlEncryptor"/> sealed (Data Protection creates it through its service provider).</summary>
public sealed class SealedXmlDecryptor(IServiceProvider services) : IXmlDecryptor
{
    private readonly KeyProtector _protector = new(OidcOptions.DeriveKey(
        services.GetRequiredService<IOptions<OidcOptions>>().Value.KeyEncryptionKey, SealedXmlEncryptor.Purpose));

    public XElement Decrypt(XElement encryptedElement)
    {
        ArgumentNullException.ThrowIfNull(encryptedElement);
        var sealedKey = Convert.FromBase64String(encryptedElement.Element("value")?.Value ?? throw new FormatException("Sealed key element has no value."));
        return XElement.Parse(Encoding.UTF8.GetString(_protector.Open(sealedKey, SealedXmlEncryptor.Purpose, SealedXmlEncryptor.Id)));
    }
}
