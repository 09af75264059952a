namespace ClippyBot.Contracts;

/// <summary>
/// Who brings the schema up to date (<c>Database:Migrations</c>, set by the AppHost for each service): <see cref="Apply"/> — the service itself at start-up
/// (tests, a single-process setup); <see cref="Await"/> — a separate migrator did or will, as the database's owner role,
/// and the service (connected as a role without DDL) waits until the schema is current; <see cref="Only"/> — this
/// process is that migrator: it migrates every database of the service and exits.
/// </summary>
public enum MigrationMode
{
    Apply,
    Await,
    Only,
}
