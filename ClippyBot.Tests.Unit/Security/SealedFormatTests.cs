using System.Security.Cryptography;
using System.Text;
using ClippyBot.Security;

namespace ClippyBot.Tests.Security;

/// <summary>The one sealed-value format: what it refuses, and that values written in the two older layouts still open.</summary>
[TestClass]
public sealed class SealedFormatTests
{
    private static readonly byte[] Kek = RandomNumberGenerator.GetBytes(32);

    [TestMethod]
    public void A_value_opens_only_with_its_own_key_and_context_and_any_edited_byte_is_refused()
    {
        var keyId = Guid.CreateVersion7();
        var sealedValue = SealedValue.Seal(keyId, Kek, "secret"u8, "row-1"u8);
        CollectionAssert.AreEqual("secret"u8.ToArray(), SealedValue.Open(Kek, sealedValue, "row-1"u8));
        Assert.ThrowsExactly<AuthenticationTagMismatchException>(() => SealedValue.Open(Kek, sealedValue, "row-2"u8), "moved to another row");
        Assert.ThrowsExactly<AuthenticationTagMismatchException>(() => SealedValue.Open(RandomNumberGenerator.GetBytes(32), sealedValue, "row-1"u8), "another key");
        for (var i = 1; i < sealedValue.Length; i++)
        {
            var edited = sealedValue.ToArray();
            edited[i] ^= 0x01;
            Assert.ThrowsExactly<AuthenticationTagMismatchException>(() => SealedValue.Open(Kek, edited, "row-1"u8), $"byte {i} edited (key id, nonce, tag or ciphertext)");
        }
        var otherVersion = sealedValue.ToArray();
        otherVersion[0] = 3;
        Assert.ThrowsExactly<CryptographicException>(() => SealedValue.Open(Kek, otherVersion, "row-1"u8), "unknown version");
        Assert.ThrowsExactly<CryptographicException>(() => SealedValue.Open(Kek, sealedValue.AsSpan(0, 44), "row-1"u8), "shorter than a header");
        Assert.ThrowsExactly<ArgumentException>(() => SealedValue.Seal(keyId, new byte[16], "x"u8, "row-1"u8), "AES-128 keys are refused");
    }

    [TestMethod]
    public void A_value_sealed_as_an_api_envelope_of_version_1_still_opens()
    {
        // The Api's envelope before the formats were unified: 1 | key id | nonce | tag | ciphertext, associated data =
        // the first 17 bytes and the context. Written here by hand, as the old code did.
        var keyId = Guid.CreateVersion7();
        var context = "clippybot-api/v1/files/key/a/b"u8.ToArray();
        var nonce = RandomNumberGenerator.GetBytes(12);
        var header = new byte[17];
        header[0] = 1;
        keyId.TryWriteBytes(header.AsSpan(1));
        var ciphertext = new byte[7];
        var tag = new byte[16];
        using (var aes = new AesGcm(Kek, 16))
        {
            aes.Encrypt(nonce, "old row"u8, ciphertext, tag, [.. header, .. context]);
        }
        byte[] envelope = [.. header, .. nonce, .. tag, .. ciphertext];

        Assert.AreEqual(keyId, SealedValue.KeyIdOf(envelope));
        CollectionAssert.AreEqual("old row"u8.ToArray(), SealedValue.Open(Kek, envelope, context));
        envelope[0] = 2;
        Assert.ThrowsExactly<AuthenticationTagMismatchException>(() => SealedValue.Open(Kek, envelope, context), "the version byte is authenticated");
    }

    [TestMethod]
    public void A_key_sealed_in_the_legacy_key_protector_layout_still_opens_and_is_resealed_in_the_current_format()
    {
        // The former KeyProtector: 1 | nonce | tag | ciphertext, associated data = "{scope}/{purpose}/{id}".
        var nonce = RandomNumberGenerator.GetBytes(12);
        var ciphertext = new byte[32];
        var tag = new byte[16];
        var totpSecret = RandomNumberGenerator.GetBytes(32);
        using (var aes = new AesGcm(Kek, 16))
        {
            aes.Encrypt(nonce, totpSecret, ciphertext, tag, Encoding.UTF8.GetBytes("clippybot-identity/totp-secret/42"));
        }
        byte[] legacy = [1, .. nonce, .. tag, .. ciphertext];
        var protector = new KeyProtector(Kek, "clippybot-identity");

        Assert.IsTrue(KeyProtector.IsLegacy(legacy));
        CollectionAssert.AreEqual(totpSecret, protector.Open(legacy, "totp-secret", "42"));
        Assert.ThrowsExactly<AuthenticationTagMismatchException>(() => protector.Open(legacy, "totp-secret", "43"), "another row");
        Assert.ThrowsExactly<AuthenticationTagMismatchException>(() => new KeyProtector(Kek, "clippybot-api").Open(legacy, "totp-secret", "42"), "another service");

        var resealed = protector.Seal(protector.Open(legacy, "totp-secret", "42"), "totp-secret", "42");
        Assert.IsFalse(KeyProtector.IsLegacy(resealed));
        Assert.AreEqual(SealedValue.Version, resealed[0]);
        Assert.AreEqual(protector.KeyId, SealedValue.KeyIdOf(resealed));
        CollectionAssert.AreEqual(totpSecret, protector.Open(resealed, "totp-secret", "42"));
    }

    [TestMethod]
    public void A_value_sealed_under_another_key_encryption_key_is_named_as_such()
    {
        var sealedValue = new KeyProtector(Kek, "clippybot-identity").Seal("k"u8, "signing-key", "1");
        var other = new KeyProtector(RandomNumberGenerator.GetBytes(32), "clippybot-identity");
        Assert.AreNotEqual(new KeyProtector(Kek, "clippybot-identity").KeyId, other.KeyId);
        var refused = Assert.ThrowsExactly<CryptographicException>(() => other.Open(sealedValue, "signing-key", "1"));
        StringAssert.Contains(refused.Message, "another key-encryption key");
    }

    [TestMethod]
    public void Random_tokens_are_256_bit_base64url_without_padding_and_never_repeat()
    {
        var tokens = Enumerable.Range(0, 1000).Select(_ => RandomTokens.New()).ToList();
        Assert.AreEqual(1000, tokens.Distinct(StringComparer.Ordinal).Count());
        foreach (var token in tokens)
        {
            Assert.AreEqual(43, token.Length);
            Assert.IsTrue(token.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'), token);
        }
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => RandomTokens.New(8), "fewer than 128 bits is refused");
        CollectionAssert.AreEqual(SHA256.HashData("abc"u8), RandomTokens.LookupHash("abc"));
    }
}
