using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ClippyBot.Identity.Data.Migrations
{
    /// <inheritdoc />
    public partial class RevocationMarkers : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "RevocationMarkers",
                columns: table => new
                {
                    Key = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    Value = table.Column<long>(type: "bigint", nullable: false),
                    ExpiresAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_RevocationMarkers", x => x.Key);
                });

            migrationBuilder.CreateIndex(
                name: "IX_RevocationMarkers_ExpiresAt",
                table: "RevocationMarkers",
                column: "ExpiresAt");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "RevocationMarkers");
        }
    }
}
