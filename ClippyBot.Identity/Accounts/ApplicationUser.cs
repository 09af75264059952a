using Microsoft.AspNetCore.Identity;

namespace ClippyBot.Identity.Accounts;

public sealed class ApplicationUser : IdentityUser<Guid>
{
    public DateTimeOffset CreatedAt { get; set; }
}
