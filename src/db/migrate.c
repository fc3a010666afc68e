#include "db/migrate.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Any fixed number: every process migrating this database takes the same lock. */
#define MIGRATION_LOCK_KEY "7216538400551"

int sc_migrate_latest(void) { return sc_migrations_count ? sc_migrations[sc_migrations_count - 1].version : 0; }

static int exec_ok(PGconn *c, const char *sql, const char *what)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "staccato: migrate: %s: %s", what, PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

static int read_version(PGconn *c, int *version)
{
    PGresult *r = PQexec(c, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        int missing = state && strcmp(state, "42P01") == 0; /* undefined_table: never migrated */
        PQclear(r);
        if (missing) {
            *version = 0;
            return 0;
        }
        return -1;
    }
    *version = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

int sc_migrate_current(const char *conninfo, int connect_timeout_s, int *version)
{
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", connect_timeout_s);
    const char *keys[] = {"dbname", "connect_timeout", NULL};
    const char *vals[] = {conninfo, timeout, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    int rc = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PQsetNoticeProcessor(c, NULL, NULL);
        rc = read_version(c, version);
    }
    PQfinish(c);
    return rc;
}

static void quiet_notices(void *arg, const char *message) {}

int sc_migrate_run(const char *conninfo, bool quiet)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "staccato: migrate: cannot connect to the database: %s", PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    PQsetNoticeProcessor(c, quiet_notices, NULL);
    int rc = -1, current = 0, applied = 0;
    if (exec_ok(c, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", "taking the migration lock") != 0)
        goto out;
    if (exec_ok(c,
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())",
                "creating schema_migrations") != 0)
        goto unlock;
    if (read_version(c, &current) != 0) {
        fprintf(stderr, "staccato: migrate: cannot read the schema version: %s", PQerrorMessage(c));
        goto unlock;
    }
    if (current > sc_migrate_latest()) {
        fprintf(stderr, "staccato: migrate: the database is at version %d, newer than this build knows (%d)\n",
                current, sc_migrate_latest());
        goto unlock;
    }
    for (size_t i = 0; i < sc_migrations_count; i++) {
        const sc_migration *m = &sc_migrations[i];
        if (m->version <= current)
            continue;
        char what[160];
        snprintf(what, sizeof(what), "migration %04d_%s", m->version, m->name);
        if (exec_ok(c, "BEGIN", what) != 0)
            goto unlock;
        if (exec_ok(c, m->sql, what) != 0) {
            exec_ok(c, "ROLLBACK", what);
            goto unlock;
        }
        char version[16];
        snprintf(version, sizeof(version), "%d", m->version);
        const char *params[] = {version, m->name};
        PGresult *r = PQexecParams(c, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, NULL,
                                   params, NULL, NULL, 0);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "staccato: migrate: recording %s: %s", what, PQresultErrorMessage(r));
        PQclear(r);
        if (!ok) {
            exec_ok(c, "ROLLBACK", what);
            goto unlock;
        }
        if (exec_ok(c, "COMMIT", what) != 0)
            goto unlock;
        applied++;
        if (!quiet)
            printf("applied %04d_%s\n", m->version, m->name);
    }
    if (!quiet)
        printf("schema at version %d (%d migration%s applied)\n", applied ? sc_migrate_latest() : current, applied,
               applied == 1 ? "" : "s");
    rc = 0;
unlock:
    exec_ok(c, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")", "releasing the migration lock");
out:
    PQfinish(c);
    return rc;
}
