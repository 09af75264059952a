using System.Text.RegularExpressions;
using Npgsql;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>
/// Least privilege in PostgreSQL: each database gets two login roles and nobody else may connect to it.
/// <list type="bullet">
/// <item><c>{db}_owner</c> owns the database, its schema and every object in it; migrations run as it (a separate
/// migrator process, never the running service).</item>
/// <item><c>{db}_app</c> is what the running service connects as: rows only (SELECT, INSERT, UPDATE, DELETE; sequences),
/// no DDL — so it cannot drop or disable a trigger (that needs ownership), create tables, or read another database.</item>
/// </list>
/// Neither is a superuser or may create databases or roles. Applied by the AppHost (local mode) as the cluster's
/// superuser, idempotently on every start (passwords re-set, objects of older clusters re-owned), and by the tests.
/// </summary>
public static partial class DatabaseRoles
{
    public static string Owner(string database) => database + "_owner";

    public static string App(string database) => database + "_app";

    /// <summary>Creates or updates both roles of <paramref name="database"/> and its grants.</summary>
    /// <param name="superuserConnectionString">A superuser connection to any database of the cluster.</param>
    public static async Task EnsureAsync(string superuserConnectionString, string database, string ownerPassword, string appPassword, CancellationToken ct)
    {
        var owner = Owner(database);
        var app = App(database);
        foreach (var name in new[] { database, owner, app })
        {
            if (!SafeName().IsMatch(name))
            {
                throw new ArgumentException($"'{name}' is not a plain lower-case identifier.", nameof(database));
            }
        }
        foreach (var password in new[] { ownerPassword, appPassword })
        {
            if (!SafePassword().IsMatch(password))
            {
                throw new ArgumentException("Role passwords are generated: 32+ letters and digits.", nameof(ownerPassword));
            }
        }

        var server = new NpgsqlConnectionStringBuilder(superuserConnectionString) { Database = "postgres", Pooling = false };
        await using (var connection = new NpgsqlConnection(server.ConnectionString))
        {
            await connection.OpenAsync(ct);
            await ExecuteAsync(connection, $"""
                DO $$ BEGIN
                  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{owner}') THEN CREATE ROLE {owner}; END IF;
                  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{app}') THEN CREATE ROLE {app}; END IF;
                END $$;
                ALTER ROLE {owner} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD '{ownerPassword}';
                ALTER ROLE {app} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT PASSWORD '{appPassword}';
                """, ct);
            if (await ScalarAsync(connection, $"SELECT 1 FROM pg_database WHERE datname = '{database}'", ct) is null)
            {
                await ExecuteAsync(connection, $"CREATE DATABASE {database} OWNER {owner}", ct);
            }
            await ExecuteAsync(connection, $"""
                ALTER DATABASE {database} OWNER TO {owner};
                REVOKE ALL ON DATABASE {database} FROM PUBLIC;
                GRANT CONNECT ON DATABASE {database} TO {app};
                """, ct);
        }

        await using (var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(server.ConnectionString) { Database = database }.ConnectionString))
        {
            await connection.OpenAsync(ct);
            // Objects made before the roles existed (clusters from older versions) change hands; then the grants.
            await ExecuteAsync(connection, $"""
                ALTER SCHEMA public OWNER TO {owner};
                REVOKE ALL ON SCHEMA public FROM PUBLIC;
                GRANT USAGE ON SCHEMA public TO {app};
                DO $$ DECLARE o record; BEGIN
                  FOR o IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND pg_get_userbyid(c.relowner) <> '{owner}'
                           AND NOT (c.relkind = 'S' AND EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
                  LOOP
                    EXECUTE format(CASE o.relkind WHEN 'S' THEN 'ALTER SEQUENCE public.%I OWNER TO {owner}'
                                                  WHEN 'v' THEN 'ALTER VIEW public.%I OWNER TO {owner}'
                                                  WHEN 'm' THEN 'ALTER MATERIALIZED VIEW public.%I OWNER TO {owner}'
                                                  ELSE 'ALTER TABLE public.%I OWNER TO {owner}' END, o.relname);
                  END LOOP;
                  FOR o IN SELECT p.oid::regprocedure AS signature FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                           WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> '{owner}'
                  LOOP
                    EXECUTE format('ALTER ROUTINE %s OWNER TO {owner}', o.signature);
                  END LOOP;
                END $$;
                GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app};
                GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {app};
                ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app};
                ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {app};
                """, ct);
        }
    }

    /// <summary><paramref name="connectionString"/> with the role and password swapped (same host, port and database).</summary>
    public static string As(string connectionString, string role, string password) =>
        new NpgsqlConnectionStringBuilder(connectionString) { Username = role, Password = password }.ConnectionString;

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(ct);
    }

    private static async Task<object?> ScalarAsync(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync(ct);
    }

    [GeneratedRegex("^[a-z][a-z0-9_]{0,62}$")]
    private static partial Regex SafeName();

    [GeneratedRegex("^[A-Za-z0-9]{32,128}$")]
    private static partial Regex SafePassword();
}
