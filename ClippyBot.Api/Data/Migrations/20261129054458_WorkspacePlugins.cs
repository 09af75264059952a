using System;
using System.Collections.Generic;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ClippyBot.Api.Data.Migrations
{
    /// <inheritdoc />
    public partial class WorkspacePlugins : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "WorkspacePlugins",
                columns: table => new
                {
                    WorkspaceId = table.Column<Guid>(type: "uuid", nullable: false),
                    PluginId = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    ConsentedVersion = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    GrantedPermissions = table.Column<List<string>>(type: "text[]", nullable: false),
                    ConfigurationJson = table.Column<string>(type: "text", nullable: false),
                    InstalledBy = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    InstalledAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_WorkspacePlugins", x => new { x.WorkspaceId, x.PluginId });
                    table.ForeignKey(
                        name: "FK_WorkspacePlugins_Workspaces_WorkspaceId",
                        column: x => x.WorkspaceId,
                        principalTable: "Workspaces",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "WorkspacePlugins");
        }
    }
}
