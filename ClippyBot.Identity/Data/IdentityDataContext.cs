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

    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);
        builder.UseOpenIddict();
        builder.Entity<SigningKeyEntity>(key =>
        {
            key.ToTable("SigningKeys");
            key.HasKey(k => k.Id);
            key.Property(k => k.Id).HasMaxLength(64);
            key.Property(k => k.Algorithm).HasMaxLength(16);
            key.Property(k => k.Use).HasMaxLength(8);
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
    }
}

internal sealed class IdentityDataContextDesignTimeFactory : DesignTimeDbContextFactory<IdentityDataContext>, IDesignTimeDbContextFactory<IdentityDataContext>
{
    public IdentityDataContext CreateDbContext(string[] args) => new(DesignTimeOptions());
}
