namespace ClippyBot.Api.Secrets;

/// <summary>
/// A named secret of a workspace (an API token a plugin needs, a webhook signing key…). The value is stored only as an
/// envelope (AES-256-GCM, bound to this row, column and workspace); <see cref="KeyId"/> repeats its data key id so
/// rotation finds rows still on an old key. Plugins granted <c>secrets:read</c> for this name receive it per invocation.
/// </summary>
public sealed class WorkspaceSecret
{
    public Guid Id { get; set; }

    public Guid WorkspaceId { get; set; }

    public required string Name { get; set; }

    public required byte[] Value { get; set; }

    public Guid KeyId { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }

    public required string UpdatedBy { get; set; }
}
