using System;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace ClippyBot.PluginHost.Data.Migrations
{
    /// <inheritdoc />
    public partial class PluginCatalog : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "CrashLog",
                columns: table => new
                {
                    Id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    PluginId = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    Version = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    WorkspaceId = table.Column<Guid>(type: "uuid", nullable: false),
                    Outcome = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    Kind = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    Backtrace = table.Column<string>(type: "text", nullable: true),
                    FuelUsed = table.Column<long>(type: "bigint", nullable: false),
                    DurationMs = table.Column<double>(type: "double precision", nullable: false),
                    MemoryBytes = table.Column<long>(type: "bigint", nullable: false),
                    InputBytes = table.Column<int>(type: "integer", nullable: false),
                    InputSha256 = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    At = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_CrashLog", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "InstalledPlugins",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    PluginId = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    Version = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    ManifestBytes = table.Column<byte[]>(type: "bytea", nullable: false),
                    Wasm = table.Column<byte[]>(type: "bytea", nullable: false),
                    WasmSha256 = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    SignaturesJson = table.Column<string>(type: "text", nullable: false),
                    SignerKeyId = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    InstalledAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    Current = table.Column<bool>(type: "boolean", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_InstalledPlugins", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "Quarantines",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    PluginId = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    Version = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    WorkspaceId = table.Column<Guid>(type: "uuid", nullable: true),
                    Reason = table.Column<string>(type: "character varying(500)", maxLength: 500, nullable: false),
                    SetBy = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    At = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    ReleasedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    ReleasedBy = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Quarantines", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_CrashLog_PluginId_Version_At",
                table: "CrashLog",
                columns: new[] { "PluginId", "Version", "At" });

            migrationBuilder.CreateIndex(
                name: "IX_InstalledPlugins_PluginId",
                table: "InstalledPlugins",
                column: "PluginId",
                unique: true,
                filter: "\"Current\"");

            migrationBuilder.CreateIndex(
                name: "IX_InstalledPlugins_PluginId_Version",
                table: "InstalledPlugins",
                columns: new[] { "PluginId", "Version" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_Quarantines_PluginId_ReleasedAt",
                table: "Quarantines",
                columns: new[] { "PluginId", "ReleasedAt" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "CrashLog");

            migrationBuilder.DropTable(
                name: "InstalledPlugins");

            migrationBuilder.DropTable(
                name: "Quarantines");
        }
    }
}
