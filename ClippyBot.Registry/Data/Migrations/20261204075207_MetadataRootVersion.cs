using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ClippyBot.Registry.Data.Migrations
{
    /// <inheritdoc />
    public partial class MetadataRootVersion : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "RootVersion",
                table: "MetadataFiles",
                type: "bigint",
                nullable: false,
                defaultValue: 0L);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "RootVersion",
                table: "MetadataFiles");
        }
    }
}
