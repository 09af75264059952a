using System.Text;
using System.Text.Json.Nodes;
using ClippyBot.Tuf;

namespace ClippyBot.Tests.Tuf;

/// <summary>Canonical JSON and Ed25519 as TUF uses them, checked against published vectors.</summary>
[TestClass]
public sealed class TufVectorTests
{
    // python-tuf's test repository (tests/repository_data/repository/metadata/timestamp.json): an Ed25519 signature over the
    // canonical JSON of "signed". It verifies only if this implementation's canonical form is byte for byte securesystemslib's.
    private const string PythonTufTimestamp = """
        {
         "signatures": [
          {
           "keyid": "3f09f6468a522bea0364a23315872d8400875dfdb24ff4ecd32f27164d5c23c1",
           "method": "ed25519",
           "sig": "1749729587ae99bdbaeff59562f1a06cfa3f2b8c31d0b82b8f10fcb4cc5fbf21a0df885e57994bae1b542b814cafaf506d357618515c18d8b5e4b23b90e26506"
          }
         ],
         "signed": {
          "_type": "Timestamp",
          "expires": "2030-01-01T00:00:00Z",
          "meta": {
           "snapshot.json": {
            "hashes": {
             "sha256": "b55cf3ef997ca2d2be2ec921cdc8ab278ee77748041f9426dbe4ce1b2c8ba781"
            },
            "length": 636,
            "version": 1
           }
          },
          "version": 1
         }
        }
        """;

    [TestMethod]
    public void The_canonical_form_of_a_python_tuf_timestamp_verifies_under_its_published_ed25519_signature()
    {
        var envelope = TufEnvelope.Parse(Encoding.UTF8.GetBytes(PythonTufTimestamp), "python-tuf timestamp");
        var key = new TufPublicKey("52de9284608be6b718a9d88c7c5d8d9d93b33732e00d670dd4ebe4bce8bbc83c");
        var payload = CanonicalJson.Serialize(envelope.Body);
        Assert.AreEqual("""{"_type":"Timestamp","expires":"2030-01-01T00:00:00Z","meta":{"snapshot.json":{"hashes":{"sha256":"b55cf3ef997ca2d2be2ec921cdc8ab278ee77748041f9426dbe4ce1b2c8ba781"},"length":636,"version":1}},"version":1}""",
            Encoding.UTF8.GetString(payload));
        Assert.IsTrue(key.Verify(payload, envelope.Signatures[0].Signature));
        payload[^2] = (byte)'2';
        Assert.IsFalse(key.Verify(payload, envelope.Signatures[0].Signature), "a changed version no longer verifies");
    }

    // RFC 8032, section 7.1, test 1 (the empty message).
    [TestMethod]
    public void A_signing_key_signs_as_rfc_8032_test_1_says()
    {
        using var key = TufSigningKey.FromSeed(Convert.FromHexString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
        Assert.AreEqual("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", key.Public.PublicHex);
        Assert.AreEqual("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            Convert.ToHexStringLower(key.Sign([])));
    }

    [TestMethod]
    public void Canonical_json_sorts_keys_by_code_point_escapes_only_quote_and_backslash_and_refuses_fractions()
    {
        var node = JsonNode.Parse("""{"b": [1, true, null], "a": "x\"y\\z\n\u00e9", "\u00e9": 0, "Z": -5}""");
        Assert.AreEqual("{\"Z\":-5,\"a\":\"x\\\"y\\\\z\n\u00e9\",\"b\":[1,true,null],\"\u00e9\":0}", Encoding.UTF8.GetString(CanonicalJson.Serialize(node)));
        Assert.AreEqual(TufFailure.Malformed, Assert.ThrowsExactly<TufException>(() => CanonicalJson.Serialize(JsonNode.Parse("""{"a": 1.5}"""))).Failure);
        Assert.AreEqual(TufFailure.Malformed, Assert.ThrowsExactly<TufException>(() => CanonicalJson.Serialize(JsonNode.Parse("""{"a": 1e3}"""))).Failure);
    }

    [TestMethod]
    public void A_document_with_a_duplicate_key_is_refused_so_no_two_readers_see_different_metadata_under_one_signature() =>
        Assert.AreEqual(TufFailure.Malformed, Assert.ThrowsExactly<TufException>(() =>
            TufEnvelope.Parse("""{"signatures": [], "signed": {"version": 1, "version": 9}}"""u8, "twice")).Failure);

    [TestMethod]
    public void A_key_id_is_sha_256_of_the_canonical_key_object_and_root_refuses_a_key_filed_under_another_id()
    {
        using var key = TufSigningKey.FromSeed(new byte[32]);
        var canonical = $$"""{"keytype":"ed25519","keyval":{"public":"{{key.Public.PublicHex}}"},"scheme":"ed25519"}""";
        Assert.AreEqual(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(canonical))), key.KeyId);
    }

    [TestMethod]
    public void A_lone_surrogate_or_invalid_utf8_anywhere_is_malformed_metadata_not_a_crash_later()
    {
        // (Found by review: the parser accepted these and the first read of the string threw InvalidOperationException.)
        foreach (var json in new[]
        {
            """{"signatures":[{"keyid":"\ud800","sig":"00"}],"signed":{}}""",
            """{"signatures":[],"signed":{"_type":"timestamp","x\udc00":1}}""",
        })
        {
            Assert.AreEqual(TufFailure.Malformed, Assert.ThrowsExactly<TufException>(() => TufEnvelope.Parse(Encoding.UTF8.GetBytes(json), "odd")).Failure, json);
        }
        byte[] invalidUtf8 = [.. "{\"signatures\":[],\"signed\":{\"a\":\""u8, 0xC3, 0x28, .. "\"}}"u8];
        Assert.AreEqual(TufFailure.Malformed, Assert.ThrowsExactly<TufException>(() => TufEnvelope.Parse(invalidUtf8, "odd")).Failure);
        Assert.ThrowsExactly<System.Text.EncoderFallbackException>(() => CanonicalJson.Serialize(JsonValue.Create("\ud800")));
    }

    [TestMethod]
    public void More_signatures_than_any_role_has_keys_are_refused_before_any_is_checked()
    {
        var many = string.Join(",", Enumerable.Repeat("""{"keyid":"a","sig":"00"}""", TufEnvelope.MaxSignatures + 1));
        Assert.AreEqual(TufFailure.Malformed, Assert.ThrowsExactly<TufException>(() =>
            TufEnvelope.Parse(Encoding.UTF8.GetBytes("{\"signatures\":[" + many + "],\"signed\":{}}"), "many")).Failure);
    }

    [TestMethod]
    public void Withdrawal_reasons_travel_signed_inside_targets_and_an_odd_one_is_malformed()
    {
        using var key = TufSigningKey.Generate();
        var targets = new TargetsMetadata(3, DateTimeOffset.UtcNow.AddDays(1), new Dictionary<string, TargetFileInfo>(),
            new Dictionary<string, string> { ["com.example.x/1.0.0.bundle"] = "leaks tokens" });
        var parsed = TargetsMetadata.Parse(TufEnvelope.Parse(targets.Sign([key]), "t").Body);
        Assert.AreEqual("leaks tokens", parsed.Withdrawn!["com.example.x/1.0.0.bundle"]);
        var odd = targets.ToJson();
        odd[TargetsMetadata.WithdrawnField] = new JsonObject { ["x"] = 5 };
        Assert.AreEqual(TufFailure.Malformed, Assert.ThrowsExactly<TufException>(() => TargetsMetadata.Parse(odd)).Failure);
    }
}
