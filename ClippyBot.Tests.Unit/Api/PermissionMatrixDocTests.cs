using ClippyBot.Api.Workspaces;

namespace ClippyBot.Tests.Api;

[TestClass]
public sealed class PermissionMatrixDocTests
{
    [TestMethod]
    public void The_README_table_is_the_matrix_the_code_enforces()
    {
        var readme = File.ReadAllLines(Path.Combine(RepositoryRoot(), "README.md"));
        var header = Array.FindIndex(readme, l => l.StartsWith("| permission | owner | admin | member | viewer | billing |", StringComparison.Ordinal));
        Assert.IsGreaterThanOrEqualTo(0, header, "README has the permission table");
        var roles = new[] { WorkspaceRole.Owner, WorkspaceRole.Admin, WorkspaceRole.Member, WorkspaceRole.Viewer, WorkspaceRole.Billing };
        var documented = readme.Skip(header + 2).TakeWhile(l => l.StartsWith('|')).ToList();

        Assert.HasCount(Enum.GetValues<Permission>().Length, documented);
        foreach (var row in documented)
        {
            var cells = row.Trim('|').Split('|').Select(c => c.Trim()).ToArray();
            var permission = Enum.Parse<Permission>(cells[0]);
            for (var i = 0; i < roles.Length; i++)
            {
                Assert.AreEqual(RolePermissions.Grants(roles[i], permission), cells[i + 1] == "✓", $"{permission} for {roles[i]}");
            }
        }
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ClippyBot.sln")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? throw new InvalidOperationException("ClippyBot.sln not found above the test output.");
    }
}
