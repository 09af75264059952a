using System;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace ClippyBot.Identity.Data.Migrations
{
    /// <inheritdoc />
    public partial class AuditAnchors : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "AuditAnchors",
                columns: table => new
                {
                    Id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    ChainId = table.Column<Guid>(type: "uuid", nullable: false),
                    EntryId = table.Column<long>(type: "bigint", nullable: false),
                    Hash = table.Column<byte[]>(type: "bytea", maxLength: 32, nullable: false),
                    At = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_AuditAnchors", x => x.Id);
                });

            // Append-only in the database too: even a compromised Identity (its runtime role cannot drop triggers) cannot
            // change or remove an anchor.
            migrationBuilder.Sql("""
                CREATE FUNCTION audit_anchors_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  RAISE EXCEPTION 'audit anchors are append-only';
                END $$;
                CREATE TRIGGER audit_anchors_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON "AuditAnchors"
                  FOR EACH STATEMENT EXECUTE FUNCTION audit_anchors_append_only();
                """);

            migrationBuilder.CreateIndex(
                name: "IX_AuditAnchors_ChainId_EntryId",
                table: "AuditAnchors",
                columns: new[] { "ChainId", "EntryId" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""DROP TRIGGER IF EXISTS audit_anchors_append_only ON "AuditAnchors"; DROP FUNCTION IF EXISTS audit_anchors_append_only();""");
            migrationBuilder.DropTable(
                name: "AuditAnchors");
        }
    }
}
