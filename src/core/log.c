#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"

static sc_log_level min_level = SC_LOG_INFO;
static bool json_format;
static bool access_on = true;
static sc_buf access_buf;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int sc_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

void sc_log_configure(sc_log_level level, bool json, bool access_log)
{
    min_level = level;
    json_format = json;
    access_on = access_log;
}

bool sc_log_enabled(sc_log_level level) { return level >= min_level; }
bool sc_log_access_enabled(void) { return access_on; }

void sc_log_timestamp(char *out)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100,
             (int)(ts.tv_nsec / 1000000) % 1000);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* A log that cannot be written must not take the server down. */
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Appends s as the inside of a JSON string. */
static void json_escape(sc_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            sc_buf_append_char(b, '\\');
            sc_buf_append_char(b, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            sc_buf_append(b, u, 6);
        } else {
            sc_buf_append_char(b, (char)c);
        }
    }
}

/* Appends s for a text line: control bytes and spaces become escapes, so one request is always one line. */
static void text_escape(sc_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (n == 0) {
        sc_buf_append_char(b, '-');
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == '\\') {
            char x[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            sc_buf_append(b, x, 4);
        } else {
            sc_buf_append_char(b, (char)c);
        }
    }
}

void sc_log(sc_log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char ts[32];
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
    sc_log_timestamp(ts);
    sc_buf line = {0};
    if (json_format) {
        sc_buf_printf(&line, "{\"time\":\"%s\",\"level\":\"%s\",\"pid\":%d,\"message\":\"", ts, level_names[level],
                      (int)getpid());
        json_escape(&line, msg, len);
        sc_buf_append_str(&line, "\"}\n");
    } else {
        /* One event, one line: line breaks inside messages (libpq's often have them) become spaces. */
        while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
            len--;
        for (size_t i = 0; i < len; i++)
            if (msg[i] == '\n' || msg[i] == '\r' || msg[i] == '\t')
                msg[i] = ' ';
        sc_buf_printf(&line, "%s %s ", ts, level_names[level]);
        sc_buf_append(&line, msg, len);
        sc_buf_append_char(&line, '\n');
    }
    write_all(STDERR_FILENO, line.ptr, line.len);
    sc_buf_free(&line);
}

void sc_log_access(const sc_access_entry *e)
{
    if (!access_on)
        return;
    sc_buf *b = &access_buf;
    if (json_format) {
        char ts[32];
        sc_log_timestamp(ts);
        sc_buf_append_str(b, "{\"time\":\"");
        sc_buf_append_str(b, ts);
        sc_buf_append_str(b, "\",\"client\":\"");
        json_escape(b, e->client.ptr, e->client.len);
        sc_buf_append_str(b, "\",\"method\":\"");
        json_escape(b, e->method.ptr, e->method.len);
        sc_buf_append_str(b, "\",\"path\":\"");
        json_escape(b, e->path.ptr, e->path.len);
        sc_buf_append_str(b, "\",\"status\":");
        sc_buf_append_u64(b, (uint64_t)e->status);
        sc_buf_append_str(b, ",\"bytes\":");
        sc_buf_append_u64(b, e->bytes);
        sc_buf_append_str(b, ",\"duration_us\":");
        sc_buf_append_u64(b, e->duration_us);
        sc_buf_append_str(b, "}\n");
    } else {
        text_escape(b, e->client.ptr, e->client.len);
        sc_buf_append_char(b, ' ');
        text_escape(b, e->method.ptr, e->method.len);
        sc_buf_append_char(b, ' ');
        text_escape(b, e->path.ptr, e->path.len);
        sc_buf_append_char(b, ' ');
        sc_buf_append_u64(b, (uint64_t)e->status);
        sc_buf_append_char(b, ' ');
        sc_buf_append_u64(b, e->bytes);
        sc_buf_append_char(b, ' ');
        sc_buf_append_u64(b, e->duration_us);
        sc_buf_append_str(b, "us\n");
    }
    if (b->len >= 64 * 1024)
        sc_log_flush();
}

void sc_log_flush(void)
{
    if (access_buf.len) {
        write_all(STDOUT_FILENO, access_buf.ptr, access_buf.len);
        access_buf.len = 0;
    }
}

void sc_log_shutdown(void)
{
    sc_log_flush();
    sc_buf_free(&access_buf);
}
