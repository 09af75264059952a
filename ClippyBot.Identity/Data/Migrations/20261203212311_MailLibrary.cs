using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ClippyBot.Identity.Data.Migrations
{
    /// <summary>The mail outbox's entity moved to the ClippyBot.Email library: only its type name changed, not the schema.</summary>
    public partial class MailLibrary : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {

        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {

        }
    }
}
