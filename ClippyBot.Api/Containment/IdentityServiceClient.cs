using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;

namespace ClippyBot.Api.Containment;

/// <summary>The Api's own client registration at Identity (client credentials), section <c>ServiceClient</c>.</summary>
public sealed class ServiceClientOptions
{
    public const string SectionName = "ServiceClient";

    public string ClientId { get; set; } = "clippybot-api-service";

    public string ClientSecret { get; set; } = "";

    /// <summary>Identity's base address; service discovery picks https when Identity offers it.</summary>
    public Uri IdentityAddress { get; set; } = new("https+http://identity");
}

/// <summary>Thrown when Identity cannot carry out a containment action; the caller answers 502 and audits the failure.</summary>
public sealed class IdentityUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Calls Identity's internal containment API as the Api itself: a client-credentials access token (scope
/// <c>identity.containment</c>), cached until shortly before it expires, and the acting administrator named for Identity's log.
/// </summary>
public sealed class IdentityServiceClient(HttpClient http, IOptions<ServiceClientOptions> options, ServiceTokenCache tokens)
{
    public const string HttpClientName = "identity";
    public const string Scope = "identity.containment";

    /// <summary>False when Identity has no such account.</summary>
    public async Task<bool> LockAsync(Guid userId, string actor, CancellationToken ct) =>
        await SendAsync(HttpMethod.Post, $"/internal/containment/users/{userId}/lock", null, actor, ct) is { StatusCode: not HttpStatusCode.NotFound };

    public async Task<bool> UnlockAsync(Guid userId, string actor, CancellationToken ct) =>
        await SendAsync(HttpMethod.Post, $"/internal/containment/users/{userId}/unlock", null, actor, ct) is { StatusCode: not HttpStatusCode.NotFound };

    public async Task<RevokeSessionsResult> RevokeSessionsAsync(IReadOnlyList<Guid> userIds, string actor, CancellationToken ct)
    {
        var revoked = 0;
        var unknown = new List<Guid>();
        // Identity takes up to 1,000 accounts per call.
        foreach (var batch in userIds.Chunk(1000))
        {
            using var response = await SendAsync(HttpMethod.Post, "/internal/containment/users/revoke-sessions", new { userIds = batch }, actor, ct);
            var result = await response.Content.ReadFromJsonAsync<RevokeSessionsResult>(ct)
                         ?? throw new IdentityUnavailableException("Identity answered without a result.");
            revoked += result.Revoked;
            unknown.AddRange(result.Unknown);
        }
        return new RevokeSessionsResult(revoked, unknown);
    }

    public sealed record RevokeSessionsResult(int Revoked, IReadOnlyList<Guid> Unknown);

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, object? body, string actor, CancellationToken ct)
    {
        var baseAddress = options.Value.IdentityAddress;
        using var request = new HttpRequestMessage(method, new Uri(baseAddress, path));
        request.Headers.Authorization = new("Bearer", await tokens.GetAsync(() => RequestTokenAsync(baseAddress, ct)));
        request.Headers.Add("X-ClippyBot-Actor", actor);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, ct);
        }
        catch (HttpRequestException e)
        {
            throw new IdentityUnavailableException("Identity could not be reached.", e);
        }
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            tokens.Clear();
        }
        if (!response.IsSuccessStatusCode && response.StatusCode != HttpStatusCode.NotFound)
        {
            var status = (int)response.StatusCode;
            response.Dispose();
            throw new IdentityUnavailableException($"Identity refused the containment call ({status}).");
        }
        return response;
    }

    private async Task<ServiceTokenCache.Token> RequestTokenAsync(Uri baseAddress, CancellationToken ct)
    {
        var settings = options.Value;
        using var form = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = settings.ClientId,
            ["client_secret"] = settings.ClientSecret,
            ["scope"] = Scope,
        });
        try
        {
            using var response = await http.PostAsync(new Uri(baseAddress, "/connect/token"), form, ct);
            if (!response.IsSuccessStatusCode)
            {
                // The body may name the client; never the secret. The status is enough to act on.
                throw new IdentityUnavailableException($"Identity refused the Api's client credentials ({(int)response.StatusCode}); check ServiceClient settings.");
            }
            var token = await response.Content.ReadFromJsonAsync<TokenResponse>(ct)
                        ?? throw new IdentityUnavailableException("Identity's token response was empty.");
            return new ServiceTokenCache.Token(token.AccessToken, TimeSpan.FromSeconds(token.ExpiresIn));
        }
        catch (HttpRequestException e)
        {
            throw new IdentityUnavailableException("Identity could not be reached for a service token.", e);
        }
    }

    private sealed record TokenResponse(
        [property: JsonPropertyName("access_token")] string AccessToken,
        [property: JsonPropertyName("expires_in")] int ExpiresIn);
}

/// <summary>One service token for the process, renewed a minute before it expires; concurrent callers share one request.</summary>
public sealed class ServiceTokenCache(TimeProvider time) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private (string Value, DateTimeOffset RenewAt)? _current;

    public sealed record Token(string Value, TimeSpan Lifetime);

    public async Task<string> GetAsync(Func<Task<Token>> request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (_current is { } cached && time.GetUtcNow() < cached.RenewAt)
        {
            return cached.Value;
        }
        await _gate.WaitAsync();
        try
        {
            if (_current is { } again && time.GetUtcNow() < again.RenewAt)
            {
                return again.Value;
            }
            var token = await request();
            _current = (token.Value, time.GetUtcNow() + token.Lifetime - TimeSpan.FromMinutes(1));
            return token.Value;
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Clear() => _current = null;

    public void Dispose() => _gate.Dispose();
}
