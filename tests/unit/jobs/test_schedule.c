/* Schedules (jobs/schedule.c): parsing STACCATO_SCHEDULES and the UTC periods that make scheduled jobs' dedupe
 * keys and report ranges, across month, year and ISO-week boundaries. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "jobs/jobs.h"

static char err[256];

static void test_parse(void)
{
    sc_job_schedule s[SC_JOBS_MAX_SCHEDULES];
    CHECK_EQ_INT(sc_jobs_parse_schedules("", s, SC_JOBS_MAX_SCHEDULES, err, sizeof(err)), 0);
    CHECK_EQ_INT(sc_jobs_parse_schedules(NULL, s, SC_JOBS_MAX_SCHEDULES, err, sizeof(err)), 0);
    int n = sc_jobs_parse_schedules(" monthly-artist-report@monthly , daily-digest@daily,x1@hourly,w@weekly,", s,
                                    SC_JOBS_MAX_SCHEDULES, err, sizeof(err));
    if (!CHECK_EQ_INT(n, 4))
        return;
    CHECK_EQ_STR(s[0].name, "monthly-artist-report");
    CHECK_EQ_INT(s[0].every, SC_EVERY_MONTH);
    CHECK_EQ_STR(s[1].name, "daily-digest");
    CHECK_EQ_INT(s[1].every, SC_EVERY_DAY);
    CHECK_EQ_INT(s[2].every, SC_EVERY_HOUR);
    CHECK_EQ_INT(s[3].every, SC_EVERY_WEEK);

    const char *bad[] = {"daily-digest",     "@daily",
                         "daily-digest@",    "daily-digest@yearly",
                         "Daily@daily",      "a b@daily",
                         "a@daily,,b@daily", "a@daily,a@monthly",
                         "a@daily@daily",    "a-very-long-name-that-does-not-fit-in-the-table-at-all@daily"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (!CHECK_EQ_INT(sc_jobs_parse_schedules(bad[i], s, SC_JOBS_MAX_SCHEDULES, err, sizeof(err)), -1))
            fprintf(stderr, "  accepted: %s\n", bad[i]);
        CHECK(strncmp(err, "STACCATO_SCHEDULES: ", 20) == 0);
    }
    CHECK_EQ_INT(sc_jobs_parse_schedules("a@daily,b@daily,c@daily", s, 2, err, sizeof(err)), -1);
}

static void noop(sc_job *job) { (void)job; }

static void test_check(void)
{
    const sc_job_kind kinds[] = {{"export", noop, noop, false}, {"report", noop, noop, true}};
    CHECK_EQ_INT(sc_jobs_check_schedules("report@monthly", kinds, 2, err, sizeof(err)), 0);
    CHECK_EQ_INT(sc_jobs_check_schedules("", kinds, 2, err, sizeof(err)), 0);
    CHECK_EQ_INT(sc_jobs_check_schedules("export@daily", kinds, 2, err, sizeof(err)), -1);
    CHECK(strstr(err, "'export'") && strstr(err, "known: report"));
    CHECK_EQ_INT(sc_jobs_check_schedules("nope@daily", kinds, 2, err, sizeof(err)), -1);
}

/* 2026-11-22T10:30:00Z, a Sunday in ISO week 47. */
#define T_2026_11_22 1795343400LL

static void check_period(sc_job_every every, long long now, const char *key, const char *label, const char *from,
                         const char *to, long long next)
{
    sc_job_period p;
    sc_jobs_period(every, now, &p);
    CHECK_EQ_STR(p.key, key);
    CHECK_EQ_STR(p.label, label);
    CHECK_EQ_STR(p.from, from);
    CHECK_EQ_STR(p.to, to);
    CHECK_EQ_INT(p.next, next);
}

static void test_periods(void)
{
    check_period(SC_EVERY_HOUR, T_2026_11_22, "2026-11-22T10", "2026-11-22T09", "2026-11-22T09:00:00Z",
                 "2026-11-22T10:00:00Z", T_2026_11_22 + 1800);
    check_period(SC_EVERY_DAY, T_2026_11_22, "2026-11-22", "2026-11-21", "2026-11-21T00:00:00Z",
                 "2026-11-22T00:00:00Z", T_2026_11_22 + 13 * 3600 + 1800);
    check_period(SC_EVERY_WEEK, T_2026_11_22, "2026-W47", "2026-W46", "2026-11-09T00:00:00Z",
                 "2026-11-16T00:00:00Z", T_2026_11_22 + 13 * 3600 + 1800);
    check_period(SC_EVERY_MONTH, T_2026_11_22, "2026-11", "2026-10", "2026-10-01T00:00:00Z",
                 "2026-11-01T00:00:00Z", 1796083200LL);
    /* the first second of a period belongs to it; the last second of the one before does not */
    check_period(SC_EVERY_MONTH, 1796083200LL, "2026-12", "2026-11", "2026-11-01T00:00:00Z",
                 "2026-12-01T00:00:00Z", 1798761600LL);
    check_period(SC_EVERY_MONTH, 1796083199LL, "2026-11", "2026-10", "2026-10-01T00:00:00Z",
                 "2026-11-01T00:00:00Z", 1796083200LL);
    /* January reports on December of the year before; ISO week 1 of 2027 starts on 2027-01-04 */
    check_period(SC_EVERY_MONTH, 1799000000LL, "2027-01", "2026-12", "2026-12-01T00:00:00Z",
                 "2027-01-01T00:00:00Z", 1801440000LL);
    check_period(SC_EVERY_DAY, 1798761600LL, "2027-01-01", "2026-12-31", "2026-12-31T00:00:00Z",
                 "2027-01-01T00:00:00Z", 1798848000LL);
    check_period(SC_EVERY_WEEK, 1798761600LL, "2026-W53", "2026-W52", "2026-12-21T00:00:00Z",
                 "2026-12-28T00:00:00Z", 1799020800LL);
    check_period(SC_EVERY_WEEK, 1799020800LL, "2027-W01", "2026-W53", "2026-12-28T00:00:00Z",
                 "2027-01-04T00:00:00Z", 1799625600LL);
}

int main(void)
{
    test_parse();
    test_check();
    test_periods();
    return check_report();
}
