using ClippyBot.Contracts;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.Api.ServiceClients;
using Microsoft.Extensions.Options;

namespace ClippyBot.Api.Plugins;

/// <summary>
/// The Api's client of the PluginHost's internal API, with a client-credentials token (scope <c>pluginhost</c>) and the
/// standard resilience handler (timeouts, retries, circuit breaker). An outage surfaces as
/// <see cref="ServiceUnavailableException"/> — the caller answers 503, never hangs.
/// </summary>
public sealed class PluginHostClient(HttpClient http, ServiceTokens tokens, IOptions<ServiceClientOptions> options)
{
    public const string HttpClientName = "pluginhost";
    public const string Scope = ApiScopes.PluginHost;

    /// <param name="PermissionRequests">Every permission with its parameters (hosts, providers, secret names, kv quota): what consent covers.</param>
    /// <param name="ReviewedAt">When the community registry approved this version.</param>
    public sealed record CatalogEntry(string Id, string Version, string Signer, IReadOnlyList<string> Permissions, IReadOnlyList<string>? OAuthProviders,
        IReadOnlyList<string>? SecretNames, IReadOnlyList<PermissionRequest>? PermissionRequests, DateTimeOffset? ReviewedAt = null);

    /// <param name="Version">The plugin version that ran.</param>
    public sealed record InvocationResponse(string Outcome, string Kind, JsonElement? Output, IReadOnlyList<string> Messages, long FuelUsed, double DurationMs, string? Version);

    /// <summary>A PluginHost answer that is not a success: its status and problem document, passed on to the caller.</summary>
    public sealed class PluginHostProblemException(HttpStatusCode status, JsonElement problem) : Exception($"PluginHost answered {(int)status}.")
    {
        public HttpStatusCode Status { get; } = status;

        public JsonElement Problem { get; } = problem;
    }

    public async Task<IReadOnlyList<CatalogEntry>> CatalogAsync(CancellationToken ct) =>
        await ReadAsync<List<CatalogEntry>>(await SendAsync(HttpMethod.Get, "/internal/plugins", null, ct), ct);

    /// <summary>A version the registry withdrew, with its reason (PluginHost's <c>/internal/plugins/withdrawals</c>).</summary>
    public sealed record Withdrawal(string PluginId, string Version, string Reason, DateTimeOffset At);

    public async Task<IReadOnlyList<Withdrawal>> WithdrawalsAsync(CancellationToken ct) =>
        await ReadAsync<List<Withdrawal>>(await SendAsync(HttpMethod.Get, "/internal/plugins/withdrawals", null, ct), ct);

    /// <summary>A quarantine (PluginHost's <c>/internal/quarantines</c>: the last two hours, newest first).</summary>
    public sealed record Quarantine(Guid Id, string PluginId, string Version, Guid? WorkspaceId, string Reason, string SetBy, DateTimeOffset At);

    public async Task<IReadOnlyList<Quarantine>> RecentQuarantinesAsync(CancellationToken ct) =>
        await ReadAsync<List<Quarantine>>(await SendAsync(HttpMethod.Get, "/internal/quarantines", null, ct), ct);

    public async Task<CatalogEntry> InstallAsync(Stream bundle, CancellationToken ct) =>
        await ReadAsync<CatalogEntry>(await SendAsync(HttpMethod.Post, "/internal/plugins", new StreamContent(bundle), ct), ct);

    /// <param name="oauthTokens">Decrypted only for this call, sent over the internal TLS connection, never stored by the PluginHost.</param>
    /// <param name="secrets">Workspace secrets the plugin was granted, by name; handled like <paramref name="oauthTokens"/>.</param>
    /// <param name="version">The consented version: the PluginHost runs exactly it, under its own manifest.</param>
    public async Task<InvocationResponse> InvokeAsync(string pluginId, string version, Guid workspaceId, string @event, JsonElement input, IReadOnlyList<string> grants,
        IReadOnlyDictionary<string, string> oauthTokens, IReadOnlyDictionary<string, string> secrets, CancellationToken ct) =>
        await ReadAsync<InvocationResponse>(await SendAsync(HttpMethod.Post, $"/internal/plugins/{Known(pluginId)}/invoke",
            JsonContent.Create(new { workspaceId, @event, input, grants, oauthTokens, secrets, version }), ct), ct);

    public async Task<JsonElement> CrashesAsync(string pluginId, CancellationToken ct) =>
        await ReadAsync<JsonElement>(await SendAsync(HttpMethod.Get, $"/internal/plugins/{Known(pluginId)}/crashes", null, ct), ct);

    public async Task SetQuarantineAsync(string pluginId, bool quarantine, string version, Guid? workspaceId, string reason, string by, CancellationToken ct) =>
        (await SendAsync(HttpMethod.Post, $"/internal/plugins/{Known(pluginId)}/{(quarantine ? "quarantine" : "release")}",
            JsonContent.Create(new { version, workspaceId, reason, by }), ct)).Dispose();

    /// <summary>How many quarantines set by operators or rules were released (the registry's withdrawals stay).</summary>
    public async Task<int> ReleaseAllQuarantinesAsync(string by, CancellationToken ct) =>
        await ReadAsync<int>(await SendAsync(HttpMethod.Post, "/internal/quarantines/release", JsonContent.Create(new { by }), ct), ct);

    /// <summary>
    /// An id no plugin can have ("..", 9,000 characters…) is "no such plugin" here, without a round trip: sent on, it would
    /// be normalised into another path or refused by the PluginHost's server before its code runs.
    /// </summary>
    private static string Known(string pluginId) =>
        ClippyBot.Contracts.PluginIds.IsValid(pluginId) ? pluginId : throw new PluginHostProblemException(HttpStatusCode.NotFound, default);

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, HttpContent? content, CancellationToken ct)
    {
        if (content is not null)
        {
            // Sent with its Content-Length in one piece, not chunked with the final chunk in a packet of its own.
            await content.LoadIntoBufferAsync(ct);
        }
        using var request = new HttpRequestMessage(method, new Uri(options.Value.PluginHostAddress, path)) { Content = content };
        request.Headers.Authorization = new("Bearer", await tokens.GetAsync(Scope, ct));
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, ct);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or Polly.CircuitBreaker.BrokenCircuitException or TimeoutException && !ct.IsCancellationRequested)
        {
            throw new PluginHostUnavailableException("The plugin host could not be reached.", e);
        }
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            tokens.Invalidate(Scope);
        }
        if (response.IsSuccessStatusCode)
        {
            return response;
        }
        using (response)
        {
            if ((int)response.StatusCode >= 500 || response.StatusCode == HttpStatusCode.Unauthorized)
            {
                throw new PluginHostUnavailableException($"The plugin host answered {(int)response.StatusCode}.");
            }
            throw new PluginHostProblemException(response.StatusCode, await ProblemOfAsync(response, ct));
        }
    }

    /// <summary>The refusal's problem document, or nothing: an empty, HTML or cut body (Kestrel's own 414) is not an error of ours.</summary>
    private static async Task<JsonElement> ProblemOfAsync(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            return response.Content.Headers.ContentLength is 0 ? default : await response.Content.ReadFromJsonAsync<JsonElement>(ct);
        }
        catch (Exception e) when (e is JsonException or NotSupportedException)
        {
            return default;
        }
    }

    private static async Task<T> ReadAsync<T>(HttpResponseMessage response, CancellationToken ct)
    {
        using (response)
        {
            return await response.Content.ReadFromJsonAsync<T>(ct) ?? throw new PluginHostUnavailableException("The plugin host sent an empty answer.");
        }
    }
}

/// <summary>
/// The catalog as this replica last read it, for at most <see cref="MaxAge"/>: event delivery compares each workspace's
/// consent with the current version without a PluginHost round trip per event. Publishing through this replica clears it;
/// other replicas see a new version within <see cref="MaxAge"/>.
/// </summary>
public sealed class PluginCatalogCache(TimeProvider time)
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(2);
    private volatile Snapshot? _snapshot;

    private sealed record Snapshot(IReadOnlyList<PluginHostClient.CatalogEntry> Entries, DateTimeOffset ReadAt);

    public async Task<IReadOnlyList<PluginHostClient.CatalogEntry>> GetAsync(PluginHostClient host, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (_snapshot is { } s && time.GetUtcNow() - s.ReadAt < MaxAge)
        {
            return s.Entries;
        }
        var readAt = time.GetUtcNow();
        var entries = await host.CatalogAsync(ct);
        _snapshot = new Snapshot(entries, readAt);
        return entries;
    }

    public void Invalidate() => _snapshot = null;
}

/// <summary>The PluginHost could not be reached or failed (answered 5xx); answered as 503 pluginhost-unavailable.</summary>
public sealed class PluginHostUnavailableException(string message, Exception? inner = null) : ServiceUnavailableException(message, inner);
