/* `staccato user ...` (api/user_cli.h): account management with blocking libpq, for the command line only. */
#include "api/user_cli.h"

#include <argon2.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/db.h"
#include "auth/password.h"
#include "core/random.h"

static char *opt_username, *opt_fullname, *opt_role, *opt_password;
static int opt_password_stdin;
static char *positional[4];
static int npositional;

void sc_user_cli_usage(void)
{
    fprintf(stderr, "usage: staccato user create --username NAME --fullname NAME [--role user|artist|admin]\n"
                    "                            (--password PASSWORD | --password-stdin)\n"
                    "       staccato user set-role USERNAME user|artist|admin\n"
                    "       staccato user delete USERNAME\n"
                    "       staccato user list\n"
                    "Settings flags (e.g. --database-url) may follow.\n");
}

int sc_user_cli_take_args(int argc, char **argv, int start)
{
    int out = start;
    for (int i = start; i < argc; i++) {
        char **dst = strcmp(argv[i], "--username") == 0   ? &opt_username
                     : strcmp(argv[i], "--fullname") == 0 ? &opt_fullname
                     : strcmp(argv[i], "--role") == 0     ? &opt_role
                     : strcmp(argv[i], "--password") == 0 ? &opt_password
                                                          : NULL;
        if (dst && i + 1 < argc) {
            *dst = argv[++i];
        } else if (strcmp(argv[i], "--password-stdin") == 0) {
            opt_password_stdin = 1;
        } else if (argv[i][0] != '-' && npositional < 4) {
            positional[npositional++] = argv[i];
        } else {
            argv[out++] = argv[i];
        }
    }
    return out;
}

static int valid_role(const char *r)
{
    return r && (strcmp(r, "user") == 0 || strcmp(r, "artist") == 0 || strcmp(r, "admin") == 0);
}

static PGconn *connect_db(const sc_settings *st)
{
    PGconn *c = PQconnectdb(st->database_url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "staccato: cannot connect to the database: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Runs sql with the text parameters that follow out, counted by the compiler (see SC_API_VALUES). */
#define EXEC(c, sql, out, ...) exec(c, sql, SC_API_NVALUES(__VA_ARGS__), SC_API_VALUES(__VA_ARGS__), out)

static int exec(PGconn *c, const char *sql, int n, const char *const *params, PGresult **out)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        fprintf(stderr, "staccato: %s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return 0;
}

static char *hash_password(const sc_settings *st, const char *password)
{
    unsigned char salt[16];
    sc_random_bytes(salt, sizeof(salt));
    size_t len = argon2_encodedlen((uint32_t)st->argon2_t, (uint32_t)st->argon2_m_kib, (uint32_t)st->argon2_p,
                                   sizeof(salt), 32, Argon2_id);
    char *enc = malloc(len);
    if (!enc || argon2id_hash_encoded((uint32_t)st->argon2_t, (uint32_t)st->argon2_m_kib, (uint32_t)st->argon2_p,
                                      password, strlen(password), salt, sizeof(salt), 32, enc, len) != ARGON2_OK) {
        free(enc);
        return NULL;
    }
    return enc;
}

/* Creates the account, or with promote_existing, makes an existing one of that name an admin. */
static int create_user(const sc_settings *st, PGconn *c, const char *username, const char *fullname,
                       const char *role, const char *password, int promote_existing)
{
    if (strlen(password) < st->password_min_length) {
        fprintf(stderr, "staccato: password is too short\n");
        return 1;
    }
    char *hash = hash_password(st, password);
    if (!hash) {
        fprintf(stderr, "staccato: cannot hash the password\n");
        return 1;
    }
    char id[40];
    sc_random_id("user", id, sizeof(id));
#define INSERT_USER "INSERT INTO users (id, username, password_hash, fullname, role) VALUES ($1, $2, $3, $4, $5) "
    const char *sql = promote_existing ? INSERT_USER
                          "ON CONFLICT ((lower(username))) DO UPDATE SET role = 'admin', "
                          "updated_at = now() RETURNING id"
                                       : INSERT_USER "RETURNING id";
#undef INSERT_USER
    PGresult *r;
    int rc = EXEC(c, sql, &r, id, username, hash, fullname, role);
    free(hash);
    if (rc != 0)
        return 1;
    if (!promote_existing)
        printf("%s\n", PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

static char *read_password_stdin(void)
{
    static char buf[1100];
    if (!fgets(buf, sizeof(buf), stdin))
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

int sc_user_cli(const sc_settings *st, int argc, char **argv)
{
    const char *action = npositional ? positional[0] : NULL;
    if (!action) {
        sc_user_cli_usage();
        return 2;
    }
    int rc = 2;
    PGconn *c = NULL;
    if (strcmp(action, "create") == 0) {
        const char *role = opt_role ? opt_role : "user";
        const char *password = opt_password_stdin ? read_password_stdin() : opt_password;
        if (!opt_username || !opt_fullname || !password || !valid_role(role)) {
            sc_user_cli_usage();
            return 2;
        }
        if (!(c = connect_db(st)))
            return 1;
        rc = create_user(st, c, opt_username, opt_fullname, role, password, 0);
    } else if (strcmp(action, "set-role") == 0 && npositional == 3 && valid_role(positional[2])) {
        if (!(c = connect_db(st)))
            return 1;
        PGresult *r;
        const char *sql = "UPDATE users SET role = $2, updated_at = now() WHERE lower(username) = lower($1) "
                          "RETURNING id";
        rc = EXEC(c, sql, &r, positional[1], positional[2]) != 0 ? 1 : 0;
        if (rc == 0) {
            if (PQntuples(r) == 0) {
                fprintf(stderr, "staccato: no user named %s\n", positional[1]);
                rc = 1;
            }
            PQclear(r);
        }
    } else if (strcmp(action, "delete") == 0 && npositional == 2) {
        if (!(c = connect_db(st)))
            return 1;
        PGresult *r;
        const char *sql = "DELETE FROM users WHERE lower(username) = lower($1) RETURNING id";
        rc = EXEC(c, sql, &r, positional[1]) != 0 ? 1 : 0;
        if (rc == 0) {
            if (PQntuples(r) == 0) {
                fprintf(stderr, "staccato: no user named %s\n", positional[1]);
                rc = 1;
            }
            PQclear(r);
        }
    } else if (strcmp(action, "list") == 0) {
        if (!(c = connect_db(st)))
            return 1;
        PGresult *r;
        const char *sql = "SELECT id, username, role, fullname FROM users ORDER BY created_at, id";
        rc = exec(c, sql, 0, NULL, &r) != 0 ? 1 : 0;
        if (rc == 0) {
            for (int i = 0; i < PQntuples(r); i++)
                printf("%s\t%s\t%s\t%s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                       PQgetvalue(r, i, 3));
            PQclear(r);
        }
    } else {
        sc_user_cli_usage();
    }
    PQfinish(c);
    return rc;
}

int sc_user_ensure_admin(const sc_settings *st)
{
    if (!*st->admin_username)
        return 0;
    PGconn *c = connect_db(st);
    if (!c)
        return -1;
    int rc = create_user(st, c, st->admin_username, "Administrator", "admin", st->admin_password, 1);
    PQfinish(c);
    return rc == 0 ? 0 : -1;
}
