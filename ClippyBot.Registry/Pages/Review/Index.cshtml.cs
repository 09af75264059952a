using ClippyBot.Registry.Data;
using ClippyBot.Registry.Reviews;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Registry.Pages.Review;

/// <summary>The reviewers' queue: versions that passed every automated check, oldest first.</summary>
public sealed class IndexModel(RegistryDbContext db) : PageModel
{
    public IReadOnlyList<ReviewEndpoints.QueueEntry> Queue { get; private set; } = [];

    public async Task OnGetAsync() => Queue = (await ReviewEndpoints.QueueAsync(db, HttpContext.RequestAborted)).Value ?? [];
}
