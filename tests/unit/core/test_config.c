/* Settings: defaults, .env file, environment and flags in rising precedence, value parsing and errors. */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/config.h"

typedef struct test_settings {
    char *host;
    unsigned long long port;
    unsigned long long max_url_bytes;
    bool debug;
    char *log_format;
    char *env_file;
} test_settings;

#define F(field) offsetof(test_settings, field)

static const sc_setting table[] = {
    {"TEST_HOST", SC_SET_STRING, F(host), "0.0.0.0", "Address.", 0, 0, NULL},
    {"PORT", SC_SET_UINT, F(port), "5000", "Port.", 0, 65535, NULL},
    {"STACCATO_MAX_URL_BYTES", SC_SET_UINT, F(max_url_bytes), "8192", "URL limit.", 16, 1048576, NULL},
    {"STACCATO_DEBUG_ROUTES", SC_SET_BOOL, F(debug), "off", "Debug routes.", 0, 0, NULL},
    {"STACCATO_LOG_FORMAT", SC_SET_ENUM, F(log_format), "text", "Log format.", 0, 0, "text|json"},
    {"STACCATO_ENV_FILE", SC_SET_STRING, F(env_file), "", "Settings file.", 0, 0, NULL},
};
#define N (sizeof(table) / sizeof(table[0]))

static char err[512];
static char tmp_path[64];

static void clear_env(void)
{
    for (size_t i = 0; i < N; i++)
        unsetenv(table[i].env);
}

/* Loads with argv given as a NULL-terminated list after argv[0]; returns sc_config_load's result. *argi_out gets
 * the index of the first argument that was not a flag. */
static int load(test_settings *s, int *argi_out, const char *const *args)
{
    char *argv[32] = {"prog"};
    int argc = 1;
    for (; args && args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    int argi = 1;
    memset(s, 0, sizeof(*s));
    err[0] = '\0';
    int rc = sc_config_load(table, N, s, argc, argv, &argi, "STACCATO_ENV_FILE", err, sizeof(err));
    if (argi_out)
        *argi_out = argi;
    return rc;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void write_file(const char *text)
{
    FILE *f = fopen(tmp_path, "w");
    if (!CHECK(f != NULL))
        return;
    fputs(text, f);
    fclose(f);
}

static void test_flag_names(void)
{
    char out[64];
    sc_config_flag_name(&table[2], out, sizeof(out));
    CHECK_EQ_STR(out, "--max-url-bytes");
    sc_config_flag_name(&table[1], out, sizeof(out));
    CHECK_EQ_STR(out, "--port");
    sc_config_flag_name(&table[0], out, sizeof(out));
    CHECK_EQ_STR(out, "--test-host"); /* only the STACCATO_ prefix is dropped */
    sc_config_flag_name(&table[3], out, sizeof(out));
    CHECK_EQ_STR(out, "--debug-routes");
    char small[8];
    sc_config_flag_name(&table[2], small, sizeof(small));
    CHECK_EQ_STR(small, "--max-u"); /* truncated, terminated */
}

static void test_defaults(void)
{
    clear_env();
    test_settings s;
    int argi;
    CHECK_EQ_INT(load(&s, &argi, NULL), 0);
    CHECK_EQ_STR(s.host, "0.0.0.0");
    CHECK_EQ_UINT(s.port, 5000);
    CHECK_EQ_UINT(s.max_url_bytes, 8192);
    CHECK(s.debug == false);
    CHECK_EQ_STR(s.log_format, "text");
    CHECK_EQ_STR(s.env_file, "");
    CHECK_EQ_INT(argi, 1);
    sc_config_free(table, N, &s);
    CHECK(s.host == NULL && s.log_format == NULL && s.env_file == NULL);
}

static void test_precedence(void)
{
    clear_env();
    test_settings s;

    /* Environment beats default. */
    setenv("PORT", "6000", 1);
    setenv("TEST_HOST", "127.0.0.1", 1);
    CHECK_EQ_INT(load(&s, NULL, NULL), 0);
    CHECK_EQ_UINT(s.port, 6000);
    CHECK_EQ_STR(s.host, "127.0.0.1");
    CHECK_EQ_UINT(s.max_url_bytes, 8192);
    sc_config_free(table, N, &s);

    /* Flag beats environment; both flag forms. */
    int argi;
    CHECK_EQ_INT(load(&s, &argi, ARGS("--port=7000", "--test-host", "::1")), 0);
    CHECK_EQ_UINT(s.port, 7000);
    CHECK_EQ_STR(s.host, "::1");
    CHECK_EQ_INT(argi, 4);
    sc_config_free(table, N, &s);

    CHECK_EQ_INT(load(&s, &argi, ARGS("--port", "7001")), 0);
    CHECK_EQ_UINT(s.port, 7001);
    sc_config_free(table, N, &s);

    /* The last of repeated flags wins. */
    CHECK_EQ_INT(load(&s, NULL, ARGS("--port=1", "--port=2")), 0);
    CHECK_EQ_UINT(s.port, 2);
    sc_config_free(table, N, &s);

    /* .env < environment < flag. */
    write_file("PORT=8000\nSTACCATO_MAX_URL_BYTES=100\nTEST_HOST=from-file\n");
    setenv("STACCATO_ENV_FILE", tmp_path, 1);
    CHECK_EQ_INT(load(&s, NULL, ARGS("--test-host=from-flag")), 0);
    CHECK_EQ_UINT(s.port, 6000);         /* environment */
    CHECK_EQ_UINT(s.max_url_bytes, 100); /* file */
    CHECK_EQ_STR(s.host, "from-flag");   /* flag */
    sc_config_free(table, N, &s);
    clear_env();

    /* The file named by flag is read even though the flag comes after others, in both forms. */
    CHECK_EQ_INT(load(&s, NULL, ARGS("--port=1", "--env-file", tmp_path)), 0);
    CHECK_EQ_UINT(s.max_url_bytes, 100);
    CHECK_EQ_UINT(s.port, 1);
    CHECK_EQ_STR(s.host, "from-file");
    sc_config_free(table, N, &s);
    char flag[128];
    snprintf(flag, sizeof(flag), "--env-file=%s", tmp_path);
    CHECK_EQ_INT(load(&s, NULL, ARGS(flag)), 0);
    CHECK_EQ_UINT(s.port, 8000);
    sc_config_free(table, N, &s);
}

static void test_env_file_syntax(void)
{
    clear_env();
    setenv("STACCATO_ENV_FILE", tmp_path, 1);
    test_settings s;

    write_file("# a comment\n"
               "\n"
               "   # an indented comment\n"
               "export PORT=1234\n"
               "TEST_HOST = \"quoted host\"  \n"
               "STACCATO_LOG_FORMAT='json'\r\n"
               "OTHER_TOOL_SETTING=whatever\n"
               "\tSTACCATO_DEBUG_ROUTES=yes\n"
               "STACCATO_MAX_URL_BYTES=\"\"\n"); /* becomes empty: fails below */
    CHECK_EQ_INT(load(&s, NULL, NULL), -1);
    CHECK(strstr(err, "STACCATO_MAX_URL_BYTES") != NULL);
    sc_config_free(table, N, &s);

    write_file("# a comment\n"
               "\n"
               "   # an indented comment\n"
               "export PORT=1234\n"
               "TEST_HOST = \"quoted host\"  \n"
               "STACCATO_LOG_FORMAT='json'\r\n"
               "OTHER_TOOL_SETTING=whatever\n"
               "\tSTACCATO_DEBUG_ROUTES=yes\n"
               "STACCATO_MAX_URL_BYTES=64"); /* no final newline */
    CHECK_EQ_INT(load(&s, NULL, NULL), 0);
    CHECK_EQ_STR(err, "");
    CHECK_EQ_UINT(s.port, 1234);
    CHECK_EQ_STR(s.host, "quoted host");
    CHECK_EQ_STR(s.log_format, "json");
    CHECK(s.debug == true);
    CHECK_EQ_UINT(s.max_url_bytes, 64);
    sc_config_free(table, N, &s);

    /* Mismatched quotes stay; a value may contain '='. */
    write_file("TEST_HOST=\"half'\nSTACCATO_ENV_FILE_UNUSED=1\n");
    CHECK_EQ_INT(load(&s, NULL, NULL), 0);
    CHECK_EQ_STR(s.host, "\"half'");
    sc_config_free(table, N, &s);
    write_file("TEST_HOST=a=b\n");
    CHECK_EQ_INT(load(&s, NULL, NULL), 0);
    CHECK_EQ_STR(s.host, "a=b");
    sc_config_free(table, N, &s);

    /* A line without '=' is an error naming file and line. */
    write_file("# fine\nPORT=1\nnot a setting\n");
    CHECK_EQ_INT(load(&s, NULL, NULL), -1);
    char want[128];
    snprintf(want, sizeof(want), "%s:3:", tmp_path);
    CHECK(strstr(err, want) != NULL);
    sc_config_free(table, N, &s);
    write_file("=value\n");
    CHECK_EQ_INT(load(&s, NULL, NULL), -1);
    sc_config_free(table, N, &s);

    /* A bad value in the file names where it came from. */
    write_file("PORT=99999\n");
    CHECK_EQ_INT(load(&s, NULL, NULL), -1);
    snprintf(want, sizeof(want), "%s:1", tmp_path);
    CHECK(strstr(err, want) != NULL);
    CHECK(strstr(err, "PORT") != NULL);
    sc_config_free(table, N, &s);

    /* A named file that does not exist is an error; a default that does not exist is not. */
    setenv("STACCATO_ENV_FILE", "/nonexistent/staccato-test.env", 1);
    CHECK_EQ_INT(load(&s, NULL, NULL), -1);
    CHECK(strstr(err, "/nonexistent/staccato-test.env") != NULL);
    sc_config_free(table, N, &s);
    clear_env();

    static const sc_setting with_default[] = {
        {"PORT", SC_SET_UINT, 0, "5000", "Port.", 0, 65535, NULL},
        {"ENV_FILE", SC_SET_STRING, sizeof(unsigned long long), "/nonexistent/default.env", "File.", 0, 0, NULL},
    };
    struct {
        unsigned long long port;
        char *file;
    } d = {0};
    char *argv[] = {"prog"};
    int argi = 1;
    CHECK_EQ_INT(sc_config_load(with_default, 2, &d, 1, argv, &argi, "ENV_FILE", err, sizeof(err)), 0);
    CHECK_EQ_UINT(d.port, 5000);
    sc_config_free(with_default, 2, &d);
}

static void test_flags(void)
{
    clear_env();
    test_settings s;
    int argi;

    /* Flags stop at the first non-flag argument, and at "--". */
    CHECK_EQ_INT(load(&s, &argi, ARGS("--port=1", "serve", "--port=2")), 0);
    CHECK_EQ_UINT(s.port, 1);
    CHECK_EQ_INT(argi, 2);
    sc_config_free(table, N, &s);
    CHECK_EQ_INT(load(&s, &argi, ARGS("--port", "3", "--", "--port=4")), 0);
    CHECK_EQ_UINT(s.port, 3);
    CHECK_EQ_INT(argi, 4);
    sc_config_free(table, N, &s);

    /* Unknown flag. */
    CHECK_EQ_INT(load(&s, NULL, ARGS("--nope=1")), -1);
    CHECK(strstr(err, "unknown option '--nope'") != NULL);
    sc_config_free(table, N, &s);
    CHECK_EQ_INT(load(&s, NULL, ARGS("--por", "1")), -1); /* prefixes are not abbreviations */
    CHECK(strstr(err, "--por'") != NULL);
    sc_config_free(table, N, &s);
    CHECK_EQ_INT(load(&s, NULL, ARGS("--portx=1")), -1);
    sc_config_free(table, N, &s);

    /* A flag without its value. */
    CHECK_EQ_INT(load(&s, NULL, ARGS("--port")), -1);
    CHECK(strstr(err, "--port") != NULL);
    sc_config_free(table, N, &s);

    /* --flag= gives an empty value. */
    CHECK_EQ_INT(load(&s, NULL, ARGS("--test-host=")), 0);
    CHECK_EQ_STR(s.host, "");
    sc_config_free(table, N, &s);
}

static void test_numbers(void)
{
    clear_env();
    test_settings s;

    CHECK_EQ_INT(load(&s, NULL, ARGS("--port=65535", "--max-url-bytes=16")), 0);
    CHECK_EQ_UINT(s.port, 65535);
    CHECK_EQ_UINT(s.max_url_bytes, 16);
    sc_config_free(table, N, &s);

    CHECK_EQ_INT(load(&s, NULL, ARGS("--port=65536")), -1);
    CHECK(strstr(err, "PORT") != NULL && strstr(err, "65536") != NULL && strstr(err, "0 to 65535") != NULL);
    CHECK(strstr(err, "command line") != NULL);
    sc_config_free(table, N, &s);

    /* Below the minimum. */
    CHECK_EQ_INT(load(&s, NULL, ARGS("--max-url-bytes=15")), -1);
    CHECK(strstr(err, "16 to 1048576") != NULL);
    sc_config_free(table, N, &s);

    static const char *const bad[] = {"-1", "", "12x", " 80", "0x50", "99999999999999999999999", "1e3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("PORT", bad[i], 1);
        if (!CHECK_EQ_INT(load(&s, NULL, NULL), -1))
            fprintf(stderr, "  value '%s' was accepted\n", bad[i]);
        CHECK(strstr(err, "environment") != NULL);
        sc_config_free(table, N, &s);
    }
    clear_env();
}

static void test_bools_enums(void)
{
    clear_env();
    test_settings s;
    static const char *const yes[] = {"1", "on", "true", "yes", "ON", "True", "YES"};
    static const char *const no[] = {"0", "off", "false", "no", "OFF", "False", "No"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        setenv("STACCATO_DEBUG_ROUTES", yes[i], 1);
        CHECK_EQ_INT(load(&s, NULL, NULL), 0);
        CHECK(s.debug == true);
        sc_config_free(table, N, &s);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        char arg[64];
        snprintf(arg, sizeof(arg), "--debug-routes=%s", no[i]);
        setenv("STACCATO_DEBUG_ROUTES", "on", 1);
        CHECK_EQ_INT(load(&s, NULL, ARGS(arg)), 0);
        CHECK(s.debug == false);
        sc_config_free(table, N, &s);
    }
    clear_env();
    static const char *const bad[] = {"2", "y", "enabled", "", " on"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("STACCATO_DEBUG_ROUTES", bad[i], 1);
        CHECK_EQ_INT(load(&s, NULL, NULL), -1);
        CHECK(strstr(err, "expected on or off") != NULL);
        sc_config_free(table, N, &s);
    }
    clear_env();

    CHECK_EQ_INT(load(&s, NULL, ARGS("--log-format", "json")), 0);
    CHECK_EQ_STR(s.log_format, "json");
    sc_config_free(table, N, &s);
    CHECK_EQ_INT(load(&s, NULL, ARGS("--log-format=text")), 0);
    CHECK_EQ_STR(s.log_format, "text");
    sc_config_free(table, N, &s);
    static const char *const bad_enum[] = {"JSON", "xml", "", "tex", "texts", "text|json", "|"};
    for (size_t i = 0; i < sizeof(bad_enum) / sizeof(bad_enum[0]); i++) {
        char arg[64];
        snprintf(arg, sizeof(arg), "--log-format=%s", bad_enum[i]);
        if (!CHECK_EQ_INT(load(&s, NULL, ARGS(arg)), -1))
            fprintf(stderr, "  value '%s' was accepted\n", bad_enum[i]);
        CHECK(strstr(err, "expected one of text|json") != NULL);
        sc_config_free(table, N, &s);
    }
}

static void test_help(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!CHECK(f != NULL))
        return;
    sc_config_print_help(table, N, f);
    fclose(f);
    CHECK(strstr(text, "--max-url-bytes N\n      env STACCATO_MAX_URL_BYTES, default: 8192\n      URL limit.") !=
          NULL);
    CHECK(strstr(text, "--debug-routes on|off") != NULL);
    CHECK(strstr(text, "--log-format text|json") != NULL);
    CHECK(strstr(text, "--env-file VALUE\n      env STACCATO_ENV_FILE, default: (empty)") != NULL);
    free(text);
}

int main(void)
{
    snprintf(tmp_path, sizeof(tmp_path), "/tmp/staccato-test-config-%d.env", (int)getpid());
    test_flag_names();
    test_defaults();
    test_precedence();
    test_env_file_syntax();
    test_flags();
    test_numbers();
    test_bools_enums();
    test_help();
    unlink(tmp_path);
    clear_env();
    return check_report();
}
