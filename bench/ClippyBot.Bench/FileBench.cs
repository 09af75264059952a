using ClippyBot.Security;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using ClippyBot.Api.Files;

namespace ClippyBot.Bench;

/// <summary>
/// Streaming file encryption (the Api's StreamCipher, 64 KiB chunks) against raw AesGcm over the same chunks, single thread,
/// in memory (no disk, so the figure is the cipher's). Also reports bytes allocated while encrypting, to show that memory
/// stays flat however large the file.
/// </summary>
internal static class FileBench
{
    public static async Task<int> RunAsync(int mebibytes)
    {
        var total = (long)mebibytes * 1024 * 1024;
        var key = RandomNumberGenerator.GetBytes(32);
        var fileId = Guid.NewGuid();
        var block = RandomNumberGenerator.GetBytes(StreamCipher.DefaultChunkSize);

        // Warm-up (JIT, AES-NI paths).
        await StreamCipher.EncryptAsync(new RepeatingStream(block, 8L << 20), Stream.Null, key, fileId, CancellationToken.None);

        var raw = RawAesGcm(block, key, total);

        GC.Collect();
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var stopwatch = Stopwatch.StartNew();
        await StreamCipher.EncryptAsync(new RepeatingStream(block, total), Stream.Null, key, fileId, CancellationToken.None);
        var encrypt = total / stopwatch.Elapsed.TotalSeconds;
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;

        // Decryption reads a ciphertext made once in memory (256 MiB at most, so memory use stays sane).
        var sample = Math.Min(total, 256L << 20);
        using var ciphertext = new MemoryStream();
        await StreamCipher.EncryptAsync(new RepeatingStream(block, sample), ciphertext, key, fileId, CancellationToken.None);
        ciphertext.Position = 0;
        stopwatch.Restart();
        await StreamCipher.DecryptAsync(ciphertext, Stream.Null, key, fileId, CancellationToken.None);
        var decrypt = sample / stopwatch.Elapsed.TotalSeconds;

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT raw_aesgcm_MiBps={raw / 1048576:0} encrypt_MiBps={encrypt / 1048576:0} ({encrypt / raw:P0}) decrypt_MiBps={decrypt / 1048576:0} ({decrypt / raw:P0}) size_MiB={mebibytes} allocated_while_encrypting_KiB={allocated / 1024}"));
        return 0;
    }

    private static double RawAesGcm(byte[] block, byte[] key, long total)
    {
        using var aes = new AesGcm(key, 16);
        var output = new byte[block.Length];
        var tag = new byte[16];
        var nonce = new byte[12];
        var stopwatch = Stopwatch.StartNew();
        for (long done = 0; done < total; done += block.Length)
        {
            nonce[11]++;
            aes.Encrypt(nonce, block, output, tag);
        }
        return total / stopwatch.Elapsed.TotalSeconds;
    }

    /// <summary>An endless file made of one block, cut at <paramref name="length"/> bytes.</summary>
    private sealed class RepeatingStream(byte[] block, long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = (int)Math.Min(buffer.Length, length - _position);
            var written = 0;
            while (written < n)
            {
                var from = (int)((_position + written) % block.Length);
                var piece = Math.Min(n - written, block.Length - from);
                block.AsSpan(from, piece).CopyTo(buffer[written..]);
                written += piece;
            }
            _position += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(Read(buffer.Span));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
