namespace ClippyBot.Registry.Metadata;

/// <summary>One signed TUF metadata file the registry published (targets, snapshot or timestamp; root comes from its offline keys).</summary>
public sealed class MetadataFile
{
    public string Role { get; set; } = "";
    public long Version { get; set; }
    public byte[] Content { get; set; } = [];
    public DateTimeOffset Expires { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>The root version whose keys signed it: a replica still on an older root stops signing once a newer one is in use.</summary>
    public long RootVersion { get; set; }
}
