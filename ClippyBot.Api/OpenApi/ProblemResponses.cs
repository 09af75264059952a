using System.Globalization;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.ModelBinding;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace ClippyBot.Api.OpenApi;

/// <summary>
/// Puts in the document the refusals the pipeline gives any endpoint, so that clients generated from it (Kiota, NSwag)
/// know every status they can meet and that each one's body is RFC 7807 problem details. What an endpoint answers on its
/// own (409, 410, 423, 502…) it declares where it is mapped, with <c>ProducesProblem</c>. The rules, from the pipeline:
/// any input can be malformed (400); a route parameter can name nothing the caller may see (404 — also what another
/// tenant's workspace looks like); a body can be too large (413) or of the wrong type (415); every request counts against
/// the rate limits (429); an endpoint that is not anonymous refuses a missing or revoked credential (401), a caller without
/// the permission (403), and fails closed when revocation status cannot be read (503).
/// </summary>
internal static class ProblemResponses
{
    public const string ProblemJson = "application/problem+json";

    public static OpenApiOptions AddProblemResponses(this OpenApiOptions options)
    {
        options.AddOperationTransformer(async (operation, context, ct) =>
        {
            var description = context.Description;
            var metadata = description.ActionDescriptor.EndpointMetadata;
            var anonymous = metadata.OfType<IAllowAnonymous>().Any();
            var parameters = description.ParameterDescriptions;
            var body = description.SupportedRequestFormats.Count > 0 || parameters.Any(p => p.Source == BindingSource.Body || p.Source == BindingSource.Form);
            var implied = new List<(int Status, string Why)>();
            if (body || parameters.Any(p => p.Source == BindingSource.Path || p.Source == BindingSource.Query || p.Source == BindingSource.Header))
            {
                implied.Add((StatusCodes.Status400BadRequest, "The request is malformed, or a field is invalid (the problem names it)."));
            }
            if (!anonymous)
            {
                implied.Add((StatusCodes.Status401Unauthorized, "No credential, or an expired, revoked or unknown one."));
                implied.Add((StatusCodes.Status403Forbidden, "The caller lacks the permission or scope, or must sign in with two-factor authentication."));
                implied.Add((StatusCodes.Status503ServiceUnavailable, "Revocation status cannot be read right now (fail closed); retry shortly."));
            }
            if (parameters.Any(p => p.Source == BindingSource.Path))
            {
                implied.Add((StatusCodes.Status404NotFound, "Nothing the caller may see has this id (another tenant's looks the same)."));
            }
            if (body)
            {
                implied.Add((StatusCodes.Status413PayloadTooLarge, "The body is larger than this endpoint accepts."));
                implied.Add((StatusCodes.Status415UnsupportedMediaType, "The body's content type is not accepted."));
            }
            implied.Add((StatusCodes.Status429TooManyRequests, "A rate limit was reached; Retry-After says when to try again."));

            operation.Responses ??= [];
            // One named schema for every refusal, so generated clients map them all to one ProblemDetails type.
            var document = context.Document ?? throw new InvalidOperationException("The operation has no document.");
            document.Components ??= new OpenApiComponents();
            document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
            if (!document.Components.Schemas.ContainsKey(nameof(ProblemDetails)))
            {
                document.Components.Schemas[nameof(ProblemDetails)] = await context.GetOrCreateSchemaAsync(typeof(ProblemDetails), cancellationToken: ct);
            }
            foreach (var (status, why) in implied)
            {
                var key = status.ToString(CultureInfo.InvariantCulture);
                if (!operation.Responses.ContainsKey(key))
                {
                    operation.Responses[key] = new OpenApiResponse
                    {
                        Description = why,
                        Content = new Dictionary<string, OpenApiMediaType>
                        {
                            [ProblemJson] = new() { Schema = new OpenApiSchemaReference(nameof(ProblemDetails), document) },
                        },
                    };
                }
            }
        });
        return options;
    }
}
