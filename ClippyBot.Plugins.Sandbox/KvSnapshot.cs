using System.Text;

namespace ClippyBot.Plugins.Sandbox;

/// <summary>
/// A plugin's key-value storage in one workspace, loaded before an invocation and written back only if the invocation
/// completed — so a trap or limit hit never leaves half an update, and no database I/O happens inside the sandbox.
/// Keys and values together stay within the quota (the manifest's <c>quotaBytes</c>, capped by the host).
/// </summary>
public sealed class KvSnapshot(IDictionary<string, byte[]> entries, long quotaBytes)
{
    public const int MaxKeyBytes = 256;

    private readonly Dictionary<string, byte[]> _entries = new(entries, StringComparer.Ordinal);

    public long QuotaBytes { get; } = quotaBytes;

    public bool Changed { get; private set; }

    public IReadOnlyDictionary<string, byte[]> Entries => _entries;

    public long UsedBytes => _entries.Sum(e => Encoding.UTF8.GetByteCount(e.Key) + (long)e.Value.Length);

    public bool TryGet(string key, out byte[] value) => _entries.TryGetValue(key, out value!);

    public bool TrySet(string key, byte[] value)
    {
        var previous = _entries.TryGetValue(key, out var old) ? Encoding.UTF8.GetByteCount(key) + old.Length : 0;
        if (UsedBytes - previous + Encoding.UTF8.GetByteCount(key) + value.Length > QuotaBytes)
        {
            return false;
        }
        _entries[key] = value;
        Changed = true;
        return true;
    }
}
