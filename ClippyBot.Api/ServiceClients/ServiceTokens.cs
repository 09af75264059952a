using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;

namespace ClippyBot.Api.ServiceClients;

/// <summary>The Api's own client registration at Identity (client credentials), section <c>ServiceClient</c>.</summary>
public sealed class ServiceClientOptions
{
    public const string SectionName = "ServiceClient";

    public string ClientId { get; set; } = "clippybot-api-service";

    public string ClientSecret { get; set; } = "";

    /// <summary>Identity's base address; service discovery picks https when Identity offers it.</summary>
    public Uri IdentityAddress { get; set; } = new("https+http://identity");

    /// <summary>The PluginHost's base address (internal only).</summary>
    public Uri PluginHostAddress { get; set; } = new("https+http://pluginhost");
}

/// <summary>
/// The Api's client-credentials tokens, one per scope (<c>identity.containment</c>, <c>pluginhost</c>), each cached until a
/// minute before it expires; concurrent callers share one request. Tokens live in memory only.
/// </summary>
public sealed class ServiceTokens(IHttpClientFactory clients, IOptions<ServiceClientOptions> options, TimeProvider time) : IDisposable
{
    public const string HttpClientName = "identity";
    private readonly ConcurrentDictionary<string, (string Value, DateTimeOffset RenewAt)> _tokens = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _gate = new(1, 1);

    public async Task<string> GetAsync(string scope, CancellationToken ct)
    {
        if (_tokens.TryGetValue(scope, out var cached) && time.GetUtcNow() < cached.RenewAt)
        {
            return cached.Value;
        }
        await _gate.WaitAsync(ct);
        try
        {
            if (_tokens.TryGetValue(scope, out cached) && time.GetUtcNow() < cached.RenewAt)
            {
                return cached.Value;
            }
            var (value, lifetime) = await RequestAsync(scope, ct);
            _tokens[scope] = (value, time.GetUtcNow() + lifetime - TimeSpan.FromMinutes(1));
            return value;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Forgets a token the resource server refused (401), so the next call asks for a new one.</summary>
    public void Invalidate(string scope) => _tokens.TryRemove(scope, out _);

    private async Task<(string Value, TimeSpan Lifetime)> RequestAsync(string scope, CancellationToken ct)
    {
        var settings = options.Value;
        using var form = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = settings.ClientId,
            ["client_secret"] = settings.ClientSecret,
            ["scope"] = scope,
        });
        try
        {
            using var http = clients.CreateClient(HttpClientName);
            using var response = await http.PostAsync(new Uri(settings.IdentityAddress, "/connect/token"), form, ct);
            if (!response.IsSuccessStatusCode)
            {
                // The body may name the client; never the secret. The status is enough to act on.
                throw new ServiceUnavailableException($"Identity refused the Api's client credentials for {scope} ({(int)response.StatusCode}); check ServiceClient settings.");
            }
            var token = await response.Content.ReadFromJsonAsync<TokenResponse>(ct)
                        ?? throw new ServiceUnavailableException("Identity's token response was empty.");
            return (token.AccessToken, TimeSpan.FromSeconds(token.ExpiresIn));
        }
        catch (HttpRequestException e)
        {
            throw new ServiceUnavailableException("Identity could not be reached for a service token.", e);
        }
    }

    public void Dispose() => _gate.Dispose();

    private sealed record TokenResponse(
        [property: JsonPropertyName("access_token")] string AccessToken,
        [property: JsonPropertyName("expires_in")] int ExpiresIn);
}

/// <summary>A service the Api depends on did not answer as it should; callers answer 502/503 with a problem.</summary>
public class ServiceUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
