using System.Collections.Concurrent;

namespace ClippyBot.Tuf;

/// <summary>
/// Trusted metadata held in memory: for tools and benchmarks that refresh within one process. A client that restarts must
/// persist (the PluginHost keeps its store in pluginsdb): rollback protection is only as long as this memory.
/// </summary>
public sealed class InMemoryTrustStore : ITufTrustStore
{
    public ConcurrentDictionary<string, byte[]> Roles { get; } = new(StringComparer.Ordinal);

    public Task<byte[]?> LoadAsync(string role, CancellationToken ct) => Task.FromResult(Roles.GetValueOrDefault(role));

    public Task SaveAsync(string role, byte[] metadata, CancellationToken ct)
    {
        Roles[role] = metadata;
        return Task.CompletedTask;
    }

    public Task DeleteAsync(string role, CancellationToken ct)
    {
        Roles.TryRemove(role, out _);
        return Task.CompletedTask;
    }
}
