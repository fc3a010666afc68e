/* `staccato user ...`: account management from the command line (the way to make the first admin). Blocking
 * libpq and hashing: command-line only, never on the server's loop. */
#ifndef SC_API_USER_CLI_H
#define SC_API_USER_CLI_H

#include "settings.h"

/* Runs `user <create|set-role|delete|list> ...` with args (without settings flags). Returns an exit code. */
int sc_user_cli(const sc_settings *st, int argc, char **argv);
/* Removes the user command's own options from argv (so that the rest can be read as settings flags), storing
 * them for sc_user_cli. Returns the new argc. */
int sc_user_cli_take_args(int argc, char **argv, int start);
/* Prints the user command's usage on standard error. */
void sc_user_cli_usage(void);

/* Creates (or promotes) an admin account if STACCATO_ADMIN_USERNAME/PASSWORD are set. Returns 0 or -1. */
int sc_user_ensure_admin(const sc_settings *st);

#endif
