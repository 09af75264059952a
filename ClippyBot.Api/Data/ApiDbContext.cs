using ClippyBot.Api.ApiKeys;
using ClippyBot.Api.Audit;
using ClippyBot.Api.Workspaces;
using ClippyBot.ServiceDefaults.Data;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace ClippyBot.Api.Data;

/// <summary>The Api service's own database (`apidb`); no other service reads it.</summary>
public sealed class ApiDbContext(DbContextOptions<ApiDbContext> options) : DbContext(options), IDataProtectionKeyContext
{
    /// <summary>Data Protection's key ring, each key sealed (see ServiceDefaults' SealedDataProtection).</summary>
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();

    public DbSet<Workspace> Workspaces => Set<Workspace>();

    public DbSet<Membership> Memberships => Set<Membership>();

    public DbSet<Invitation> Invitations => Set<Invitation>();

    public DbSet<ApiKey> ApiKeys => Set<ApiKey>();

    public DbSet<AuditEntry> AuditEntries => Set<AuditEntry>();

    public DbSet<Encryption.DataKey> DataKeys => Set<Encryption.DataKey>();

    public DbSet<Encryption.ReencryptionRun> ReencryptionRuns => Set<Encryption.ReencryptionRun>();

    public DbSet<Connections.OAuthConnection> OAuthConnections => Set<Connections.OAuthConnection>();

    public DbSet<Files.StoredFile> StoredFiles => Set<Files.StoredFile>();

    public DbSet<Plugins.WorkspacePlugin> WorkspacePlugins => Set<Plugins.WorkspacePlugin>();

    public DbSet<Plugins.PluginWithdrawalNotice> PluginWithdrawalNotices => Set<Plugins.PluginWithdrawalNotice>();

    public DbSet<Secrets.WorkspaceSecret> WorkspaceSecrets => Set<Secrets.WorkspaceSecret>();

    public DbSet<Privacy.DataExport> DataExports => Set<Privacy.DataExport>();

    public DbSet<Privacy.AccountErasure> AccountErasures => Set<Privacy.AccountErasure>();

    public DbSet<Detection.SecurityAlert> SecurityAlerts => Set<Detection.SecurityAlert>();

    public DbSet<ClippyBot.Api.Incidents.Incident> Incidents => Set<ClippyBot.Api.Incidents.Incident>();

    public DbSet<ClippyBot.Api.Incidents.IncidentTimelineEntry> IncidentTimeline => Set<ClippyBot.Api.Incidents.IncidentTimelineEntry>();

    public DbSet<ClippyBot.Api.Incidents.IncidentSubject> IncidentSubjects => Set<ClippyBot.Api.Incidents.IncidentSubject>();

    public DbSet<ClippyBot.Api.Incidents.IncidentNotification> IncidentNotifications => Set<ClippyBot.Api.Incidents.IncidentNotification>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        // Breach notifications go through a durable outbox: each mail's delivery is recorded against the person.
        ClippyBot.Email.OutboxMailModel.AddMailOutbox(modelBuilder);
        modelBuilder.Entity<Detection.SecurityAlert>(a =>
        {
            a.HasKey(x => x.Id);
            a.Property(x => x.Rule).HasMaxLength(Detection.SecurityAlert.RuleLength);
            a.Property(x => x.Severity).HasMaxLength(16);
            a.Property(x => x.Subject).HasMaxLength(Detection.SecurityAlert.SubjectLength);
            a.Property(x => x.Description).HasMaxLength(300);
            a.Property(x => x.SubjectsJson).HasColumnType("jsonb");
            a.Property(x => x.SamplesJson).HasColumnType("jsonb");
            a.Ignore(x => x.Status);
            // One open episode per rule and subject: the replica that inserts it first is the one that mails.
            a.HasIndex(x => new { x.Rule, x.Subject }).IsUnique().HasFilter("\"ResolvedAt\" IS NULL");
            a.HasIndex(x => x.FirstSeen);
            a.HasOne<ClippyBot.Api.Incidents.Incident>().WithMany().HasForeignKey(x => x.IncidentId).OnDelete(DeleteBehavior.SetNull);
        });
        modelBuilder.Entity<ClippyBot.Api.Incidents.Incident>(i =>
        {
            i.HasKey(x => x.Id);
            i.Property(x => x.Title).HasMaxLength(ClippyBot.Api.Incidents.Incident.TitleLength);
            i.Property(x => x.Summary).HasMaxLength(ClippyBot.Api.Incidents.Incident.SummaryLength);
            i.Property(x => x.Severity).HasMaxLength(16);
            i.Property(x => x.Status).HasConversion<string>().HasMaxLength(16);
            i.Property(x => x.OpenedBy).HasMaxLength(100);
            i.Property(x => x.Review).HasMaxLength(ClippyBot.Api.Incidents.Incident.ReviewLength);
            i.Property(x => x.PersonalData).HasMaxLength(ClippyBot.Api.Incidents.Incident.PersonalDataLength);
            i.Ignore(x => x.NotifyBy);
            i.HasIndex(x => x.Status);
        });
        modelBuilder.Entity<ClippyBot.Api.Incidents.IncidentTimelineEntry>(t =>
        {
            t.HasKey(x => x.Id);
            t.Property(x => x.Actor).HasMaxLength(100);
            t.Property(x => x.Kind).HasMaxLength(32);
            t.Property(x => x.Text).HasMaxLength(ClippyBot.Api.Incidents.IncidentTimelineEntry.TextLength);
            t.HasIndex(x => new { x.IncidentId, x.Id });
            t.HasOne<ClippyBot.Api.Incidents.Incident>().WithMany().HasForeignKey(x => x.IncidentId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<ClippyBot.Api.Incidents.IncidentSubject>(s =>
        {
            s.HasKey(x => new { x.IncidentId, x.Kind, x.SubjectId });
            s.Property(x => x.Kind).HasMaxLength(16);
            s.Property(x => x.SubjectId).HasMaxLength(100);
            s.Property(x => x.Source).HasMaxLength(16);
            s.HasOne<ClippyBot.Api.Incidents.Incident>().WithMany().HasForeignKey(x => x.IncidentId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<ClippyBot.Api.Incidents.IncidentNotification>(n =>
        {
            n.HasKey(x => new { x.IncidentId, x.UserId, x.Audience });
            n.Property(x => x.UserId).HasMaxLength(100);
            n.Property(x => x.Audience).HasMaxLength(16);
            n.Property(x => x.Failure).HasMaxLength(300);
            n.HasIndex(x => x.MailId);
            n.HasOne<ClippyBot.Api.Incidents.Incident>().WithMany().HasForeignKey(x => x.IncidentId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<Workspace>(w =>
        {
            w.HasKey(x => x.Id);
            w.Property(x => x.Name).HasMaxLength(WorkspaceEndpoints.MaxNameLength);
            w.HasMany(x => x.Members).WithOne(m => m.Workspace).HasForeignKey(m => m.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<Membership>(m =>
        {
            m.HasKey(x => new { x.WorkspaceId, x.UserId });
            m.HasIndex(x => x.UserId);
            m.Property(x => x.UserId).HasMaxLength(100);
            m.Property(x => x.Email).HasMaxLength(254);
            m.Property(x => x.Role).HasConversion<string>().HasMaxLength(16);
        });
        modelBuilder.Entity<Invitation>(i =>
        {
            i.HasKey(x => x.Id);
            i.HasIndex(x => x.TokenHash).IsUnique();
            i.Property(x => x.Email).HasMaxLength(254);
            i.Property(x => x.InvitedBy).HasMaxLength(100);
            i.Property(x => x.Role).HasConversion<string>().HasMaxLength(16);
            i.HasOne<Workspace>().WithMany().HasForeignKey(x => x.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<ApiKey>(k =>
        {
            k.HasKey(x => x.Id);
            k.HasIndex(x => x.PublicId).IsUnique();
            k.Property(x => x.PublicId).HasMaxLength(16);
            k.Property(x => x.Name).HasMaxLength(ApiKeyEndpoints.MaxNameLength);
            k.Property(x => x.CreatedBy).HasMaxLength(100);
            k.Property(x => x.LastUsedIp).HasMaxLength(64);
            k.PrimitiveCollection(x => x.Scopes).ElementType().HasConversion<string>();
            k.HasOne<Workspace>().WithMany().HasForeignKey(x => x.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<Encryption.DataKey>(k =>
        {
            k.HasKey(x => x.Id);
            k.Property(x => x.KekId).HasMaxLength(64);
        });
        modelBuilder.Entity<Encryption.ReencryptionRun>(r =>
        {
            r.HasKey(x => x.Id);
            r.Property(x => x.Stage).HasMaxLength(64);
            r.HasIndex(x => x.CompletedAt);
        });
        modelBuilder.Entity<Connections.OAuthConnection>(c =>
        {
            c.HasKey(x => x.Id);
            c.HasIndex(x => new { x.WorkspaceId, x.CreatedAt });
            c.HasIndex(x => x.KeyId);
            c.Property(x => x.Provider).HasMaxLength(64);
            c.Property(x => x.CreatedBy).HasMaxLength(100);
            c.HasOne<Workspace>().WithMany().HasForeignKey(x => x.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<Secrets.WorkspaceSecret>(s =>
        {
            s.HasKey(x => x.Id);
            s.HasIndex(x => new { x.WorkspaceId, x.Name }).IsUnique();
            s.HasIndex(x => x.KeyId);
            s.Property(x => x.Name).HasMaxLength(64);
            s.Property(x => x.UpdatedBy).HasMaxLength(100);
            s.HasOne<Workspace>().WithMany().HasForeignKey(x => x.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<Files.StoredFile>(f =>
        {
            f.HasKey(x => x.Id);
            f.HasIndex(x => new { x.WorkspaceId, x.CreatedAt });
            f.HasIndex(x => x.KeyId);
            f.Property(x => x.Name).HasMaxLength(255);
            f.Property(x => x.ContentType).HasMaxLength(100);
            f.Property(x => x.CreatedBy).HasMaxLength(100);
            f.HasOne<Workspace>().WithMany().HasForeignKey(x => x.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<Plugins.WorkspacePlugin>(p =>
        {
            p.HasKey(x => new { x.WorkspaceId, x.PluginId });
            p.Property(x => x.PluginId).HasMaxLength(100);
            p.Property(x => x.ConsentedVersion).HasMaxLength(64);
            p.Property(x => x.InstalledBy).HasMaxLength(100);
            p.HasOne<Workspace>().WithMany().HasForeignKey(x => x.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<Plugins.PluginWithdrawalNotice>(n =>
        {
            n.HasKey(x => new { x.WorkspaceId, x.PluginId, x.Version });
            n.Property(x => x.PluginId).HasMaxLength(100);
            n.Property(x => x.Version).HasMaxLength(64);
            n.Property(x => x.Reason).HasMaxLength(500);
            n.HasOne<Workspace>().WithMany().HasForeignKey(x => x.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<Privacy.DataExport>(e =>
        {
            e.HasKey(x => x.Id);
            e.HasIndex(x => new { x.SubjectId, x.RequestedAt });
            e.HasIndex(x => new { x.Status, x.RequestedAt });
            e.HasIndex(x => x.DownloadTokenHash).IsUnique();
            e.Property(x => x.SubjectId).HasMaxLength(100);
            e.Property(x => x.Status).HasMaxLength(16);
            e.Property(x => x.Error).HasMaxLength(300);
        });
        modelBuilder.Entity<Privacy.AccountErasure>(e =>
        {
            e.HasKey(x => x.SubjectId);
            e.Property(x => x.SubjectId).HasMaxLength(100);
            e.Property(x => x.LastError).HasMaxLength(300);
            e.HasIndex(x => x.CompletedAt);
        });
        modelBuilder.Entity<AuditEntry>(a =>
        {
            // No foreign key: the log outlives a deleted workspace.
            a.HasKey(x => x.Id);
            a.HasIndex(x => new { x.ChainId, x.Id });
            a.Property(x => x.ActorType).HasMaxLength(16);
            a.Property(x => x.ActorId).HasMaxLength(AuditEntry.ActorIdLength);
            a.Property(x => x.Action).HasMaxLength(AuditEntry.ActionLength);
            a.Property(x => x.Target).HasMaxLength(AuditEntry.TargetLength);
            a.Property(x => x.Outcome).HasMaxLength(AuditEntry.OutcomeLength);
            a.Property(x => x.IpAddress).HasMaxLength(64);
        });
    }
}

internal sealed class ApiDbContextDesignTimeFactory : DesignTimeDbContextFactory<ApiDbContext>, IDesignTimeDbContextFactory<ApiDbContext>
{
    public ApiDbContext CreateDbContext(string[] args) => new(DesignTimeOptions());
}
