using ClippyBot.Registry.Publishers;
using Microsoft.AspNetCore.Http.HttpResults;

namespace ClippyBot.Registry.Web;

/// <summary>
/// The pages call the same handlers as the API (one home for every rule, limit and audit entry) and show what they
/// answered: the value on success, the problem's words otherwise.
/// </summary>
public static class PageResults
{
    public static T? ValueOf<T>(IResult result) where T : class => Unwrap(result) as IValueHttpResult<T> is { } value ? value.Value : null;

    /// <summary>Why the handler refused, in the words the API's problem details use; null when it did not.</summary>
    public static string? ProblemOf(IResult result) => Unwrap(result) switch
    {
        ProblemHttpResult problem => problem.ProblemDetails.Detail ?? problem.ProblemDetails.Title,
        ValidationProblem validation => string.Join(" ", validation.ProblemDetails.Errors.SelectMany(e => e.Value).Distinct()),
        JsonHttpResult<PublisherEndpoints.SubmissionProblem> rejected => rejected.Value?.Detail,
        _ => null,
    };

    private static IResult Unwrap(IResult result) => result is INestedHttpResult nested ? Unwrap(nested.Result) : result;
}
