using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;

namespace ClippyBot.Security;

/// <summary>
/// Streaming AES-256-GCM for large data — stored files and backup archives (docs/encryption.md, "Files"). Layout:
/// <c>header = "CBF1" | version(1) | nonce prefix(7) | chunk size(4, BE)</c>, then chunks of <c>ciphertext | tag(16)</c>.
/// Chunk <c>i</c> is sealed with nonce <c>prefix | i (4, BE) | last(1)</c> and associated data <c>header | stream id</c>: a flipped
/// byte, a dropped, repeated, reordered or swapped-in chunk (even from another file) and a missing final chunk all fail.
/// Every file ends with a chunk flagged last (possibly empty), so truncation at a chunk boundary is caught too.
/// Memory use is two chunk buffers, whatever the file size.
/// </summary>
public static class StreamCipher
{
    public const int DefaultChunkSize = 64 * 1024;
    public const int HeaderSize = 4 + 1 + 7 + 4;
    public const int TagSize = 16;
    private const byte Version = 1;
    private static readonly byte[] Magic = "CBF1"u8.ToArray();

    /// <summary>Encrypts <paramref name="source"/> into <paramref name="destination"/>; returns the plaintext length.</summary>
    public static async Task<long> EncryptAsync(Stream source, Stream destination, byte[] key, Guid streamId, CancellationToken ct,
        int chunkSize = DefaultChunkSize, long maxBytes = long.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        var header = new byte[HeaderSize];
        Magic.CopyTo(header, 0);
        header[4] = Version;
        RandomNumberGenerator.Fill(header.AsSpan(5, 7));
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(12, 4), chunkSize);
        await destination.WriteAsync(header, ct);
        var aad = AssociatedData(header, streamId);

        var current = ArrayPool<byte>.Shared.Rent(chunkSize);
        var next = ArrayPool<byte>.Shared.Rent(chunkSize);
        var output = ArrayPool<byte>.Shared.Rent(chunkSize + TagSize);
        try
        {
            using var aes = new AesGcm(key, TagSize);
            long total = 0;
            uint index = 0;
            var currentLength = await FillAsync(source, current, chunkSize, ct);
            while (true)
            {
                // Read ahead one chunk: the chunk before end-of-stream is the one flagged last.
                var nextLength = currentLength == chunkSize ? await FillAsync(source, next, chunkSize, ct) : 0;
                var last = nextLength == 0;
                total += currentLength;
                if (total > maxBytes)
                {
                    throw new StreamTooLargeException(maxBytes);
                }
                Seal(aes, header, index, last, current.AsSpan(0, currentLength), output.AsSpan(0, currentLength + TagSize), aad);
                await destination.WriteAsync(output.AsMemory(0, currentLength + TagSize), ct);
                if (last)
                {
                    return total;
                }
                (current, next) = (next, current);
                currentLength = nextLength;
                index = checked(index + 1);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(current, clearArray: true);
            ArrayPool<byte>.Shared.Return(next, clearArray: true);
            ArrayPool<byte>.Shared.Return(output);
        }
    }

    /// <summary>
    /// Decrypts chunk by chunk; each chunk is authenticated before any of its plaintext is written. Throws
    /// <see cref="CryptographicException"/> on any tampering, truncation or trailing data.
    /// </summary>
    public static async Task DecryptAsync(Stream source, Stream destination, byte[] key, Guid streamId, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        var header = new byte[HeaderSize];
        if (await FillAsync(source, header, HeaderSize, ct) != HeaderSize || !header.AsSpan(0, 4).SequenceEqual(Magic) || header[4] != Version)
        {
            throw new CryptographicException("Not an encrypted ClippyBot file (bad header).");
        }
        var chunkSize = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(12, 4));
        if (chunkSize is < 1024 or > 16 * 1024 * 1024)
        {
            throw new CryptographicException("Not an encrypted ClippyBot file (bad chunk size).");
        }
        var aad = AssociatedData(header, streamId);
        var current = ArrayPool<byte>.Shared.Rent(chunkSize + TagSize);
        var next = ArrayPool<byte>.Shared.Rent(chunkSize + TagSize);
        var plain = ArrayPool<byte>.Shared.Rent(chunkSize);
        try
        {
            using var aes = new AesGcm(key, TagSize);
            uint index = 0;
            var currentLength = await FillAsync(source, current, chunkSize + TagSize, ct);
            while (true)
            {
                if (currentLength < TagSize)
                {
                    throw new CryptographicException("The file is truncated.");
                }
                var nextLength = currentLength == chunkSize + TagSize ? await FillAsync(source, next, chunkSize + TagSize, ct) : 0;
                var last = nextLength == 0;
                var length = currentLength - TagSize;
                // A chunk that is not flagged last where the stream ends (truncation) fails here, as does a last-flagged chunk
                // followed by more data (the flag does not match).
                Open(aes, header, index, last, current.AsSpan(0, currentLength), plain.AsSpan(0, length), aad);
                await destination.WriteAsync(plain.AsMemory(0, length), ct);
                if (last)
                {
                    return;
                }
                (current, next) = (next, current);
                currentLength = nextLength;
                index = checked(index + 1);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(current);
            ArrayPool<byte>.Shared.Return(next);
            ArrayPool<byte>.Shared.Return(plain, clearArray: true);
        }
    }

    private static void Seal(AesGcm aes, byte[] header, uint index, bool last, ReadOnlySpan<byte> plaintext, Span<byte> output, byte[] aad)
    {
        Span<byte> nonce = stackalloc byte[12];
        Nonce(header, index, last, nonce);
        aes.Encrypt(nonce, plaintext, output[..plaintext.Length], output[plaintext.Length..], aad);
    }

    private static void Open(AesGcm aes, byte[] header, uint index, bool last, ReadOnlySpan<byte> chunk, Span<byte> plaintext, byte[] aad)
    {
        Span<byte> nonce = stackalloc byte[12];
        Nonce(header, index, last, nonce);
        aes.Decrypt(nonce, chunk[..^TagSize], chunk[^TagSize..], plaintext, aad);
    }

    private static void Nonce(byte[] header, uint index, bool last, Span<byte> nonce)
    {
        header.AsSpan(5, 7).CopyTo(nonce);
        BinaryPrimitives.WriteUInt32BigEndian(nonce.Slice(7, 4), index);
        nonce[11] = last ? (byte)1 : (byte)0;
    }

    private static byte[] AssociatedData(byte[] header, Guid streamId) => [.. header, .. streamId.ToByteArray()];

    /// <summary>Reads until <paramref name="count"/> bytes or end of stream.</summary>
    private static async Task<int> FillAsync(Stream source, byte[] buffer, int count, CancellationToken ct)
    {
        var read = 0;
        while (read < count)
        {
            var n = await source.ReadAsync(buffer.AsMemory(read, count - read), ct);
            if (n == 0)
            {
                break;
            }
            read += n;
        }
        return read;
    }
}

/// <summary>The plaintext passed the allowed size while streaming.</summary>
public sealed class StreamTooLargeException(long maxBytes) : Exception($"The data is larger than {maxBytes} bytes.")
{
    public long MaxBytes { get; } = maxBytes;
}
