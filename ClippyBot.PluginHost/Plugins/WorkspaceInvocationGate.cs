using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace ClippyBot.PluginHost.Plugins;

/// <summary>
/// At most <see cref="QuarantineOptions.MaxConcurrentInvocationsPerWorkspace"/> invocations of one workspace run at once on
/// a replica: one tenant sending a burst of slow events cannot take every sandbox instance and thread from the others. An
/// invocation over the cap is refused at once (<c>workspace_busy</c>), not queued, and is not charged to the plugin.
/// </summary>
public sealed class WorkspaceInvocationGate(IOptions<QuarantineOptions> options)
{
    private readonly ConcurrentDictionary<Guid, int> _running = new();

    public bool TryEnter(Guid workspaceId)
    {
        var max = options.Value.MaxConcurrentInvocationsPerWorkspace;
        while (true)
        {
            var running = _running.GetOrAdd(workspaceId, 0);
            if (running >= max)
            {
                return false;
            }
            if (_running.TryUpdate(workspaceId, running + 1, running))
            {
                return true;
            }
        }
    }

    public void Exit(Guid workspaceId)
    {
        while (true)
        {
            var running = _running[workspaceId];
            if (running <= 1 ? _running.TryRemove(new KeyValuePair<Guid, int>(workspaceId, running)) : _running.TryUpdate(workspaceId, running - 1, running))
            {
                return;
            }
        }
    }
}
