#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/slice.h"

void sc_config_flag_name(const sc_setting *s, char *out, size_t outlen)
{
    const char *name = s->env;
    if (strncmp(name, "STACCATO_", 9) == 0)
        name += 9;
    size_t o = 0;
    if (outlen < 3)
        return;
    out[o++] = '-';
    out[o++] = '-';
    for (; *name && o + 1 < outlen; name++)
        out[o++] = *name == '_' ? '-' : (char)tolower((unsigned char)*name);
    out[o] = '\0';
}

static int set_value(const sc_setting *s, void *out, const char *value, const char *origin, char *err,
                     size_t errlen)
{
    char *field = (char *)out + s->offset;
    switch (s->type) {
    case SC_SET_STRING:
        free(*(char **)field);
        *(char **)field = sc_strdup(value);
        return 0;
    case SC_SET_UINT: {
        unsigned long long v;
        if (sc_slice_to_u64(sc_slice_cstr(value), s->max, &v) != 0 || v < s->min) {
            snprintf(err, errlen, "invalid %s '%s' (from %s): expected a whole number from %llu to %llu", s->env,
                     value, origin, s->min, s->max);
            return -1;
        }
        *(unsigned long long *)field = v;
        return 0;
    }
    case SC_SET_BOOL: {
        static const char *const yes[] = {"1", "on", "true", "yes"}, *const no[] = {"0", "off", "false", "no"};
        for (int i = 0; i < 4; i++) {
            if (strcasecmp(value, yes[i]) == 0) {
                *(bool *)field = true;
                return 0;
            }
            if (strcasecmp(value, no[i]) == 0) {
                *(bool *)field = false;
                return 0;
            }
        }
        snprintf(err, errlen, "invalid %s '%s' (from %s): expected on or off", s->env, value, origin);
        return -1;
    }
    case SC_SET_ENUM: {
        size_t vl = strlen(value);
        for (const char *c = s->choices; *c;) {
            const char *bar = strchr(c, '|');
            size_t cl = bar ? (size_t)(bar - c) : strlen(c);
            if (cl == vl && strncmp(c, value, cl) == 0) {
                free(*(char **)field);
                *(char **)field = sc_strdup(value);
                return 0;
            }
            c += cl + (bar ? 1 : 0);
        }
        snprintf(err, errlen, "invalid %s '%s' (from %s): expected one of %s", s->env, value, origin, s->choices);
        return -1;
    }
    }
    return -1;
}

static const sc_setting *find_env(const sc_setting *table, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(table[i].env) == len && strncmp(table[i].env, name, len) == 0)
            return &table[i];
    return NULL;
}

/* Reads KEY=VALUE lines; '#' starts a comment line, an optional "export " prefix and matching quotes around the
 * value are removed. Keys this program does not know are left alone (the file may serve other tools too). */
static int load_env_file(const sc_setting *table, size_t n, void *out, const char *path, bool required, char *err,
                         size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (!required && errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot read settings file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        lineno++;
        sc_slice l = sc_slice_trim(sc_slice_cstr(line));
        while (l.len && (l.ptr[l.len - 1] == '\n' || l.ptr[l.len - 1] == '\r'))
            l.len--;
        l = sc_slice_trim(l);
        if (l.len == 0 || l.ptr[0] == '#')
            continue;
        if (l.len > 7 && strncmp(l.ptr, "export ", 7) == 0) {
            l.ptr += 7;
            l.len -= 7;
        }
        long eq = sc_slice_find(l, '=');
        if (eq <= 0) {
            snprintf(err, errlen, "%s:%d: expected KEY=VALUE", path, lineno);
            rc = -1;
            break;
        }
        sc_slice key = sc_slice_trim((sc_slice){l.ptr, (size_t)eq});
        sc_slice val = sc_slice_trim((sc_slice){l.ptr + eq + 1, l.len - (size_t)eq - 1});
        if (val.len >= 2 && (val.ptr[0] == '"' || val.ptr[0] == '\'') && val.ptr[val.len - 1] == val.ptr[0]) {
            val.ptr++;
            val.len -= 2;
        }
        const sc_setting *s = find_env(table, n, key.ptr, key.len);
        if (!s)
            continue;
        char value[4096];
        snprintf(value, sizeof(value), "%.*s", (int)val.len, val.ptr);
        char origin[512];
        snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
        rc = set_value(s, out, value, origin, err, errlen);
    }
    fclose(f);
    return rc;
}

int sc_config_load(const sc_setting *table, size_t n, void *out, int argc, char **argv, int *argi,
                   const char *env_file_env, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if (set_value(&table[i], out, table[i].def, "default", err, errlen) != 0)
            return -1;

    /* The settings file is named before anything else is read: by flag, then by environment. */
    const char *env_file = NULL;
    bool required = false;
    char env_flag[128];
    const sc_setting *env_file_setting = env_file_env ? find_env(table, n, env_file_env, strlen(env_file_env))
                                                      : NULL;
    if (env_file_setting) {
        sc_config_flag_name(env_file_setting, env_flag, sizeof(env_flag));
        size_t fl = strlen(env_flag);
        for (int i = *argi; i < argc; i++) {
            if (strcmp(argv[i], env_flag) == 0 && i + 1 < argc) {
                env_file = argv[i + 1];
                required = true;
            } else if (strncmp(argv[i], env_flag, fl) == 0 && argv[i][fl] == '=') {
                env_file = argv[i] + fl + 1;
                required = true;
            }
        }
        if (!env_file && getenv(env_file_env)) {
            env_file = getenv(env_file_env);
            required = true;
        }
        if (!env_file)
            env_file = env_file_setting->def;
        if (env_file && *env_file && load_env_file(table, n, out, env_file, required, err, errlen) != 0)
            return -1;
    }

    for (size_t i = 0; i < n; i++) {
        const char *v = getenv(table[i].env);
        if (v && set_value(&table[i], out, v, "environment", err, errlen) != 0)
            return -1;
    }

    int i = *argi;
    while (i < argc && strncmp(argv[i], "--", 2) == 0) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const sc_setting *s = NULL;
        char flag[128];
        for (size_t k = 0; k < n && !s; k++) {
            sc_config_flag_name(&table[k], flag, sizeof(flag));
            if (strlen(flag) == name_len && strncmp(flag, arg, name_len) == 0)
                s = &table[k];
        }
        if (!s) {
            snprintf(err, errlen, "unknown option '%.*s' (see --help)", (int)name_len, arg);
            return -1;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, errlen, "option '%s' needs a value", arg);
            return -1;
        }
        if (set_value(s, out, value, "command line", err, errlen) != 0)
            return -1;
        i++;
    }
    *argi = i;
    return 0;
}

void sc_config_free(const sc_setting *table, size_t n, void *out)
{
    for (size_t i = 0; i < n; i++) {
        if (table[i].type == SC_SET_STRING || table[i].type == SC_SET_ENUM) {
            char **field = (char **)((char *)out + table[i].offset);
            free(*field);
            *field = NULL;
        }
    }
}

void sc_config_print_help(const sc_setting *table, size_t n, FILE *f)
{
    for (size_t i = 0; i < n; i++) {
        char flag[128];
        sc_config_flag_name(&table[i], flag, sizeof(flag));
        const char *metavar = table[i].type == SC_SET_UINT   ? "N"
                              : table[i].type == SC_SET_BOOL ? "on|off"
                              : table[i].type == SC_SET_ENUM ? table[i].choices
                                                             : "VALUE";
        fprintf(f, "  %s %s\n      env %s, default: %s\n      %s\n", flag, metavar, table[i].env,
                *table[i].def ? table[i].def : "(empty)", table[i].help);
    }
}
