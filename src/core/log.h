/* Logging: an error log on stderr with levels, and an access log on stdout, each as text or JSON lines.
 *
 * Error-log lines are written at once. Access-log lines are gathered in a buffer and written with one write(2)
 * per loop iteration (sc_log_flush from a uv_check handle) or when the buffer fills, so that logging every request
 * costs a memcpy rather than a system call. */
#ifndef SC_CORE_LOG_H
#define SC_CORE_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/slice.h"

typedef enum { SC_LOG_DEBUG, SC_LOG_INFO, SC_LOG_WARN, SC_LOG_ERROR } sc_log_level;

/* Parses "debug", "info", "warn", "error"; returns -1 for anything else. */
int sc_log_level_parse(const char *s);
void sc_log_configure(sc_log_level level, bool json, bool access_log);
bool sc_log_enabled(sc_log_level level);
bool sc_log_access_enabled(void);

void sc_log(sc_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define sc_log_debug(...) (sc_log_enabled(SC_LOG_DEBUG) ? sc_log(SC_LOG_DEBUG, __VA_ARGS__) : (void)0)
#define sc_log_info(...) sc_log(SC_LOG_INFO, __VA_ARGS__)
#define sc_log_warn(...) sc_log(SC_LOG_WARN, __VA_ARGS__)
#define sc_log_error(...) sc_log(SC_LOG_ERROR, __VA_ARGS__)

typedef struct sc_access_entry {
    sc_slice client;
    sc_slice method;
    sc_slice path;
    int status;
    uint64_t bytes;
    uint64_t duration_us;
} sc_access_entry;

/* Appends one access-log line. */
void sc_log_access(const sc_access_entry *e);
/* Writes out buffered access-log lines. */
void sc_log_flush(void);
/* Flushes and frees the buffer (at shutdown). */
void sc_log_shutdown(void);

/* Writes the current UTC time as 2026-11-22T10:00:00.123Z into out (at least 32 bytes). */
void sc_log_timestamp(char *out);

#endif
