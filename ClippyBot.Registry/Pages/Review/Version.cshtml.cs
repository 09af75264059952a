using ClippyBot.Registry.Data;
using ClippyBot.Registry.Metadata;
using ClippyBot.Registry.Reviews;
using ClippyBot.Registry.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Registry.Pages.Review;

/// <summary>One version in review: risk summary, what is new since the last approved version, every check; approve or reject with a note.</summary>
public sealed class VersionModel(RegistryDbContext db, MetadataPublisher metadata, TimeProvider time) : PageModel
{
    public ReviewEndpoints.QueueEntry? Entry { get; private set; }
    public ReviewEndpoints.DecisionResponse? Decision { get; private set; }
    public string? Error { get; private set; }

    public async Task<IActionResult> OnGetAsync(Guid id)
    {
        await LoadAsync(id);
        return Entry is null ? NotFound() : Page();
    }

    public async Task<IActionResult> OnPostAsync(Guid id, string? decision, string? note)
    {
        var result = await ReviewEndpoints.DecideAsync(id, new(decision, note), User, db, metadata, time, HttpContext.RequestAborted);
        Decision = PageResults.ValueOf<ReviewEndpoints.DecisionResponse>(result.Result);
        Error = PageResults.ProblemOf(result.Result);
        if (Error is not null)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
        }
        await LoadAsync(id);
        return Page();
    }

    private async Task LoadAsync(Guid id) =>
        Entry = (await ReviewEndpoints.QueueAsync(db, HttpContext.RequestAborted)).Value?.FirstOrDefault(e => e.Id == id);
}
