using ClippyBot.Security;

namespace ClippyBot.Tests.Security;

/// <summary>The primitives behind every sealed value, key and digest, checked against the published test vectors.</summary>
[TestClass]
public sealed class PublishedVectorTests
{
    // RFC 5869, appendix A, test cases 1–3 (HKDF-SHA-256).
    [TestMethod]
    [DataRow("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c", "f0f1f2f3f4f5f6f7f8f9", 42,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")]
    [DataRow("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f",
        "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
        "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", 82,
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87")]
    [DataRow("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "", 42,
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")]
    public void Key_derivation_matches_the_hkdf_vectors_of_rfc_5869(string ikm, string salt, string info, int length, string okm) =>
        Assert.AreEqual(okm, Convert.ToHexStringLower(KeyDerivation.Hkdf(Convert.FromHexString(ikm), Convert.FromHexString(salt), Convert.FromHexString(info), length)));

    [TestMethod]
    public void A_derived_key_is_hkdf_of_the_secret_with_scope_and_purpose_as_info_and_differs_per_purpose()
    {
        var key = KeyDerivation.DeriveKey("a configured secret", "clippybot-api", "kek");
        CollectionAssert.AreEqual(KeyDerivation.Hkdf("a configured secret"u8.ToArray(), [], "clippybot-api/kek"u8.ToArray(), 32), key);
        CollectionAssert.AreNotEqual(key, KeyDerivation.DeriveKey("a configured secret", "clippybot-api", "api-keys"));
        CollectionAssert.AreNotEqual(key, KeyDerivation.DeriveKey("a configured secret", "clippybot-identity", "kek"));
    }

    // RFC 4231, test cases 1, 2, 4 and 6 (HMAC-SHA-256).
    [TestMethod]
    [DataRow("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")]
    [DataRow("4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")]
    [DataRow("0102030405060708090a0b0c0d0e0f10111213141516171819",
        "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b")]
    [DataRow("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048617368204b6579204669727374",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")]
    public void Keyed_hash_matches_the_hmac_sha_256_vectors_of_rfc_4231(string key, string data, string mac)
    {
        Assert.AreEqual(mac, Convert.ToHexStringLower(KeyedHash.Compute(Convert.FromHexString(key), Convert.FromHexString(data))));
        Assert.IsTrue(KeyedHash.Verify(Convert.FromHexString(key), Convert.FromHexString(data), Convert.FromHexString(mac)));
        Assert.IsFalse(KeyedHash.Verify(Convert.FromHexString(key), [.. Convert.FromHexString(data), 0], Convert.FromHexString(mac)));
    }

    // The GCM specification (McGrew and Viega, as used in NIST's validation), test cases 13, 14 and 16: AES-256, 96-bit IV.
    [TestMethod]
    [DataRow("0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b")]
    [DataRow("0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000", "00000000000000000000000000000000", "",
        "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919")]
    [DataRow("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
        "76fc6ece0f4e1768cddf8853bb2d551b")]
    public void Aes_256_gcm_matches_the_gcm_specification_vectors(string key, string iv, string plaintext, string aad, string ciphertext, string tag)
    {
        var p = Convert.FromHexString(plaintext);
        var c = new byte[p.Length];
        var t = new byte[16];
        Aes256Gcm.Encrypt(Convert.FromHexString(key), Convert.FromHexString(iv), p, Convert.FromHexString(aad), c, t);
        Assert.AreEqual(ciphertext, Convert.ToHexStringLower(c));
        Assert.AreEqual(tag, Convert.ToHexStringLower(t));
        var opened = new byte[c.Length];
        Aes256Gcm.Decrypt(Convert.FromHexString(key), Convert.FromHexString(iv), c, t, Convert.FromHexString(aad), opened);
        CollectionAssert.AreEqual(p, opened);
    }

    [TestMethod]
    public void A_sealed_value_is_version_key_id_nonce_tag_ciphertext_with_the_header_and_context_as_associated_data()
    {
        var key = Convert.FromHexString("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
        var nonce = Convert.FromHexString("cafebabefacedbaddecaf888");
        var keyId = Guid.Parse("0191d2c4-7e3a-7000-8000-000000000001");
        var context = "clippybot-api/v1/secrets/value/row/workspace"u8.ToArray();
        var sealedValue = SealedValue.Seal(keyId, key, "hello"u8, context, nonce);

        Assert.AreEqual(SealedValue.Version, sealedValue[0]);
        CollectionAssert.AreEqual(keyId.ToByteArray(), sealedValue[1..17]);
        CollectionAssert.AreEqual(nonce, sealedValue[17..29]);
        var expectedCiphertext = new byte[5];
        var expectedTag = new byte[16];
        Aes256Gcm.Encrypt(key, nonce, "hello"u8, [.. sealedValue[..17], .. context], expectedCiphertext, expectedTag);
        CollectionAssert.AreEqual(expectedTag, sealedValue[29..45]);
        CollectionAssert.AreEqual(expectedCiphertext, sealedValue[45..]);
        Assert.AreEqual(keyId, SealedValue.KeyIdOf(sealedValue));
        CollectionAssert.AreEqual("hello"u8.ToArray(), SealedValue.Open(key, sealedValue, context));
    }
}
