using ClippyBot.Plugins.Bundles;
using ClippyBot.Registry.Data;
using ClippyBot.Registry.Metadata;
using ClippyBot.Registry.Publishers;
using ClippyBot.Registry.Versions;
using ClippyBot.Registry.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Registry.Pages.Publish;

/// <summary>
/// The publisher's page: become a publisher, keys (proof of possession, revocation), namespaces, submissions with their
/// checks and review notes. Every action goes through the API's own handler, so its rules and audit entries are the same.
/// </summary>
[RequestSizeLimit(PluginBundle.MaxBundleBytes + 65_536)]
[RequestFormLimits(MultipartBodyLengthLimit = PluginBundle.MaxBundleBytes + 65_536)]
public sealed class IndexModel(RegistryDbContext db, Submissions submissions, MetadataPublisher metadata, TimeProvider time) : PageModel
{
    public PublisherEndpoints.PublisherResponse? Publisher { get; private set; }
    public IReadOnlyList<PublisherEndpoints.SubmissionResponse> Versions { get; private set; } = [];
    public PublisherEndpoints.ChallengeResponse? KeyChallenge { get; private set; }
    /// <summary>The checks of a submission just refused (it may not have been stored: then only here).</summary>
    public IReadOnlyList<CheckResult>? RefusedChecks { get; private set; }
    public string? Message { get; private set; }
    public string? Error { get; private set; }

    private CancellationToken Aborted => HttpContext.RequestAborted;

    public Task OnGetAsync() => LoadAsync();

    public async Task<IActionResult> OnPostCreateAsync(string? name)
    {
        var result = await PublisherEndpoints.CreateAsync(new(name), User, db, time, Aborted);
        return await ShowAsync(result.Result, "You are a publisher now.");
    }

    public async Task<IActionResult> OnPostChallengeAsync()
    {
        var result = await PublisherEndpoints.ChallengeAsync(User, db, time, Aborted);
        KeyChallenge = PageResults.ValueOf<PublisherEndpoints.ChallengeResponse>(result.Result);
        return await ShowAsync(result.Result, null);
    }

    public async Task<IActionResult> OnPostKeyAsync(string? publicKey, string? challenge, string? signature)
    {
        var result = await PublisherEndpoints.AddKeyAsync(new(publicKey?.Trim(), challenge?.Trim(), signature?.Trim()), User, db, time, Aborted);
        return await ShowAsync(result.Result, "Key registered: bundles signed with it can be submitted.");
    }

    public async Task<IActionResult> OnPostRevokeAsync(string? keyId)
    {
        var result = await PublisherEndpoints.RevokeKeyAsync(keyId ?? "", User, db, metadata, time, Aborted);
        return await ShowAsync(result.Result, "Key revoked: every version it signed has left the registry's listing.");
    }

    public async Task<IActionResult> OnPostNamespaceAsync(string? prefix)
    {
        var result = await PublisherEndpoints.ClaimAsync(new(prefix?.Trim()), User, db, time, Aborted);
        return await ShowAsync(result.Result, "Namespace claimed.");
    }

    public async Task<IActionResult> OnPostSubmitAsync(IFormFile? bundle)
    {
        if (bundle is null || bundle.Length == 0)
        {
            await RegistryAudit.RecordAsync(db, time, User, "version.submit", false, "page: no file", Aborted);
            return await ShowAsync(null, null, "Choose a bundle file (.cbp) to submit.");
        }
        var result = await PublisherEndpoints.SubmitBundleAsync(async ct =>
        {
            using var content = new MemoryStream();
            await bundle.CopyToAsync(content, ct);
            return content.ToArray();
        }, User, db, submissions, time, Aborted);
        RefusedChecks = PageResults.ValueOf<PublisherEndpoints.SubmissionProblem>(result.Result)?.Checks;
        return await ShowAsync(result.Result, "Submitted: every automated check passed, and it waits for a reviewer.");
    }

    private async Task<IActionResult> ShowAsync(IResult? result, string? success, string? error = null)
    {
        Error = error ?? (result is null ? null : PageResults.ProblemOf(result));
        Message = Error is null ? success : null;
        if (Error is not null)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
        }
        await LoadAsync();
        return Page();
    }

    private async Task LoadAsync()
    {
        if (await PublisherEndpoints.MeAsync(db, User, Aborted) is null)
        {
            return;
        }
        Publisher = PageResults.ValueOf<PublisherEndpoints.PublisherResponse>((await PublisherEndpoints.GetAsync(User, db, time, Aborted)).Result);
        Versions = PageResults.ValueOf<List<PublisherEndpoints.SubmissionResponse>>((await PublisherEndpoints.SubmissionsAsync(User, db, time, Aborted)).Result) ?? [];
    }
}
