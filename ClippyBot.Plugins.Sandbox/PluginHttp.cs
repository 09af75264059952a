using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace ClippyBot.Plugins.Sandbox;

/// <summary>
/// <c>http:fetch</c> for plugins: https only, to the hosts the manifest names on port 443 (or a port the manifest names
/// as <c>host:port</c>), no redirects, bounded time and response size, and — checked on the resolved addresses at
/// connect time, so DNS tricks do not help — only globally routable unicast addresses (<see cref="GlobalAddress"/>)
/// unless <c>Sandbox:HttpPrivateNetworkAllowList</c> names one (tests use this; production leaves it empty).
/// The client is the plugins' own: not the services' defaults, so no service discovery (a manifest host <c>identity</c>
/// is looked up in DNS, never mapped to an internal service) and no shared retry or circuit-breaker state that one
/// tenant's failing requests could trip for every other tenant.
/// </summary>
public sealed class PluginHttp(HttpClient client, Microsoft.Extensions.Options.IOptions<SandboxOptions> options)
{
    /// <summary>
    /// A client that checks every request as usual (https, allowed hosts and ports) but sends none: the registry's review
    /// runs submitted code, which must not make the registry reach anything. A request that passes the checks gets the
    /// same error answer as an unreachable host.
    /// </summary>
    public static PluginHttp Offline(Microsoft.Extensions.Options.IOptions<SandboxOptions> options) => new(new HttpClient(new NoNetwork()), options);

    private sealed class NoNetwork : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromException<HttpResponseMessage>(new HttpRequestException("The review sandbox has no network."));
    }

    public sealed record FetchRequest(string? Method, string? Url, Dictionary<string, string>? Headers, string? Body);

    /// <summary>Performs the request; the answer is always a JSON document (status/headers/body, or an error code).</summary>
    public byte[] Fetch(ReadOnlySpan<byte> requestJson, IReadOnlyCollection<string> allowedHosts, TimeSpan timeLeft)
    {
        FetchRequest? request;
        try
        {
            request = JsonSerializer.Deserialize<FetchRequest>(requestJson, JsonSerializerOptions.Web);
        }
        catch (JsonException)
        {
            return Error("bad_request");
        }
        if (request?.Url is null || !Uri.TryCreate(request.Url, UriKind.Absolute, out var url))
        {
            return Error("bad_request");
        }
        if (url.Scheme != Uri.UriSchemeHttps)
        {
            return Error("https_only");
        }
        if (!allowedHosts.Any(h => h.Equals(url.IdnHost, StringComparison.OrdinalIgnoreCase) || h.StartsWith(url.IdnHost + ":", StringComparison.OrdinalIgnoreCase)))
        {
            return Error("host_not_allowed");
        }
        if (!IsAllowedPort(url, allowedHosts))
        {
            return Error("port_not_allowed");
        }
        var method = (request.Method ?? "GET").ToUpperInvariant();
        if (method is not ("GET" or "POST" or "PUT" or "DELETE" or "PATCH"))
        {
            return Error("bad_method");
        }
        using var message = new HttpRequestMessage(new HttpMethod(method), url);
        foreach (var (name, value) in request.Headers ?? [])
        {
            // Hop-by-hop and host-controlled headers stay the host's.
            if (name.Equals("Host", StringComparison.OrdinalIgnoreCase) || name.StartsWith("Proxy-", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }
            message.Headers.TryAddWithoutValidation(name, value);
        }
        if (request.Body is not null)
        {
            message.Content = new StringContent(request.Body, Encoding.UTF8, "application/json");
        }
        var budget = TimeSpan.FromMilliseconds(Math.Min(timeLeft.TotalMilliseconds, options.Value.HttpTimeout.TotalMilliseconds));
        if (budget <= TimeSpan.Zero)
        {
            return Error("timeout");
        }
        using var cancel = new CancellationTokenSource(budget);
        try
        {
            // The wasm call is synchronous; the request runs on the pool and this thread waits, bounded by the budget.
            using var response = client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancel.Token).GetAwaiter().GetResult();
            // The body under the same deadline as the headers: a server that trickles a byte every few seconds must not pin
            // the invocation, its thread and its pooled instance.
            var body = ReadBoundedAsync(response.Content, options.Value.HttpMaxResponseBytes, cancel.Token).GetAwaiter().GetResult();
            if (body is null)
            {
                return Error("response_too_large");
            }
            return JsonSerializer.SerializeToUtf8Bytes(new
            {
                status = (int)response.StatusCode,
                contentType = response.Content.Headers.ContentType?.ToString(),
                body = Encoding.UTF8.GetString(body),
            });
        }
        catch (OperationCanceledException)
        {
            return Error("timeout");
        }
        catch (HttpRequestException e) when (e.InnerException is PrivateAddressException)
        {
            return Error("private_address");
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TimeoutException)
        {
            return Error("unreachable");
        }
    }

    /// <summary>443, or the port a manifest entry <c>host:port</c> names for this host.</summary>
    private static bool IsAllowedPort(Uri url, IReadOnlyCollection<string> allowedHosts) =>
        (url.Port == 443 && allowedHosts.Contains(url.IdnHost, StringComparer.OrdinalIgnoreCase))
        || allowedHosts.Contains(url.IdnHost + ":" + url.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparer.OrdinalIgnoreCase);

    private static async Task<byte[]?> ReadBoundedAsync(HttpContent content, int max, CancellationToken ct)
    {
        await using var stream = await content.ReadAsStreamAsync(ct);
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await stream.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > max)
            {
                return null;
            }
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    private static byte[] Error(string code) => JsonSerializer.SerializeToUtf8Bytes(new { error = code });

    /// <summary>The connection step of the plugin HttpClient: resolve, drop forbidden addresses, connect to an allowed one.</summary>
    public static SocketsHttpHandler CreateHandler(IReadOnlyList<IPNetwork> allowedPrivate, System.Security.Cryptography.X509Certificates.X509Certificate2? developmentCa) => new()
    {
        // The system's trust, plus the local development CA when the AppHost provides one (same rule as every other client).
        SslOptions = developmentCa is null ? new() : new()
        {
            RemoteCertificateValidationCallback = (_, certificate, _, errors) => ClippyBot.Security.PrivateCaTrust.IsTrusted(developmentCa, certificate, errors),
        },
        AllowAutoRedirect = false,
        UseCookies = false,
        UseProxy = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        ConnectCallback = async (context, ct) =>
        {
            var addresses = await Dns.GetHostAddressesAsync(context.DnsEndPoint.Host, ct);
            var allowed = addresses.Where(a => GlobalAddress.IsGloballyRoutable(a) || allowedPrivate.Any(n => n.Contains(a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a))).ToList();
            if (allowed.Count == 0)
            {
                throw new PrivateAddressException(context.DnsEndPoint.Host);
            }
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(allowed[0], context.DnsEndPoint.Port, ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };
}

/// <summary>The host resolved only to addresses plugins may not reach.</summary>
public sealed class PrivateAddressException(string host) : IOException($"{host} resolves only to private or local addresses.");
