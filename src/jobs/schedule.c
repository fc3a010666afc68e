/* Schedules: parsing STACCATO_SCHEDULES and the calendar arithmetic of periods (UTC).
 *
 *     schedules = "" | entry *("," entry)
 *     entry     = name "@" ("hourly" | "daily" | "weekly" | "monthly")     e.g. monthly-artist-report@monthly
 *     name      = 1*47 (a-z / 0-9 / "-")
 *
 * Spaces around entries are allowed. Weeks are ISO weeks (starting on Monday, named 2026-W47). */
#define _GNU_SOURCE /* timegm */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "jobs/jobs.h"

static const struct {
    const char *name;
    sc_job_every every;
} everies[] = {
    {"hourly", SC_EVERY_HOUR},
    {"daily", SC_EVERY_DAY},
    {"weekly", SC_EVERY_WEEK},
    {"monthly", SC_EVERY_MONTH},
};

static bool name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

int sc_jobs_parse_schedules(const char *spec, sc_job_schedule *out, size_t max, char *err, size_t errlen)
{
    size_t n = 0;
    const char *p = spec ? spec : "";
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        if (last == p) {
            if (!*end)
                break; /* a trailing comma */
            snprintf(err, errlen, "STACCATO_SCHEDULES: empty entry");
            return -1;
        }
        const char *at = memchr(p, '@', (size_t)(last - p));
        size_t name_len = at ? (size_t)(at - p) : 0;
        if (!at || name_len == 0 || name_len >= sizeof(out[0].name)) {
            snprintf(err, errlen, "STACCATO_SCHEDULES: '%.*s' is not NAME@hourly|daily|weekly|monthly",
                     (int)(last - p), p);
            return -1;
        }
        for (size_t i = 0; i < name_len; i++) {
            if (!name_char(p[i])) {
                snprintf(err, errlen, "STACCATO_SCHEDULES: '%.*s' is not a job name (a-z, 0-9, -)", (int)name_len,
                         p);
                return -1;
            }
        }
        const char *word = at + 1;
        size_t word_len = (size_t)(last - word);
        size_t k = 0;
        while (k < sizeof(everies) / sizeof(everies[0]) &&
               !(strlen(everies[k].name) == word_len && memcmp(everies[k].name, word, word_len) == 0))
            k++;
        if (k == sizeof(everies) / sizeof(everies[0])) {
            snprintf(err, errlen, "STACCATO_SCHEDULES: '%.*s' is not hourly, daily, weekly or monthly",
                     (int)word_len, word);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            if (strlen(out[i].name) == name_len && memcmp(out[i].name, p, name_len) == 0) {
                snprintf(err, errlen, "STACCATO_SCHEDULES: '%.*s' is listed twice", (int)name_len, p);
                return -1;
            }
        }
        if (n == max) {
            snprintf(err, errlen, "STACCATO_SCHEDULES: more than %zu entries", max);
            return -1;
        }
        memcpy(out[n].name, p, name_len);
        out[n].name[name_len] = '\0';
        out[n].every = everies[k].every;
        n++;
        p = *end ? end + 1 : end;
    }
    return (int)n;
}

int sc_jobs_check_schedules(const char *spec, const sc_job_kind *kinds, size_t nkinds, char *err, size_t errlen)
{
    sc_job_schedule s[SC_JOBS_MAX_SCHEDULES];
    int n = sc_jobs_parse_schedules(spec, s, SC_JOBS_MAX_SCHEDULES, err, errlen);
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        size_t k = 0;
        while (k < nkinds && !(kinds[k].schedulable && strcmp(kinds[k].name, s[i].name) == 0))
            k++;
        if (k == nkinds) {
            char names[256] = "";
            for (size_t m = 0; m < nkinds; m++) {
                if (!kinds[m].schedulable)
                    continue;
                size_t len = strlen(names);
                snprintf(names + len, sizeof(names) - len, "%s%s", *names ? ", " : "", kinds[m].name);
            }
            snprintf(err, errlen, "STACCATO_SCHEDULES: no scheduled job is called '%s' (known: %s)", s[i].name,
                     names);
            return -1;
        }
    }
    return 0;
}

static void format_key(sc_job_every every, time_t t, char *out, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    static const char *const formats[] = {"%Y-%m-%dT%H", "%Y-%m-%d", "%G-W%V", "%Y-%m"};
    strftime(out, len, formats[every], &tm);
}

static void format_time(time_t t, char *out, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The start of the month `delta` months after the one of tm. */
static time_t month_start(const struct tm *tm, int delta)
{
    struct tm m = {0};
    m.tm_year = tm->tm_year;
    m.tm_mon = tm->tm_mon + delta;
    m.tm_mday = 1;
    return timegm(&m); /* normalises month -1 and 12 */
}

void sc_jobs_period(sc_job_every every, int64_t now, sc_job_period *out)
{
    time_t start, prev, next;
    int64_t day = now >= 0 ? now / 86400 : (now - 86399) / 86400;
    switch (every) {
    case SC_EVERY_HOUR:
        start = (time_t)(now - ((now % 3600) + 3600) % 3600);
        prev = start - 3600;
        next = start + 3600;
        break;
    case SC_EVERY_DAY:
        start = (time_t)(day * 86400);
        prev = start - 86400;
        next = start + 86400;
        break;
    case SC_EVERY_WEEK: {
        /* 1970-01-01 was a Thursday: Monday is three days later in the cycle. */
        int64_t monday = day - ((day + 3) % 7 + 7) % 7;
        start = (time_t)(monday * 86400);
        prev = start - 7 * 86400;
        next = start + 7 * 86400;
        break;
    }
    default: {
        time_t t = (time_t)now;
        struct tm tm;
        gmtime_r(&t, &tm);
        start = month_start(&tm, 0);
        prev = month_start(&tm, -1);
        next = month_start(&tm, 1);
        break;
    }
    }
    format_key(every, start, out->key, sizeof(out->key));
    format_key(every, prev, out->label, sizeof(out->label));
    format_time(prev, out->from, sizeof(out->from));
    format_time(start, out->to, sizeof(out->to));
    out->next = (int64_t)next;
}
