using System.Reflection;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ClippyBot.ServiceDefaults.Http;

/// <summary>
/// 200 with a JSON body sent whole, with its Content-Length, in one write. The framework's JSON results stream the body
/// and flush, so an HTTP/1.1 answer goes out chunked with its terminating chunk in a packet of its own, and the caller
/// cannot finish reading before a second wake-up; on the per-event hot path that was a share of the latency tail.
/// For small bodies only (it is buffered whole).
/// </summary>
public sealed class BufferedJson<T>(T value) : IResult, IStatusCodeHttpResult, IValueHttpResult, IValueHttpResult<T>, IContentTypeHttpResult, IEndpointMetadataProvider
{
    public T Value => value;

    object? IValueHttpResult.Value => value;

    public int? StatusCode => StatusCodes.Status200OK;

    public string ContentType => "application/json; charset=utf-8";

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        var options = httpContext.RequestServices.GetRequiredService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;
        var body = JsonSerializer.SerializeToUtf8Bytes(value, options);
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = ContentType;
        response.ContentLength = body.Length;
        await response.Body.WriteAsync(body, httpContext.RequestAborted);
    }

#pragma warning disable CA1000 // IEndpointMetadataProvider's member is static by definition (as on the framework's own results).
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder)
#pragma warning restore CA1000
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Metadata.Add(new ProducesResponseTypeMetadata(StatusCodes.Status200OK, typeof(T), ["application/json"]));
    }
}
