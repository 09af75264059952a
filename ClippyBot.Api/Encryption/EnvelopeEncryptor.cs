namespace ClippyBot.Api.Encryption;

/// <summary>The one way the Api encrypts a value for storage: current data key, context-bound associated data.</summary>
public sealed class EnvelopeEncryptor(KeyRing keys)
{
    /// <summary>Seals under the current data key, or under <paramref name="keyId"/> when given (the rotation job's target).</summary>
    public async Task<byte[]> EncryptAsync(ReadOnlyMemory<byte> plaintext, EnvelopeContext context, CancellationToken ct, Guid? keyId = null)
    {
        var (id, key) = keyId is { } wanted ? (wanted, await keys.GetAsync(wanted, ct)) : await keys.CurrentAsync(ct);
        return Envelope.Seal(id, key, plaintext.Span, context.ToAssociatedData());
    }

    public async Task<byte[]> DecryptAsync(byte[] envelope, EnvelopeContext context, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        var key = await keys.GetAsync(Envelope.KeyIdOf(envelope), ct);
        return Envelope.Open(key, envelope, context.ToAssociatedData());
    }

    public Task<byte[]> EncryptStringAsync(string plaintext, EnvelopeContext context, CancellationToken ct, Guid? keyId = null) =>
        EncryptAsync(System.Text.Encoding.UTF8.GetBytes(plaintext), context, ct, keyId);

    public async Task<string> DecryptStringAsync(byte[] envelope, EnvelopeContext context, CancellationToken ct) =>
        System.Text.Encoding.UTF8.GetString(await DecryptAsync(envelope, context, ct));
}
