using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Oidc;
using ClippyBot.Identity.Sessions;
using ClippyBot.ServiceDefaults.Data;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace ClippyBot.Identity.Data;

/// <summary>The Identity service's own database (`identitydb`): users (ASP.NET Core Identity), OpenIddict's
/// applications/authorizations/scopes/tokens, and signing keys. No other service reads it.</summary>
public sealed class IdentityDataContext(DbContextOptions<IdentityDataContext> options)
    : IdentityDbContext<ApplicationUser, IdentityRole<Guid>, Guid>(options), IDataProtectionKeyContext
{
    /// <summary>Data Protection's key ring, each key sealed (see Crypto/SealedXmlEncryption).</summary>
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();

    public DbSet<SigningKeyEntity> SigningKeys => Set<SigningKeyEntity>();

    public DbSet<UserSession> UserSessions => Set<UserSession>();

    /// <summary>Every revocation marker until it expires: Redis holds them for the resource servers, this is the record
    /// they are re-published from after the cache lost them.</summary>
    public DbSet<StoredRevocationMarker> RevocationMarkers => Set<StoredRevocationMarker>();

    /// <summary>The Api's audit chain heads (see AuditAnchors): kept here, where the Api's database role cannot write.</summary>
    public DbSet<AuditAnchors.AuditAnchor> AuditAnchors => Set<AuditAnchors.AuditAnchor>();

    public DbSet<AccountSecurity.AccountToken> AccountTokens => Set<AccountSecurity.AccountToken>();

    public DbSet<AccountSecurity.RecoveryCode> RecoveryCodes => Set<AccountSecurity.RecoveryCode>();

    public DbSet<AccountSecurity.SecurityEvent> SecurityEvents => Set<AccountSecurity.SecurityEvent>();

    public DbSet<Apps.RegisteredApp> RegisteredApps => Set<Apps.RegisteredApp>();

    public DbSet<Apps.InitialAccessToken> InitialAccessTokens => Set<Apps.InitialAccessToken>();

    public DbSet<Apps.AppConsent> AppConsents => Set<Apps.AppConsent>();

    public DbSet<Apps.AppAuditEntry> AppAuditEntries => Set<Apps.AppAuditEntry>();

    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);
        ClippyBot.Email.OutboxMailModel.AddMailOutbox(builder);
        builder.UseOpenIddict();
        builder.Entity<SigningKeyEntity>(key =>
        {
            key.ToTable("SigningKeys");
            key.HasKey(k => k.Id);
            key.Property(k => k.Id).HasMaxLength(64);
            key.Property(k => k.Algorithm).HasMaxLength(16);
            key.Property(k => k.Use).HasMaxLength(8);
        });
        builder.Entity<AuditAnchors.AuditAnchor>(anchor =>
        {
            anchor.ToTable("AuditAnchors");
            anchor.HasKey(a => a.Id);
            anchor.HasIndex(a => new { a.ChainId, a.EntryId });
            anchor.Property(a => a.Hash).HasMaxLength(32);
        });
        builder.Entity<StoredRevocationMarker>(marker =>
        {
            marker.ToTable("RevocationMarkers");
            marker.HasKey(m => m.Key);
            marker.Property(m => m.Key).HasMaxLength(200);
            marker.HasIndex(m => m.ExpiresAt);
        });
        builder.Entity<UserSession>(session =>
        {
            session.ToTable("UserSessions");
            session.HasKey(s => s.Id);
            session.HasIndex(s => new { s.UserId, s.EndedAt });
            session.Property(s => s.ClientId).HasMaxLength(100);
            session.Property(s => s.AuthorizationId).HasMaxLength(100);
            session.Property(s => s.UserAgent).HasMaxLength(256);
            session.Property(s => s.IpAddress).HasMaxLength(64);
        });
        builder.Entity<AccountSecurity.AccountToken>(token =>
        {
            token.ToTable("AccountTokens");
            token.HasKey(t => t.Id);
            token.HasIndex(t => t.Hash).IsUnique();
            token.HasIndex(t => new { t.UserId, t.Purpose });
            token.Property(t => t.Purpose).HasMaxLength(32);
            token.HasOne<ApplicationUser>().WithMany().HasForeignKey(t => t.UserId).OnDelete(DeleteBehavior.Cascade);
        });
        builder.Entity<AccountSecurity.RecoveryCode>(code =>
        {
            code.ToTable("RecoveryCodes");
            code.HasKey(c => c.Id);
            code.HasIndex(c => new { c.UserId, c.Hash }).IsUnique();
            code.HasOne<ApplicationUser>().WithMany().HasForeignKey(c => c.UserId).OnDelete(DeleteBehavior.Cascade);
        });
        builder.Entity<AccountSecurity.SecurityEvent>(entry =>
        {
            entry.ToTable("SecurityEvents");
            entry.HasKey(e => e.Id);
            entry.HasIndex(e => new { e.UserId, e.Id });
            entry.Property(e => e.Kind).HasMaxLength(40);
            entry.Property(e => e.IpAddress).HasMaxLength(64);
            entry.HasOne<ApplicationUser>().WithMany().HasForeignKey(e => e.UserId).OnDelete(DeleteBehavior.Cascade);
        });
        builder.Entity<Apps.RegisteredApp>(app =>
        {
            app.ToTable("RegisteredApps");
            app.HasKey(a => a.ClientId);
            app.Property(a => a.ClientId).HasMaxLength(100);
            app.Property(a => a.SuspendReason).HasMaxLength(500);
            app.HasIndex(a => a.OwnerId);
            app.HasIndex(a => a.RegistrationTokenHash).IsUnique();
        });
        builder.Entity<Apps.InitialAccessToken>(token =>
        {
            token.ToTable("InitialAccessTokens");
            token.HasKey(t => t.Id);
            token.HasIndex(t => t.Hash).IsUnique();
            token.HasIndex(t => t.OwnerId);
            token.HasOne<ApplicationUser>().WithMany().HasForeignKey(t => t.OwnerId).OnDelete(DeleteBehavior.Cascade);
        });
        builder.Entity<Apps.AppConsent>(consent =>
        {
            consent.ToTable("AppConsents");
            consent.HasKey(c => new { c.UserId, c.ClientId });
            consent.Property(c => c.ClientId).HasMaxLength(100);
            consent.Property(c => c.Scopes).HasMaxLength(1000);
            consent.HasIndex(c => c.ClientId);
            consent.HasOne<ApplicationUser>().WithMany().HasForeignKey(c => c.UserId).OnDelete(DeleteBehavior.Cascade);
        });
        builder.Entity<Apps.AppAuditEntry>(entry =>
        {
            entry.ToTable("AppAuditEntries");
            entry.HasKey(e => e.Id);
            entry.HasIndex(e => new { e.ClientId, e.Id });
            entry.HasIndex(e => new { e.Outcome, e.At });
            entry.Property(e => e.ClientId).HasMaxLength(100);
            entry.Property(e => e.Action).HasMaxLength(40);
            entry.Property(e => e.Outcome).HasMaxLength(16);
            entry.Property(e => e.Detail).HasMaxLength(500);
            entry.Property(e => e.IpAddress).HasMaxLength(64);
        });
    }
}

internal sealed class IdentityDataContextDesignTimeFactory : DesignTimeDbContextFactory<IdentityDataContext>, IDesignTimeDbContextFactory<IdentityDataContext>
{
    public IdentityDataContext CreateDbContext(string[] args) => new(DesignTimeOptions());
}
