using ClippyBot.Security;
using System.Security.Cryptography;
using ClippyBot.Api.Files;

namespace ClippyBot.Tests.Security;

/// <summary>Chunked file encryption: round trips at every boundary; flipped, dropped, swapped, truncated or extended data fails.</summary>
[TestClass]
public sealed class StreamCipherTests
{
    private const int Chunk = 1024;
    private static readonly byte[] Key = RandomNumberGenerator.GetBytes(32);
    private static readonly Guid FileId = Guid.NewGuid();

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [DataRow(0)]
    [DataRow(1)]
    [DataRow(Chunk - 1)]
    [DataRow(Chunk)]
    [DataRow(Chunk + 1)]
    [DataRow(5 * Chunk)]
    [DataRow(5 * Chunk + 17)]
    public async Task Round_trips_any_length(int length)
    {
        var plaintext = RandomNumberGenerator.GetBytes(length);
        var sealedFile = await EncryptAsync(plaintext);
        var chunks = length == 0 ? 1 : (length + Chunk - 1) / Chunk;
        Assert.AreEqual(StreamCipher.HeaderSize + chunks * StreamCipher.TagSize + length, sealedFile.Length, "one tag per chunk; an empty file is one empty final chunk");
        CollectionAssert.AreEqual(plaintext, await DecryptAsync(sealedFile));
    }

    [TestMethod]
    public async Task Any_flipped_byte_fails()
    {
        var sealedFile = await EncryptAsync(RandomNumberGenerator.GetBytes(3 * Chunk + 5));
        foreach (var position in new[] { 0, 4, 5, 12, StreamCipher.HeaderSize, StreamCipher.HeaderSize + Chunk + 3, sealedFile.Length - 1 })
        {
            var tampered = (byte[])sealedFile.Clone();
            tampered[position] ^= 0x80;
            await Assert.ThrowsAsync<CryptographicException>(() => DecryptAsync(tampered), $"byte {position}");
        }
    }

    [TestMethod]
    public async Task Dropped_swapped_repeated_or_foreign_chunks_fail()
    {
        var (header, chunks) = Split(await EncryptAsync(RandomNumberGenerator.GetBytes(3 * Chunk + 5)));
        Assert.HasCount(4, chunks);
        CollectionAssert.AreEqual(await DecryptAsync(Assemble(header, [.. chunks])), await DecryptAsync(Assemble(header, chunks[0], chunks[1], chunks[2], chunks[3])), "the helpers reassemble faithfully");

        await Assert.ThrowsAsync<CryptographicException>(() => DecryptAsync(Assemble(header, chunks[0], chunks[2], chunks[3])), "dropped");
        await Assert.ThrowsAsync<CryptographicException>(() => DecryptAsync(Assemble(header, chunks[1], chunks[0], chunks[2], chunks[3])), "swapped");
        await Assert.ThrowsAsync<CryptographicException>(() => DecryptAsync(Assemble(header, chunks[0], chunks[0], chunks[2], chunks[3])), "repeated");
        var (_, other) = Split(await EncryptAsync(RandomNumberGenerator.GetBytes(3 * Chunk + 5)));
        await Assert.ThrowsAsync<CryptographicException>(() => DecryptAsync(Assemble(header, chunks[0], other[1], chunks[2], chunks[3])), "chunk from another file");
    }

    [TestMethod]
    public async Task Truncation_at_a_chunk_boundary_or_extra_data_fails()
    {
        var sealedFile = await EncryptAsync(RandomNumberGenerator.GetBytes(3 * Chunk));
        var (header, chunks) = Split(sealedFile);
        await Assert.ThrowsAsync<CryptographicException>(() => DecryptAsync(Assemble(header, [.. chunks[..^1]])), "final chunk cut off");
        await Assert.ThrowsAsync<CryptographicException>(() => DecryptAsync([.. sealedFile, .. chunks[1]]), "data after the final chunk");
        await Assert.ThrowsAsync<CryptographicException>(() => DecryptAsync(sealedFile[..(sealedFile.Length - 3)]), "cut inside a chunk");
        await Assert.ThrowsAsync<CryptographicException>(() => DecryptAsync(sealedFile[..StreamCipher.HeaderSize]), "header only");
    }

    [TestMethod]
    public async Task Another_file_id_or_key_does_not_open_it()
    {
        var sealedFile = await EncryptAsync(RandomNumberGenerator.GetBytes(10));
        await Assert.ThrowsAsync<CryptographicException>(() => DecryptAsync(sealedFile, fileId: Guid.NewGuid()));
        await Assert.ThrowsAsync<CryptographicException>(() => DecryptAsync(sealedFile, key: RandomNumberGenerator.GetBytes(32)));
    }

    [TestMethod]
    public async Task More_than_the_allowed_bytes_stops_the_encryption()
    {
        using var source = new MemoryStream(new byte[Chunk * 3]);
        using var destination = new MemoryStream();
        await Assert.ThrowsAsync<StreamTooLargeException>(() => StreamCipher.EncryptAsync(source, destination, Key, FileId, TestContext.CancellationToken, Chunk, maxBytes: Chunk * 2));
    }

    private async Task<byte[]> EncryptAsync(byte[] plaintext)
    {
        using var source = new MemoryStream(plaintext);
        using var destination = new MemoryStream();
        await StreamCipher.EncryptAsync(source, destination, Key, FileId, TestContext.CancellationToken, Chunk);
        return destination.ToArray();
    }

    private async Task<byte[]> DecryptAsync(byte[] sealedFile, Guid? fileId = null, byte[]? key = null)
    {
        using var source = new MemoryStream(sealedFile);
        using var destination = new MemoryStream();
        await StreamCipher.DecryptAsync(source, destination, key ?? Key, fileId ?? FileId, TestContext.CancellationToken);
        return destination.ToArray();
    }

    /// <summary>The header and the chunks (each <c>Chunk + tag</c> bytes except the last).</summary>
    private static (byte[] Header, List<byte[]> Chunks) Split(byte[] sealedFile)
    {
        var chunks = new List<byte[]>();
        var body = sealedFile.AsSpan(StreamCipher.HeaderSize);
        for (var offset = 0; offset < body.Length; offset += Chunk + StreamCipher.TagSize)
        {
            chunks.Add(body.Slice(offset, Math.Min(Chunk + StreamCipher.TagSize, body.Length - offset)).ToArray());
        }
        return (sealedFile[..StreamCipher.HeaderSize], chunks);
    }

    private static byte[] Assemble(byte[] header, params byte[][] chunks) => [.. header, .. chunks.SelectMany(c => c)];
}
