namespace ClippyBot.Api.Workspaces;

/// <summary>What a member may do inside a workspace (seed §3.4). Endpoints declare one; roles grant a set.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "The domain's word; not a CAS permission type.")]
public enum Permission
{
    WorkspaceSettings,
    MemberManagement,
    DataRead,
    DataWrite,
    PluginManagement,
    ApiKeyManagement,
    BillingDetails,
    AuditLogRead,
    /// <summary>Deleting the workspace: owners only.</summary>
    WorkspaceDelete,
}

public enum WorkspaceRole
{
    Owner,
    Admin,
    Member,
    Viewer,
    Billing,
}

/// <summary>The permission matrix, written once. The README's table is generated from the same data (see tests).</summary>
public static class RolePermissions
{
    private static readonly Dictionary<WorkspaceRole, IReadOnlySet<Permission>> Matrix = new()
    {
        [WorkspaceRole.Owner] = new HashSet<Permission>(Enum.GetValues<Permission>()),
        [WorkspaceRole.Admin] = new HashSet<Permission>
        {
            Permission.WorkspaceSettings, Permission.MemberManagement, Permission.DataRead, Permission.DataWrite,
            Permission.PluginManagement, Permission.ApiKeyManagement, Permission.AuditLogRead,
        },
        [WorkspaceRole.Member] = new HashSet<Permission> { Permission.DataRead, Permission.DataWrite },
        [WorkspaceRole.Viewer] = new HashSet<Permission> { Permission.DataRead },
        [WorkspaceRole.Billing] = new HashSet<Permission> { Permission.BillingDetails },
    };

    public static bool Grants(WorkspaceRole role, Permission permission) => Matrix[role].Contains(permission);

    public static IReadOnlySet<Permission> Of(WorkspaceRole role) => Matrix[role];
}
