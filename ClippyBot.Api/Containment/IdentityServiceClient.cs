using ClippyBot.Contracts;
using System.Net;
using System.Net.Http.Json;

using Microsoft.Extensions.Options;

namespace ClippyBot.Api.Containment;

/// <summary>Thrown when Identity cannot carry out a containment action; the caller answers 502 and audits the failure.</summary>
public sealed class IdentityUnavailableException(string message, Exception? inner = null) : ServiceClients.ServiceUnavailableException(message, inner);

/// <summary>
/// Calls Identity's internal APIs as the Api itself: a client-credentials access token (scope <c>identity.containment</c>
/// for containment, <c>identity.privacy</c> for data-subject requests), cached until shortly before it expires, and the
/// acting person named for Identity's log.
/// </summary>
public sealed class IdentityServiceClient(HttpClient http, IOptions<ServiceClients.ServiceClientOptions> options, ServiceClients.ServiceTokens tokens)
{
    public const string HttpClientName = "identity";
    public const string Scope = ApiScopes.IdentityContainment;
    public const string PrivacyScope = ApiScopes.IdentityPrivacy;
    public const string AuditScope = ApiScopes.IdentityAudit;

    /// <summary>Records a chain head in Identity (append-only there; the Api's database role cannot touch it).</summary>
    public async Task AnchorAsync(Guid chainId, long entryId, byte[] hash, CancellationToken ct) =>
        (await SendAsync(HttpMethod.Post, "/internal/audit-anchors", new { chainId, entryId, hash }, "clippybot-api", ct, AuditScope)).Dispose();

    /// <summary>Every anchor Identity holds for the chain.</summary>
    public async Task<IReadOnlyList<Audit.AuditAnchor>> AnchorsAsync(Guid chainId, CancellationToken ct)
    {
        using var response = await SendAsync(HttpMethod.Get, $"/internal/audit-anchors/{chainId}", null, "clippybot-api", ct, AuditScope);
        return await response.Content.ReadFromJsonAsync<List<Audit.AuditAnchor>>(ct) ?? [];
    }

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

    /// <summary>Every signing key of Identity stops signing now; returns the id of the key that signs from now on.</summary>
    public async Task<string> RotateSigningKeysAsync(string actor, CancellationToken ct)
    {
        using var response = await SendAsync(HttpMethod.Post, "/internal/containment/signing-keys/rotate", null, actor, ct);
        SigningKeyRotation? result = null;
        try
        {
            result = response.StatusCode == HttpStatusCode.OK ? await response.Content.ReadFromJsonAsync<SigningKeyRotation>(ct) : null;
        }
        catch (System.Text.Json.JsonException)
        {
            // Left null: answered below.
        }
        return result?.KeyId ?? throw new IdentityUnavailableException("Identity answered without the new key.");
    }

    public sealed record SigningKeyRotation(string KeyId);

    public sealed record Contact(Guid UserId, string Email);

    /// <summary>Verified addresses of these accounts (the rest have none, or are gone), for breach notifications.</summary>
    public async Task<IReadOnlyList<Contact>> ContactsAsync(IReadOnlyList<Guid> userIds, CancellationToken ct)
    {
        var contacts = new List<Contact>();
        foreach (var batch in userIds.Chunk(1000))
        {
            using var response = await SendAsync(HttpMethod.Post, "/internal/privacy/contacts", new { userIds = batch }, "clippybot-api", ct, PrivacyScope);
            contacts.AddRange(await ReadOrUnavailableAsync<List<Contact>>(response, "the addresses", ct) ?? []);
        }
        return contacts;
    }

    /// <summary>The verified addresses of every platform administrator (who security alerts go to).</summary>
    public async Task<IReadOnlyList<string>> AdministratorAddressesAsync(CancellationToken ct)
    {
        using var response = await SendAsync(HttpMethod.Get, "/internal/containment/administrators", null, "clippybot-api", ct);
        return await ReadOrUnavailableAsync<List<string>>(response, "the administrators' addresses", ct) ?? [];
    }

    /// <summary>Identity's answer as <typeparamref name="T"/>; an answer that is not one is Identity unavailable (a 502 for the caller), never a 500.</summary>
    private static async Task<T?> ReadOrUnavailableAsync<T>(HttpResponseMessage response, string what, CancellationToken ct)
    {
        try
        {
            return await response.Content.ReadFromJsonAsync<T>(ct);
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new IdentityUnavailableException($"Identity answered without {what}.", e);
        }
    }

    /// <summary>What Identity holds about the account (its documented export shape), or null when it has no such account.</summary>
    public async Task<System.Text.Json.JsonElement?> ExportPersonalDataAsync(Guid userId, CancellationToken ct)
    {
        using var response = await SendAsync(HttpMethod.Get, $"/internal/privacy/users/{userId}", null, userId.ToString(), ct, PrivacyScope);
        return response.StatusCode == HttpStatusCode.NotFound
            ? null
            : await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>(ct);
    }

    /// <summary>Deletes the account and everything Identity holds about it; false when there is no such account (already erased).</summary>
    public async Task<bool> EraseAccountAsync(Guid userId, CancellationToken ct)
    {
        using var response = await SendAsync(HttpMethod.Delete, $"/internal/privacy/users/{userId}", null, userId.ToString(), ct, PrivacyScope);
        return response.StatusCode != HttpStatusCode.NotFound;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, object? body, string actor, CancellationToken ct, string scope = Scope)
    {
        var baseAddress = options.Value.IdentityAddress;
        using var request = new HttpRequestMessage(method, new Uri(baseAddress, path));
        request.Headers.Authorization = new("Bearer", await tokens.GetAsync(scope, ct));
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
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or Polly.Timeout.TimeoutRejectedException
                                       or Polly.CircuitBreaker.BrokenCircuitException && !ct.IsCancellationRequested)
        {
            // Timeouts and an open circuit are "unreachable" too: a 502 problem, audited by the caller — never a bare 500.
            throw new IdentityUnavailableException("Identity could not be reached.", e);
        }
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            tokens.Invalidate(scope);
        }
        if (!response.IsSuccessStatusCode && response.StatusCode != HttpStatusCode.NotFound)
        {
            var status = (int)response.StatusCode;
            response.Dispose();
            throw new IdentityUnavailableException($"Identity refused the call ({status}).");
        }
        return response;
    }
}
