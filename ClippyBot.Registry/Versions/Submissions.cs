using System.Security.Cryptography;
using System.Text.Json;
using ClippyBot.Plugins.Bundles;
using ClippyBot.Registry.Data;
using ClippyBot.Registry.Metadata;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Registry.Versions;

/// <summary>One automated check's outcome, stored with the version and shown to its publisher.</summary>
public sealed record CheckResult(string Check, bool Passed, string Detail);

/// <summary>What a submission became: the stored version (null when the bundle could not even be read) and every check.</summary>
public sealed record SubmissionOutcome(PluginVersion? Version, IReadOnlyList<CheckResult> Checks)
{
    public bool Passed => Checks.All(c => c.Passed);
}

/// <summary>
/// Takes a publisher's bundle through the automated checks — format and size, manifest, namespace, the publisher's own
/// registered key, the module in the sandbox, a version that moves forward — and stores it for review, or rejected with the reasons. First-party
/// versions may be approved at once (development's <c>Registry:FirstParty:AutoApprove</c>).
/// </summary>
public sealed class Submissions(RegistryDbContext db, MetadataPublisher metadata, ModuleReview review, Microsoft.Extensions.Options.IOptions<RegistryOptions> options, TimeProvider time)
{
    /// <summary>Plugin ids under this prefix are the platform's own.</summary>
    public const string FirstPartyNamespace = "dev.clippybot";

    public async Task<SubmissionOutcome> SubmitAsync(Publisher publisher, byte[] content, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(publisher);
        ArgumentNullException.ThrowIfNull(content);
        var checks = new List<CheckResult>();
        PluginBundle bundle;
        try
        {
            bundle = content.LongLength <= PluginBundle.MaxBundleBytes
                ? PluginBundle.Read(new MemoryStream(content, writable: false))
                : throw new BundleException(BundleError.Malformed, $"The bundle is larger than {PluginBundle.MaxBundleBytes} bytes.");
            checks.Add(new("format", true, "a bundle within the size limits"));
        }
        catch (BundleException e)
        {
            checks.Add(new("format", false, e.Message));
            return new SubmissionOutcome(null, checks);
        }
        var (manifest, errors) = ManifestValidator.Parse(bundle.ManifestBytes);
        checks.Add(manifest is null ? new("manifest", false, string.Join("; ", errors)) : new("manifest", true, $"{manifest.Id} {manifest.Version}"));
        if (manifest is null)
        {
            return new SubmissionOutcome(null, checks);
        }

        var owned = await db.Namespaces.AsNoTracking().Where(n => n.PublisherId == publisher.Id).Select(n => n.Prefix).ToListAsync(ct);
        var reserved = Under(manifest.Id, FirstPartyNamespace) && !publisher.FirstParty;
        var inNamespace = owned.Any(prefix => Under(manifest.Id, prefix));
        checks.Add(new("namespace", inNamespace && !reserved, reserved
            ? $"{FirstPartyNamespace}.* is reserved for the platform's own plugins."
            : inNamespace ? $"{manifest.Id} is in a namespace you own" : $"{manifest.Id} is in none of your namespaces ({string.Join(", ", owned.DefaultIfEmpty("none claimed"))})."));

        var keys = await db.PublisherKeys.AsNoTracking().Where(k => k.PublisherId == publisher.Id && k.RevokedAt == null).ToListAsync(ct);
        string? signer = null;
        try
        {
            signer = PluginSigning.Verify(bundle, new PluginTrustStore(keys.Select(k => new TrustedKey(publisher.Name, k.PublicKey, [manifest.Id])))).SignerKeyId;
            checks.Add(new("signature", true, $"signed by your key {signer}"));
        }
        catch (BundleException e)
        {
            checks.Add(new("signature", false, e.Message + " Sign it with a key registered (and not revoked) on your publisher page."));
        }

        // The module itself: compiles, binds to the manifest, and survives generated inputs in the sandbox.
        checks.AddRange(review.Check(bundle, manifest));
        checks.Add(new("risk", true, ModuleReview.RiskSummary(manifest)));
        var lastApproved = await db.Versions.AsNoTracking().Where(v => v.PluginId == manifest.Id && v.Status == VersionStatus.Approved)
            .OrderByDescending(v => v.DecidedAt).Select(v => new { v.Version, v.Bundle }).FirstOrDefaultAsync(ct);
        var approvedManifest = lastApproved is null ? null : ManifestValidator.Parse(PluginBundle.Read(new MemoryStream(lastApproved.Bundle, writable: false)).ManifestBytes).Manifest;
        var newSince = ModuleReview.NewSince(manifest, approvedManifest);
        checks.Add(new("changes", true, lastApproved is null ? "the first version of this plugin"
            : newSince.Count == 0 ? $"asks for nothing new since {lastApproved.Version}" : $"NEW since {lastApproved.Version}: {string.Join(", ", newSince)}"));

        var existing = await db.Versions.AsNoTracking().Where(v => v.PluginId == manifest.Id && v.Status != VersionStatus.Rejected)
            .Select(v => v.Version).ToListAsync(ct);
        var newest = existing.Select(SemVersion.Parse).DefaultIfEmpty().Max();
        var forward = newest is null || manifest.ParsedVersion > newest;
        checks.Add(new("version", forward, forward ? "newer than every version submitted before" : $"{manifest.Version} is not newer than {newest}: versions only move forward."));

        var passed = checks.All(c => c.Passed);
        if (!passed && (!inNamespace || reserved))
        {
            // Nothing is stored under an id the publisher does not own: it would block its owner's version numbers.
            return new SubmissionOutcome(null, checks);
        }
        if (!forward)
        {
            return new SubmissionOutcome(null, checks);
        }
        // A rejected version may be submitted again (fixed): the rejection's row gives up its (id, version).
        await db.Versions.Where(v => v.PluginId == manifest.Id && v.Version == manifest.Version && v.Status == VersionStatus.Rejected && v.PublisherId == publisher.Id)
            .ExecuteDeleteAsync(ct);
        var now = time.GetUtcNow();
        var approveNow = passed && publisher.FirstParty && options.Value.FirstParty.AutoApprove;
        var version = new PluginVersion
        {
            Id = Guid.CreateVersion7(), PluginId = manifest.Id, Version = manifest.Version, PublisherId = publisher.Id, SignerKeyId = signer ?? "",
            Bundle = content, Sha256 = Convert.ToHexStringLower(SHA256.HashData(content)), Length = content.LongLength,
            Status = !passed ? VersionStatus.Rejected : approveNow ? VersionStatus.Approved : VersionStatus.InReview,
            ChecksJson = JsonSerializer.Serialize(checks, PluginManifest.Json),
            PermissionsJson = MetadataPublisher.PermissionsJson(manifest.Permissions),
            DecisionNote = !passed ? "Rejected by the automated checks." : approveNow ? "Approved: a first-party version that passed every automated check." : null,
            SubmittedAt = now, DecidedAt = !passed || approveNow ? now : null,
        };
        db.Versions.Add(version);
        await db.SaveChangesAsync(ct);
        if (approveNow)
        {
            await metadata.PublishAsync(ct);
        }
        return new SubmissionOutcome(version, checks);
    }

    private static bool Under(string pluginId, string prefix) =>
        pluginId.StartsWith(prefix + ".", StringComparison.Ordinal);
}
