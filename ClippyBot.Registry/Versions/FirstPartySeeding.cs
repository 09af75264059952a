using ClippyBot.Plugins.Bundles;
using ClippyBot.Registry.Data;
using ClippyBot.Registry.Metadata;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ClippyBot.Registry.Versions;

/// <summary>
/// At start: the platform's own publisher (its key from configuration, the <c>dev.clippybot</c> namespace), and every
/// signed bundle in <c>Registry:FirstParty:BundlesFolder</c> (scanned at every check) not submitted yet goes through the automated checks. Replicas
/// starting together are harmless: the unique (id, version) index keeps one.
/// </summary>
public sealed partial class FirstPartySeeding(RegistryDbContext db, Submissions submissions, FirstPartySeeding.SubmittedBundles submitted, IOptions<RegistryOptions> options, TimeProvider time, ILogger<FirstPartySeeding> logger)
{
    public const string PublisherName = "ClippyBot";


    public async Task SeedAsync(CancellationToken ct)
    {
        var settings = options.Value.FirstParty;
        if (settings.PublicKey.Length == 0)
        {
            return;
        }
        var publicKey = Convert.FromBase64String(settings.PublicKey);
        var publisher = await db.Publishers.SingleOrDefaultAsync(p => p.FirstParty && p.Name == PublisherName, ct);
        if (publisher is null)
        {
            publisher = new Publisher { Id = Guid.CreateVersion7(), Name = PublisherName, FirstParty = true, CreatedAt = time.GetUtcNow() };
            db.Publishers.Add(publisher);
            db.Namespaces.Add(new PluginNamespace { Prefix = Submissions.FirstPartyNamespace, PublisherId = publisher.Id, ClaimedAt = time.GetUtcNow() });
        }
        var keyId = PluginSigning.KeyIdOf(publicKey);
        if (!await db.PublisherKeys.AnyAsync(k => k.KeyId == keyId, ct))
        {
            db.PublisherKeys.Add(new PublisherKey { KeyId = keyId, PublisherId = publisher.Id, PublicKey = publicKey, AddedAt = time.GetUtcNow() });
        }
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            // Another replica starting at the same moment created the publisher (or key) first.
            db.ChangeTracker.Clear();
            publisher = await db.Publishers.SingleAsync(p => p.FirstParty && p.Name == PublisherName, ct);
        }

        if (settings.BundlesFolder.Length == 0 || !Directory.Exists(settings.BundlesFolder))
        {
            return;
        }
        foreach (var file in Directory.EnumerateFiles(settings.BundlesFolder, "*.cbp").Order(StringComparer.Ordinal))
        {
            var content = await File.ReadAllBytesAsync(file, ct);
            var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(content));
            if (submitted.Sha256s.ContainsKey(sha) || await db.Versions.AnyAsync(v => v.Sha256 == sha, ct))
            {
                continue;
            }
            submitted.Sha256s[sha] = true;
            try
            {
                var outcome = await submissions.SubmitAsync(publisher, content, ct);
                LogSubmitted(logger, Path.GetFileName(file), outcome.Version?.Status.ToString() ?? "refused",
                    string.Join("; ", outcome.Checks.Where(c => !c.Passed).Select(c => $"{c.Check}: {c.Detail}")));
            }
            catch (DbUpdateException)
            {
                // Another replica stored the same version first.
                db.ChangeTracker.Clear();
            }
        }
    }

    [LoggerMessage(1, LogLevel.Information, "First-party bundle {File} submitted: {Status} {Failures}")]
    private static partial void LogSubmitted(ILogger logger, string file, string status, string failures);

    /// <summary>Bundles this process already submitted, whatever became of them (a singleton: the folder is scanned at every check).</summary>
    public sealed class SubmittedBundles
    {
        public System.Collections.Concurrent.ConcurrentDictionary<string, bool> Sha256s { get; } = new(StringComparer.Ordinal);
    }
}
