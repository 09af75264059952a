using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ClippyBot.PluginHost.Data.Migrations
{
    /// <inheritdoc />
    public partial class RegistryTrustSigners : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "Signers",
                table: "TrustedMetadata",
                type: "character varying(2100)",
                maxLength: 2100,
                nullable: false,
                defaultValue: "");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "Signers",
                table: "TrustedMetadata");
        }
    }
}
