using System.Text.Json.Nodes;

namespace ClippyBot.Tuf;

public sealed record TufSignature(string KeyId, byte[] Signature);

/// <summary>
/// A metadata file: <c>{"signatures": [{"keyid", "sig"}], "signed": {...}}</c>. Signatures are over the canonical JSON of
/// <c>signed</c>; a role's metadata is trusted when at least its threshold of its distinct keys signed it.
/// </summary>
public sealed record TufEnvelope(JsonObject Body, IReadOnlyList<TufSignature> Signatures)
{
    public const int MaxSignatures = 32;

    public static TufEnvelope Parse(ReadOnlySpan<byte> bytes, string what)
    {
        if (CanonicalJson.Parse(bytes, what) is not JsonObject envelope || envelope["signed"] is not JsonObject body || envelope["signatures"] is not JsonArray list)
        {
            throw new TufException(TufFailure.Malformed, $"{what} is not a signed metadata file.");
        }
        // More signatures than any role has keys is no metadata the platform writes: checking them would only cost time.
        if (list.Count > MaxSignatures)
        {
            throw new TufException(TufFailure.Malformed, $"{what} carries more than {MaxSignatures} signatures.");
        }
        var signatures = new List<TufSignature>();
        foreach (var item in list)
        {
            if (item is not JsonObject signature || TufJson.String(signature, "keyid") is not { } keyId || TufJson.String(signature, "sig") is not { } sig)
            {
                throw new TufException(TufFailure.Malformed, $"{what}: a signature lacks keyid or sig.");
            }
            byte[] bytesOfSig;
            try
            {
                bytesOfSig = Convert.FromHexString(sig);
            }
            catch (FormatException)
            {
                throw new TufException(TufFailure.Malformed, $"{what}: a signature is not hex.");
            }
            signatures.Add(new TufSignature(keyId, bytesOfSig));
        }
        return new TufEnvelope(body, signatures);
    }

    /// <summary>Signs <paramref name="signed"/> with each key; the file's bytes are canonical JSON too (what hashes bind).</summary>
    public static byte[] Sign(JsonObject body, IEnumerable<TufSigningKey> keys)
    {
        ArgumentNullException.ThrowIfNull(body);
        var payload = CanonicalJson.Serialize(body);
        var signatures = new JsonArray();
        foreach (var key in keys)
        {
            signatures.Add(new JsonObject { ["keyid"] = key.KeyId, ["sig"] = Convert.ToHexStringLower(key.Sign(payload)) });
        }
        return CanonicalJson.Serialize(new JsonObject { ["signatures"] = signatures, ["signed"] = body.DeepClone() });
    }

    /// <summary>How many distinct keys of <paramref name="role"/> (as <paramref name="root"/> defines it) signed validly.</summary>
    public int ValidSignatures(RootMetadata root, string role)
    {
        ArgumentNullException.ThrowIfNull(root);
        var roleKeys = root.Roles[role];
        var payload = CanonicalJson.Serialize(Body);
        // One signature per key id is checked (the first): a key listed twice counts once and costs once.
        return Signatures
            .Where(s => roleKeys.KeyIds.Contains(s.KeyId, StringComparer.Ordinal))
            .DistinctBy(s => s.KeyId, StringComparer.Ordinal)
            .Count(s => root.Keys[s.KeyId].Verify(payload, s.Signature));
    }

    /// <summary>Throws <see cref="TufFailure.Signature"/> unless the role's threshold of its keys signed.</summary>
    public void RequireThreshold(RootMetadata root, string role, string what)
    {
        ArgumentNullException.ThrowIfNull(root);
        var valid = ValidSignatures(root, role);
        if (valid < root.Roles[role].Threshold)
        {
            throw new TufException(TufFailure.Signature,
                $"{what} carries {valid} valid signature(s) by {role} keys of root version {root.Version}; {root.Roles[role].Threshold} needed.");
        }
    }
}
