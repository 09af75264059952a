using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ClippyBot.Api.Data.Migrations
{
    /// <inheritdoc />
    public partial class WorkspaceStorage : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "StorageBytes",
                table: "Workspaces",
                type: "bigint",
                nullable: false,
                defaultValue: 0L);

            // Existing workspaces start from what their files use.
            migrationBuilder.Sql("""
                UPDATE "Workspaces" w SET "StorageBytes" = COALESCE((SELECT SUM(f."Size") FROM "StoredFiles" f WHERE f."WorkspaceId" = w."Id"), 0);
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "StorageBytes",
                table: "Workspaces");
        }
    }
}
