/* Schema migrations: the SQL files of db/migrations, embedded in the binary at build time, applied in order by
 * `staccato migrate`. */
#ifndef SC_DB_MIGRATE_H
#define SC_DB_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sc_migration {
    int version;
    const char *name;
    const char *sql;
} sc_migration;

extern const sc_migration sc_migrations[];
extern const size_t sc_migrations_count;

/* The newest schema version this build knows. */
int sc_migrate_latest(void);

/* Applies every migration newer than the database's, each in its own transaction and recorded in
 * schema_migrations, under an advisory lock so that several processes can run it at once. Blocking: for the
 * command line only, never on the server's loop. Returns 0, or -1 with a message on stderr. */
int sc_migrate_run(const char *conninfo, bool quiet);

/* Reads the database's schema version with a short blocking connect (at startup, before the loop runs).
 * Returns 0 and sets *version (0 when never migrated), or -1 when the database cannot be reached. */
int sc_migrate_current(const char *conninfo, int connect_timeout_s, int *version);

#endif
