/* Settings from defaults, an optional .env file, the environment and command-line flags, in rising precedence.
 *
 * A program describes its settings once, in a table of sc_setting; each row names the environment variable, and
 * the flag is derived from it (STACCATO_MAX_URL_BYTES -> --max-url-bytes, PORT -> --port), so the two never drift
 * apart. Values land in a caller-owned struct through offsets. */
#ifndef SC_CORE_CONFIG_H
#define SC_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum { SC_SET_STRING, SC_SET_UINT, SC_SET_BOOL, SC_SET_ENUM } sc_setting_type;

typedef struct sc_setting {
    const char *env; /* environment variable, e.g. "STACCATO_MAX_URL_BYTES" */
    sc_setting_type type;
    size_t offset;               /* where the value lives in the settings struct */
    const char *def;             /* default, as it would be written in the environment */
    const char *help;            /* one line for --help */
    unsigned long long min, max; /* for SC_SET_UINT */
    const char *choices;         /* for SC_SET_ENUM: "text|json" */
} sc_setting;

/* Field types behind each sc_setting_type: char * (owned), unsigned long long, bool, char * (owned). */

/* Loads settings into `out`. argv[*argi..argc) are examined; flags are consumed and *argi is left at the first
 * argument that is not a flag. Returns 0, or -1 with a one-line message in err. */
int sc_config_load(const sc_setting *table, size_t n, void *out, int argc, char **argv, int *argi,
                   const char *env_file_env, char *err, size_t errlen);
/* Frees the strings held in `out`. */
void sc_config_free(const sc_setting *table, size_t n, void *out);
/* Prints one block per setting: flag, environment variable, default and help. */
void sc_config_print_help(const sc_setting *table, size_t n, FILE *f);
/* Writes the flag name of a setting (e.g. "--max-url-bytes") into out. */
void sc_config_flag_name(const sc_setting *s, char *out, size_t outlen);

#endif
