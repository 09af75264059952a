using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Problem details for a request the framework could not read or bind: <c>errors</c> names the field — the JSON path
/// where the body went wrong (<c>$.expiresAt</c>), or the route/query parameter that would not bind — with what was
/// wrong, and nothing about the server.
/// </summary>
public static class BadRequestProblem
{
    public static void Describe(ProblemDetailsContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Exception is not BadHttpRequestException bad || bad.StatusCode != StatusCodes.Status400BadRequest)
        {
            return;
        }
        var (field, message) = bad.InnerException switch
        {
            JsonException json => (string.IsNullOrEmpty(json.Path) ? "$" : json.Path, Describe(json)),
            _ => (ParameterName(bad.Message) ?? "request", bad.Message),
        };
        context.ProblemDetails.Title = "The request could not be read";
        context.ProblemDetails.Detail = $"{field}: {message}";
        context.ProblemDetails.Extensions["errors"] = new Dictionary<string, string[]> { [field] = [message] };
    }

    // System.Text.Json's messages name the .NET type the value was read into; the client needs the JSON side only.
    private static string Describe(JsonException json) =>
        json.Message.Contains("could not be converted", StringComparison.Ordinal) ? "has the wrong type or format."
        : json.Message.Contains("maximum configured depth", StringComparison.Ordinal) ? "is nested too deeply."
        : json.Message.Contains("missing required properties", StringComparison.Ordinal) ? "is missing required members."
        : "is not valid JSON here.";

    // "Failed to bind parameter \"Nullable<int> PageSize\" from \"abc\"." → "pageSize" (as the client spells it)
    private static string? ParameterName(string message)
    {
        var start = message.IndexOf('"', StringComparison.Ordinal);
        var end = start < 0 ? -1 : message.IndexOf('"', start + 1);
        if (end <= start + 1)
        {
            return null;
        }
        var name = message[(start + 1)..end].Split(' ')[^1];
        return name.Length == 0 ? null : char.ToLowerInvariant(name[0]) + name[1..];
    }
}
