using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace ClippyBot.PluginHost.Sandbox;

/// <summary>
/// <c>http:fetch</c> for plugins: https only, to the hosts the manifest names, no redirects, bounded time and response
/// size, and — checked on the resolved addresses at connect time, so DNS tricks do not help — never a loopback, private,
/// link-local, unique-local, CGNAT, multicast or unspecified address unless <c>Sandbox:HttpPrivateNetworkAllowList</c>
/// names it (tests use this; production leaves it empty).
/// </summary>
public sealed class PluginHttp(IHttpClientFactory clients, Microsoft.Extensions.Options.IOptions<SandboxOptions> options)
{
    public const string HttpClientName = "plugin-http";

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
        if (!allowedHosts.Contains(url.IdnHost, StringComparer.OrdinalIgnoreCase))
        {
            return Error("host_not_allowed");
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
            using var client = clients.CreateClient(HttpClientName);
            using var response = client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancel.Token).GetAwaiter().GetResult();
            var body = ReadBounded(response.Content.ReadAsStream(cancel.Token), options.Value.HttpMaxResponseBytes);
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
        catch (Exception e) when (e is HttpRequestException or IOException or Polly.CircuitBreaker.BrokenCircuitException or TimeoutException)
        {
            return Error("unreachable");
        }
    }

    private static byte[]? ReadBounded(Stream stream, int max)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = stream.Read(chunk)) > 0)
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
            RemoteCertificateValidationCallback = (_, certificate, _, errors) => ClippyBot.ServiceDefaults.Edge.PrivateCertificateAuthority.IsTrusted(developmentCa, certificate, errors),
        },
        AllowAutoRedirect = false,
        UseCookies = false,
        UseProxy = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        ConnectCallback = async (context, ct) =>
        {
            var addresses = await Dns.GetHostAddressesAsync(context.DnsEndPoint.Host, ct);
            var allowed = addresses.Where(a => !IsForbidden(a) || allowedPrivate.Any(n => n.Contains(a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a))).ToList();
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

    public static bool IsForbidden(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var a = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        if (IPAddress.IsLoopback(a) || a.Equals(IPAddress.Any) || a.Equals(IPAddress.IPv6Any) || a.Equals(IPAddress.Broadcast))
        {
            return true;
        }
        if (a.AddressFamily == AddressFamily.InterNetworkV6)
        {
            return a.IsIPv6LinkLocal || a.IsIPv6SiteLocal || a.IsIPv6Multicast || a.IsIPv6UniqueLocal;
        }
        var b = a.GetAddressBytes();
        return b[0] == 10 || b[0] == 0 || b[0] >= 224                       // private, "this network", multicast/reserved
               || (b[0] == 172 && b[1] >= 16 && b[1] <= 31) || (b[0] == 192 && b[1] == 168)
               || (b[0] == 169 && b[1] == 254)                               // link-local (cloud metadata lives here)
               || (b[0] == 100 && b[1] >= 64 && b[1] <= 127);                // CGNAT
    }
}

/// <summary>The host resolved only to addresses plugins may not reach.</summary>
public sealed class PrivateAddressException(string host) : IOException($"{host} resolves only to private or local addresses.");
