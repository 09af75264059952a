using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ClippyBot.Api.Data.Migrations
{
    /// <inheritdoc />
    public partial class AuditChainKeyed : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<bool>(
                name: "Keyed",
                table: "AuditEntries",
                type: "boolean",
                nullable: false,
                defaultValue: false);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "Keyed",
                table: "AuditEntries");
        }
    }
}
