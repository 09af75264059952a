using System.Net;

namespace ClippyBot.Tuf;

/// <summary>Metadata and targets over HTTP from <paramref name="baseAddress"/> (ending in '/'): a 404 is "not there".</summary>
public sealed class HttpTufRemote(HttpClient http, Uri baseAddress) : ITufRemote
{
    public async Task<byte[]?> FetchAsync(string name, long maxLength, CancellationToken ct)
    {
        using var response = await http.GetAsync(new Uri(baseAddress, Uri.EscapeDataString(name).Replace("%2F", "/", StringComparison.Ordinal)),
            HttpCompletionOption.ResponseHeadersRead, ct);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        response.EnsureSuccessStatusCode();
        if (response.Content.Headers.ContentLength > maxLength)
        {
            throw new TufException(TufFailure.TooLarge, $"{name} is announced as {response.Content.Headers.ContentLength} bytes; at most {maxLength} are read.");
        }
        // Never more than one byte past the limit is read, whatever the server keeps sending ("endless data").
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await body.ReadAsync(chunk, ct)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > maxLength)
            {
                throw new TufException(TufFailure.TooLarge, $"{name} is larger than {maxLength} bytes.");
            }
        }
        return buffer.ToArray();
    }
}
