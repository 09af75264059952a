using System.Text.Json;
using System.Text.Json.Serialization;
using ClippyBot.Api.Audit;
using ClippyBot.Api.Containment;
using ClippyBot.Api.Data;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Privacy;

/// <summary>
/// Builds the export document of one person (schema in docs/privacy.md, version <see cref="SchemaVersion"/>): Identity's
/// part fetched over its internal API, the Api's part from apidb. Secrets are never exported — not password hashes, TOTP
/// secrets, API key secrets, OAuth tokens or secret values — and neither is workspace content (file bodies belong to the
/// workspace); the things the person made are listed by name and time. The PluginHost keeps nothing about people.
/// </summary>
public sealed class PersonalDataExporter(ApiDbContext db, AuditLog audit, IdentityServiceClient identity, TimeProvider time)
{
    public const string Schema = "https://clippybot.dev/schemas/personal-data-export";
    public const int SchemaVersion = 1;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public sealed record ExportDocument(string Schema, int Version, Guid ExportId, string Subject, DateTimeOffset GeneratedAt,
        JsonElement Identity, ApiPart Api, PluginHostPart PluginHost);

    public sealed record ApiPart(
        IReadOnlyList<MembershipRecord> Memberships,
        IReadOnlyList<InvitationRecord> InvitationsReceived,
        IReadOnlyList<InvitationRecord> InvitationsSent,
        IReadOnlyList<ApiKeyRecord> ApiKeysCreated,
        IReadOnlyList<FileRecord> FilesUploaded,
        IReadOnlyList<ConnectionRecord> ConnectionsCreated,
        IReadOnlyList<SecretRecord> SecretsLastUpdated,
        IReadOnlyList<PluginRecord> PluginsInstalled,
        IReadOnlyList<AuditRecord> AuditEvents);

    public sealed record PluginHostPart(string Note);

    public sealed record MembershipRecord(Guid WorkspaceId, string WorkspaceName, string Role, string Email, DateTimeOffset JoinedAt);

    public sealed record InvitationRecord(Guid Id, Guid WorkspaceId, string Email, string Role, DateTimeOffset ExpiresAt, DateTimeOffset? AcceptedAt);

    public sealed record ApiKeyRecord(Guid Id, Guid WorkspaceId, string Name, IReadOnlyList<string> Scopes, DateTimeOffset CreatedAt,
        DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt, DateTimeOffset? LastUsedAt);

    public sealed record FileRecord(Guid Id, Guid WorkspaceId, string Name, string ContentType, long Size, DateTimeOffset CreatedAt);

    public sealed record ConnectionRecord(Guid Id, Guid WorkspaceId, string Provider, DateTimeOffset CreatedAt);

    public sealed record SecretRecord(Guid WorkspaceId, string Name, DateTimeOffset UpdatedAt);

    public sealed record PluginRecord(Guid WorkspaceId, string PluginId, string Version, DateTimeOffset InstalledAt);

    /// <summary><paramref name="WorkspaceId"/> null: the platform's log (logins, account events).</summary>
    public sealed record AuditRecord(long Id, Guid? WorkspaceId, DateTimeOffset At, string Action, string Target, string Outcome, string IpAddress);

    /// <summary>The document as UTF-8 JSON, and the account's verified address for the link mail (null: none verified).</summary>
    public async Task<(byte[] Document, string? VerifiedEmail)> BuildAsync(Guid exportId, string subject, CancellationToken ct)
    {
        var identityPart = Guid.TryParse(subject, out var userId) ? await identity.ExportPersonalDataAsync(userId, ct) : null;
        if (identityPart is not { } identityJson)
        {
            throw new InvalidOperationException("Identity holds no account for this subject.");
        }
        var account = identityJson.GetProperty("account");
        var email = account.GetProperty("email").GetString() ?? "";
        var verified = account.GetProperty("emailConfirmed").GetBoolean() ? email : null;
        var emails = await db.Memberships.AsNoTracking().Where(m => m.UserId == subject).Select(m => m.Email).Distinct().ToListAsync(ct);
        // Invitations are the person's only under an address they verified (or joined with, which required it).
        if (verified is not null)
        {
            emails.Add(verified);
        }

        var memberships = (await db.Memberships.AsNoTracking().Where(m => m.UserId == subject).OrderBy(m => m.JoinedAt)
                .Select(m => new { m.WorkspaceId, m.Workspace.Name, m.Role, m.Email, m.JoinedAt }).ToListAsync(ct))
            .Select(m => new MembershipRecord(m.WorkspaceId, m.Name, RoleName(m.Role), m.Email, m.JoinedAt)).ToList();
        var received = new List<InvitationRecord>();
        foreach (var address in emails.Where(e => e.Length > 0).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            received.AddRange((await db.Invitations.AsNoTracking().AddressedTo(address).ToListAsync(ct)).Select(ToRecord));
        }
        received = [.. received.DistinctBy(i => i.Id).OrderBy(i => i.ExpiresAt)];
        var sent = (await db.Invitations.AsNoTracking().Where(i => i.InvitedBy == subject).OrderBy(i => i.ExpiresAt).ToListAsync(ct))
            .Select(ToRecord).ToList();
        var keys = (await db.ApiKeys.AsNoTracking().Where(k => k.CreatedBy == subject).OrderBy(k => k.CreatedAt).ToListAsync(ct))
            .Select(k => new ApiKeyRecord(k.Id, k.WorkspaceId, k.Name, [.. k.Scopes.Select(s => s.ToString())], k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.LastUsedAt)).ToList();
        var files = await db.StoredFiles.AsNoTracking().Where(f => f.CreatedBy == subject).OrderBy(f => f.CreatedAt)
            .Select(f => new FileRecord(f.Id, f.WorkspaceId, f.Name, f.ContentType, f.Size, f.CreatedAt)).ToListAsync(ct);
        var connections = await db.OAuthConnections.AsNoTracking().Where(c => c.CreatedBy == subject).OrderBy(c => c.CreatedAt)
            .Select(c => new ConnectionRecord(c.Id, c.WorkspaceId, c.Provider, c.CreatedAt)).ToListAsync(ct);
        var secrets = await db.WorkspaceSecrets.AsNoTracking().Where(s => s.UpdatedBy == subject).OrderBy(s => s.UpdatedAt)
            .Select(s => new SecretRecord(s.WorkspaceId, s.Name, s.UpdatedAt)).ToListAsync(ct);
        var plugins = await db.WorkspacePlugins.AsNoTracking().Where(p => p.InstalledBy == subject).OrderBy(p => p.InstalledAt)
            .Select(p => new PluginRecord(p.WorkspaceId, p.PluginId, p.ConsentedVersion, p.InstalledAt)).ToListAsync(ct);
        var events = new List<AuditRecord>();
        await foreach (var e in db.AuditEntries.AsNoTracking().Where(e => e.ActorType == "user" && e.ActorId == subject).OrderBy(e => e.Id)
                           .AsAsyncEnumerable().WithCancellation(ct))
        {
            events.Add(new AuditRecord(e.Id, e.ChainId == Guid.Empty ? null : e.ChainId, e.At, e.Action, e.Target, e.Outcome, await audit.ReadIpAddressAsync(e, ct)));
        }

        var document = new ExportDocument(Schema, SchemaVersion, exportId, subject, time.GetUtcNow(), identityJson,
            new ApiPart(memberships, received, sent, keys, files, connections, secrets, plugins, events),
            new PluginHostPart("The PluginHost keeps no account data: plugin bundles, crash logs (no content) and plugin storage are "
                + "kept per workspace and plugin; what a plugin stores belongs to the workspace that installed it."));
        return (JsonSerializer.SerializeToUtf8Bytes(document, Json), verified);
    }

    private static InvitationRecord ToRecord(Workspaces.Invitation i) => new(i.Id, i.WorkspaceId, i.Email, RoleName(i.Role), i.ExpiresAt, i.AcceptedAt);

    private static string RoleName(Workspaces.WorkspaceRole role) => role.ToString().ToLowerInvariant();
}
