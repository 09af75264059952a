using ClippyBot.Security;
using ClippyBot.Contracts;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using ClippyBot.Api.Audit;
using ClippyBot.Api.Data;
using ClippyBot.Api.RateLimiting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Workspaces;

public static class WorkspaceEndpoints
{
    public const int MaxNameLength = 100;
    public static readonly TimeSpan InvitationLifetime = TimeSpan.FromDays(7);

    public const int MaxPendingInvitations = 100;

    public const int MaxInvitationsPerRecipientPerDay = 5;

    public sealed record CreateWorkspaceRequest(string? Name);
    public sealed record UpdateWorkspaceRequest(string? Name, bool? RequireMfaForAdmins);
    public sealed record DeleteWorkspaceRequest(string? ConfirmName);
    /// <summary><paramref name="Role"/> is the caller's role; null for an API key, which has scopes instead.</summary>
    public sealed record WorkspaceResponse(Guid Id, string Name, bool RequireMfaForAdmins, WorkspaceRole? Role);
    /// <summary>A member; <c>Email</c> is empty (and <c>EmailVerified</c> false) when they joined with an address not yet verified.</summary>
    public sealed record MemberResponse(string UserId, string Email, bool EmailVerified, WorkspaceRole Role, DateTimeOffset JoinedAt);
    public sealed record ChangeRoleRequest(WorkspaceRole? Role);
    public sealed record InviteRequest(string? Email, WorkspaceRole? Role);
    public sealed record InvitationResponse(Guid Id, string Email, WorkspaceRole Role, DateTimeOffset ExpiresAt);
    public sealed record AcceptInvitationRequest(string? Token);

    public static IEndpointRouteBuilder MapWorkspacesApi(this IEndpointRouteBuilder app)
    {
        var workspaces = app.MapGroup("/api/workspaces").WithTags("Workspaces");
        workspaces.MapPost("/", CreateAsync).RequireRateLimiting(RateLimitingExtensions.SensitivePolicy);
        workspaces.MapGet("/", ListMineAsync);

        var workspace = workspaces.MapGroup("/{workspaceId:guid}");
        workspace.MapGet("/", GetAsync).RequirePermission(Permission.DataRead);
        workspace.MapPatch("/", UpdateAsync).RequirePermission(Permission.WorkspaceSettings).ProducesProblem(StatusCodes.Status409Conflict);
        workspace.MapDelete("/", DeleteAsync).RequirePermission(Permission.WorkspaceDelete).RequireRateLimiting(RateLimitingExtensions.SensitivePolicy);
        workspace.MapGet("/members", ListMembersAsync).RequirePermission(Permission.DataRead);
        workspace.MapPut("/members/{userId}", ChangeRoleAsync).RequirePermission(Permission.MemberManagement).ProducesProblem(StatusCodes.Status409Conflict);
        workspace.MapDelete("/members/{userId}", RemoveMemberAsync).RequirePermission(Permission.MemberManagement).ProducesProblem(StatusCodes.Status409Conflict);
        workspace.MapPost("/leave", LeaveAsync).RequireMembership().ProducesProblem(StatusCodes.Status409Conflict);
        workspace.MapPost("/invitations", InviteAsync).RequirePermission(Permission.MemberManagement).RequireRateLimiting(RateLimitingExtensions.SensitivePolicy);
        workspace.MapDelete("/invitations/{invitationId:guid}", RevokeInvitationAsync).RequirePermission(Permission.MemberManagement);

        app.MapPost("/api/invitations/accept", AcceptAsync).WithTags("Workspaces").RequireRateLimiting(RateLimitingExtensions.SensitivePolicy);
        return app;
    }

    private static async Task<Results<Created<WorkspaceResponse>, ValidationProblem>> CreateAsync(
        CreateWorkspaceRequest request, ClaimsPrincipal user, [AsParameters] WorkspaceServices services)
    {
        if (ValidateName(request.Name) is { } problem)
        {
            return problem;
        }
        var now = services.Time.GetUtcNow();
        var workspace = new Workspace { Id = Guid.CreateVersion7(), Name = request.Name!.Trim(), CreatedAt = now };
        workspace.Members.Add(new Membership { UserId = Subject(user), Email = Caller.CallerEmail.Verified(user) ?? "", Role = WorkspaceRole.Owner, JoinedAt = now });
        services.Db.Workspaces.Add(workspace);
        await services.Db.SaveChangesAsync();
        await services.Audit.RecordAsync(workspace.Id, "workspace.created", workspace.Name);
        return TypedResults.Created($"/api/workspaces/{workspace.Id}", new WorkspaceResponse(workspace.Id, workspace.Name, false, WorkspaceRole.Owner));
    }

    private static async Task<Ok<List<WorkspaceResponse>>> ListMineAsync(ClaimsPrincipal user, [AsParameters] WorkspaceServices services)
    {
        var subject = Subject(user);
        var mine = await services.Db.Memberships.AsNoTracking()
            .Where(m => m.UserId == subject)
            .OrderBy(m => m.Workspace.Name)
            .Select(m => new WorkspaceResponse(m.WorkspaceId, m.Workspace.Name, m.Workspace.RequireMfaForAdmins, m.Role))
            .ToListAsync();
        return TypedResults.Ok(mine);
    }

    private static async Task<Ok<WorkspaceResponse>> GetAsync(Guid workspaceId, HttpContext http, [AsParameters] WorkspaceServices services)
    {
        var workspace = await services.Db.Workspaces.AsNoTracking().SingleAsync(w => w.Id == workspaceId);
        return TypedResults.Ok(new WorkspaceResponse(workspace.Id, workspace.Name, workspace.RequireMfaForAdmins, CallerRole(http)));
    }

    private static async Task<Results<Ok<WorkspaceResponse>, ValidationProblem, ProblemHttpResult>> UpdateAsync(
        Guid workspaceId, UpdateWorkspaceRequest request, HttpContext http, [AsParameters] WorkspaceServices services)
    {
        if (request.Name is not null && ValidateName(request.Name) is { } problem)
        {
            return problem;
        }
        var workspace = await services.Db.Workspaces.SingleAsync(w => w.Id == workspaceId);
        if (request.RequireMfaForAdmins is { } requireMfa && requireMfa != workspace.RequireMfaForAdmins)
        {
            // Security settings are a person's decision, never an API key's (whatever its scopes).
            if (ClippyBot.Api.ApiKeys.ApiKeyClaims.IsApiKey(http.User))
            {
                await services.Audit.RecordAsync(workspaceId, "workspace.updated", "requireMfaForAdmins by an API key", "denied");
                return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Not with an API key",
                    detail: "API keys cannot change a workspace's security settings; an owner or admin signed in as a person can.",
                    type: ProblemTypes.ApiKeyNotAllowed);
            }
            // Turning the policy on from a session without a second factor would lock the caller out of this very setting.
            if (requireMfa && !http.User.FindAll("amr").Any(c => c.Value is "mfa" or "otp"))
            {
                await services.Audit.RecordAsync(workspaceId, "workspace.updated", "requireMfaForAdmins without mfa", "denied");
                return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Sign in with two-factor authentication first",
                    detail: "Requiring two-factor sign-in for owners and admins would lock you out: your own session did not use a second factor. Turn on two-factor authentication, sign in with it, then turn this on.",
                    type: ProblemTypes.MfaRequiredToEnable);
            }
        }
        workspace.Name = request.Name?.Trim() ?? workspace.Name;
        workspace.RequireMfaForAdmins = request.RequireMfaForAdmins ?? workspace.RequireMfaForAdmins;
        await services.SaveAndInvalidateAsync(workspaceId);
        await services.Audit.RecordAsync(workspaceId, "workspace.updated", $"name={workspace.Name};requireMfaForAdmins={workspace.RequireMfaForAdmins}");
        return TypedResults.Ok(new WorkspaceResponse(workspace.Id, workspace.Name, workspace.RequireMfaForAdmins, CallerRole(http)));
    }

    private static async Task<Results<NoContent, ValidationProblem>> DeleteAsync(
        Guid workspaceId, [FromBody] DeleteWorkspaceRequest request, [AsParameters] WorkspaceServices services)
    {
        var workspace = await services.Db.Workspaces.SingleAsync(w => w.Id == workspaceId);
        // Deleting is irreversible: the caller repeats the workspace's name, as on the confirmation screen.
        if (!string.Equals(request.ConfirmName?.Trim(), workspace.Name, StringComparison.Ordinal))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                [nameof(DeleteWorkspaceRequest.ConfirmName)] = ["Type the workspace's exact name to confirm deletion."],
            });
        }
        services.Db.Workspaces.Remove(workspace);
        await services.SaveAndInvalidateAsync(workspaceId);
        await services.Audit.RecordAsync(workspaceId, "workspace.deleted", workspace.Name);
        return TypedResults.NoContent();
    }

    private static async Task<Ok<List<MemberResponse>>> ListMembersAsync(Guid workspaceId, [AsParameters] WorkspaceServices services) =>
        TypedResults.Ok(await services.Db.Memberships.AsNoTracking()
            .Where(m => m.WorkspaceId == workspaceId)
            .OrderBy(m => m.JoinedAt)
            .Select(m => new MemberResponse(m.UserId, m.Email, m.Email != "", m.Role, m.JoinedAt))
            .ToListAsync());

    private static async Task<Results<Ok<MemberResponse>, ProblemHttpResult, ValidationProblem>> ChangeRoleAsync(
        Guid workspaceId, string userId, ChangeRoleRequest request, HttpContext http, [AsParameters] WorkspaceServices services)
    {
        if (request.Role is not { } role || !Enum.IsDefined(role))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["role"] = ["Choose owner, admin, member, viewer or billing."] });
        }
        var member = await services.Db.Memberships.SingleOrDefaultAsync(m => m.WorkspaceId == workspaceId && m.UserId == userId);
        if (member is null)
        {
            return MemberNotFound();
        }
        // Only owners make or unmake owners.
        if ((role == WorkspaceRole.Owner || member.Role == WorkspaceRole.Owner) && CallerRole(http) != WorkspaceRole.Owner)
        {
            return OwnersOnly();
        }
        if (member.Role == WorkspaceRole.Owner && role != WorkspaceRole.Owner && await IsLastOwnerAsync(services.Db, workspaceId))
        {
            return LastOwner();
        }
        var previousRole = member.Role;
        member.Role = role;
        await services.SaveAndInvalidateAsync(workspaceId);
        await services.Audit.RecordAsync(workspaceId, "member.role_changed", $"{member.UserId}:{previousRole}->{role}");
        return TypedResults.Ok(new MemberResponse(member.UserId, member.Email, member.Email.Length > 0, member.Role, member.JoinedAt));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> RemoveMemberAsync(
        Guid workspaceId, string userId, HttpContext http, [AsParameters] WorkspaceServices services)
    {
        var member = await services.Db.Memberships.SingleOrDefaultAsync(m => m.WorkspaceId == workspaceId && m.UserId == userId);
        if (member is null)
        {
            return MemberNotFound();
        }
        if (member.Role == WorkspaceRole.Owner && CallerRole(http) != WorkspaceRole.Owner)
        {
            return OwnersOnly();
        }
        if (member.Role == WorkspaceRole.Owner && await IsLastOwnerAsync(services.Db, workspaceId))
        {
            return LastOwner();
        }
        services.Db.Memberships.Remove(member);
        await services.SaveAndInvalidateAsync(workspaceId);
        await services.Audit.RecordAsync(workspaceId, "member.removed", member.UserId);
        return TypedResults.NoContent();
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> LeaveAsync(Guid workspaceId, ClaimsPrincipal user, [AsParameters] WorkspaceServices services)
    {
        var subject = Subject(user);
        var member = await services.Db.Memberships.SingleAsync(m => m.WorkspaceId == workspaceId && m.UserId == subject);
        if (member.Role == WorkspaceRole.Owner && await IsLastOwnerAsync(services.Db, workspaceId))
        {
            return LastOwner();
        }
        services.Db.Memberships.Remove(member);
        await services.SaveAndInvalidateAsync(workspaceId);
        await services.Audit.RecordAsync(workspaceId, "member.left", subject);
        return TypedResults.NoContent();
    }

    private static async Task<Results<Created<InvitationResponse>, ProblemHttpResult, ValidationProblem>> InviteAsync(
        Guid workspaceId, InviteRequest request, ClaimsPrincipal user, HttpContext http, [AsParameters] WorkspaceServices services, InvitationMail invitations)
    {
        var errors = new Dictionary<string, string[]>();
        var email = request.Email?.Trim() ?? "";
        if (email.Length is 0 or > 254 || !System.Net.Mail.MailAddress.TryCreate(email, out _))
        {
            errors["email"] = ["Enter the invitee's email address."];
        }
        if (request.Role is not { } role || !Enum.IsDefined(role))
        {
            errors["role"] = ["Choose owner, admin, member, viewer or billing."];
            role = default;
        }
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }
        if (role == WorkspaceRole.Owner && CallerRole(http) != WorkspaceRole.Owner)
        {
            return OwnersOnly();
        }
        // Invitations mail our domain's text to any address: only from a verified inviter, and within limits per workspace
        // (pending) and per recipient (across workspaces, per day), so the feature cannot be used to send mail in bulk.
        if (Caller.CallerEmail.Verified(user) is null)
        {
            await services.Audit.RecordAsync(workspaceId, "invitation.created", "inviter unverified", "denied");
            return Caller.CallerEmail.Unverified("Confirm your email address with the link Identity sent you, sign in again, then invite people.");
        }
        var now = services.Time.GetUtcNow();
        var pending = await services.Db.Invitations.CountAsync(i => i.WorkspaceId == workspaceId && i.AcceptedAt == null && i.ExpiresAt > now);
        var recentToRecipient = await ClippyBot.Api.Privacy.InvitationAddresses.AddressedTo(services.Db.Invitations, email).CountAsync(i => i.ExpiresAt > now + InvitationLifetime - TimeSpan.FromDays(1));
        if (pending >= MaxPendingInvitations || recentToRecipient >= MaxInvitationsPerRecipientPerDay)
        {
            await services.Audit.RecordAsync(workspaceId, "invitation.created", "limit reached", "denied");
            return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Invitation limit reached",
                detail: pending >= MaxPendingInvitations
                    ? $"This workspace has {MaxPendingInvitations} pending invitations; revoke some or wait for them to be accepted."
                    : "This address has been invited too often today; try again tomorrow.",
                type: ProblemTypes.InvitationLimit);
        }
        var token = RandomTokens.New();
        var invitation = new Invitation
        {
            Id = Guid.CreateVersion7(),
            WorkspaceId = workspaceId,
            Email = email,
            Role = role,
            TokenHash = RandomTokens.LookupHash(token),
            InvitedBy = Subject(user),
            ExpiresAt = services.Time.GetUtcNow() + InvitationLifetime,
        };
        services.Db.Invitations.Add(invitation);
        await services.Db.SaveChangesAsync();
        // The invitee's address stays out of the append-only log (it could never be erased there).
        await services.Audit.RecordAsync(workspaceId, "invitation.created", $"{invitation.Id}:{role}");
        var workspaceName = await services.Db.Workspaces.Where(w => w.Id == workspaceId).Select(w => w.Name).SingleAsync();
        invitations.Send(email, workspaceName, role, token, invitation.ExpiresAt);
        return TypedResults.Created($"/api/workspaces/{workspaceId}/invitations/{invitation.Id}",
            new InvitationResponse(invitation.Id, email, role, invitation.ExpiresAt));
    }

    /// <summary>Withdraws a pending invitation (its link stops working at once).</summary>
    private static async Task<Results<NoContent, ProblemHttpResult>> RevokeInvitationAsync(
        Guid workspaceId, Guid invitationId, [AsParameters] WorkspaceServices services)
    {
        var removed = await services.Db.Invitations.Where(i => i.Id == invitationId && i.WorkspaceId == workspaceId && i.AcceptedAt == null).ExecuteDeleteAsync();
        if (removed == 0)
        {
            // Also another workspace's invitation id: refused like one that does not exist, and recorded.
            await services.Audit.RecordAsync(workspaceId, "invitation.revoked", invitationId.ToString(), "not_found");
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "No such invitation",
                detail: "No pending invitation with this id in this workspace.", type: ProblemTypes.NotFound);
        }
        await services.Audit.RecordAsync(workspaceId, "invitation.revoked", invitationId.ToString());
        return TypedResults.NoContent();
    }

    private static async Task<Results<Ok<WorkspaceResponse>, ProblemHttpResult>> AcceptAsync(
        AcceptInvitationRequest request, ClaimsPrincipal user, [AsParameters] WorkspaceServices services)
    {
        var hash = RandomTokens.LookupHash(request.Token ?? "");
        var invitation = await services.Db.Invitations.SingleOrDefaultAsync(i => i.TokenHash == hash);
        var email = user.FindFirstValue("email");
        // One answer for unknown, used, expired or someone else's invitation.
        if (invitation is null || invitation.AcceptedAt is not null || invitation.ExpiresAt <= services.Time.GetUtcNow()
            || email is null || !string.Equals(email, invitation.Email, StringComparison.OrdinalIgnoreCase))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invitation not valid",
                detail: "This invitation does not exist, has expired, was already used, or was sent to another address.",
                type: ProblemTypes.InvitationInvalid);
        }
        // The address in the token must be proven: otherwise anyone could register the invitee's address and join.
        if (!string.Equals(user.FindFirstValue("email_verified"), "true", StringComparison.OrdinalIgnoreCase))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Email address not verified",
                detail: "Confirm your email address with the link Identity sent you, sign in again, then accept the invitation.",
                type: ProblemTypes.EmailUnverified);
        }
        var subject = Subject(user);
        var now = services.Time.GetUtcNow();
        invitation.AcceptedAt = now;
        var existing = await services.Db.Memberships.SingleOrDefaultAsync(m => m.WorkspaceId == invitation.WorkspaceId && m.UserId == subject);
        if (existing is null)
        {
            services.Db.Memberships.Add(new Membership { WorkspaceId = invitation.WorkspaceId, UserId = subject, Email = email, Role = invitation.Role, JoinedAt = now });
        }
        await services.SaveAndInvalidateAsync(invitation.WorkspaceId);
        await services.Audit.RecordAsync(invitation.WorkspaceId, "invitation.accepted", $"{subject}:{invitation.Role}");
        var workspace = await services.Db.Workspaces.AsNoTracking().SingleAsync(w => w.Id == invitation.WorkspaceId);
        return TypedResults.Ok(new WorkspaceResponse(workspace.Id, workspace.Name, workspace.RequireMfaForAdmins, existing?.Role ?? invitation.Role));
    }

    private static ValidationProblem? ValidateName(string? name) =>
        string.IsNullOrWhiteSpace(name) || name.Trim().Length > MaxNameLength
            ? TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["name"] = [$"Give the workspace a name of 1–{MaxNameLength} characters."] })
            : null;

    private static Task<bool> IsLastOwnerAsync(ApiDbContext db, Guid workspaceId) =>
        db.Memberships.CountAsync(m => m.WorkspaceId == workspaceId && m.Role == WorkspaceRole.Owner).ContinueWith(t => t.Result <= 1, TaskScheduler.Default);

    private static string Subject(ClaimsPrincipal user) => user.FindFirstValue("sub") ?? throw new InvalidOperationException("No subject.");

    private static WorkspaceRole? CallerRole(HttpContext http) => http.Items[typeof(WorkspaceRole)] as WorkspaceRole?;

    // Problem results (not NotFound<ProblemDetails>, which is sent as application/json): every refusal is problem+json.
    private static ProblemHttpResult MemberNotFound() =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Member not found", type: ProblemTypes.MemberNotFound);

    private static ProblemHttpResult OwnersOnly() => TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Owners only",
        detail: "Only owners can make, change or remove owners.", type: ProblemTypes.OwnersOnly);

    private static ProblemHttpResult LastOwner() => TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Last owner",
        detail: "A workspace always keeps at least one owner; make someone else owner first.", type: ProblemTypes.LastOwner);
}

public sealed class WorkspaceServices(ApiDbContext db, TimeProvider time, AuditLog audit, WorkspaceStateCache cache)
{
    /// <summary>Saves, then makes every replica forget what it cached about the workspace (members, settings, plugins).</summary>
    public async Task SaveAndInvalidateAsync(Guid workspaceId)
    {
        await Db.SaveChangesAsync();
        await Cache.InvalidateAsync(workspaceId);
    }

    public WorkspaceStateCache Cache { get; } = cache;

    public ApiDbContext Db { get; } = db;

    public TimeProvider Time { get; } = time;

    public AuditLog Audit { get; } = audit;
}
