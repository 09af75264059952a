using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ClippyBot.Api.Data.Migrations
{
    /// <inheritdoc />
    public partial class AuditKeyedOnly : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // Entries written before the chain was keyed stay as they are; from now on the database refuses an unkeyed
            // one, so nobody holding the runtime role (which cannot drop or disable triggers) can slip a forged, plainly
            // hashed entry into a chain that verification would accept as a legacy prefix.
            migrationBuilder.Sql("""
                CREATE FUNCTION audit_entries_keyed_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  RAISE EXCEPTION 'audit entries are chained with the key; an unkeyed entry is refused';
                END $$;
                CREATE TRIGGER audit_entries_keyed_only BEFORE INSERT ON "AuditEntries"
                  FOR EACH ROW WHEN (NOT NEW."Keyed") EXECUTE FUNCTION audit_entries_keyed_only();
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                DROP TRIGGER audit_entries_keyed_only ON "AuditEntries";
                DROP FUNCTION audit_entries_keyed_only();
                """);
        }
    }
}
