/* Request metrics: counters by route, method and status, the latency histogram, and the Prometheus text. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http/method.h"
#include "http/metrics.h"

static const char *const route_names[] = {"/health", "/albums/{id}", "/metrics"};

/* Renders into a NUL-terminated heap string. */
static char *render(const sc_metrics *m, uint64_t open)
{
    sc_buf b = {0};
    sc_metrics_render(m, route_names, open, &b);
    sc_buf_append_char(&b, '\0');
    return b.ptr;
}

/* True when text has `line` as a whole line. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}
#define CHECK_LINE(text, line)                                                                                    \
    do {                                                                                                          \
        if (!CHECK(has_line((text), (line))))                                                                     \
            fprintf(stderr, "  missing line: %s\n", (line));                                                      \
    } while (0)

static const sc_metric_count *find(const sc_metrics *m, int route, unsigned method, int status)
{
    for (size_t i = 0; i < m->ncounts; i++)
        if (m->counts[i].route == route && m->counts[i].method == method && m->counts[i].status == status)
            return &m->counts[i];
    return NULL;
}

static void test_counters(void)
{
    sc_metrics m = {0};
    sc_metrics_record(&m, 0, SC_M_GET, 200, 10);
    sc_metrics_record(&m, 0, SC_M_GET, 200, 20);
    sc_metrics_record(&m, 0, SC_M_HEAD, 200, 30);
    sc_metrics_record(&m, 1, SC_M_GET, 200, 40);
    sc_metrics_record(&m, 1, SC_M_GET, 404, 50);
    sc_metrics_record(&m, -1, SC_M_GET, 404, 60);
    sc_metrics_record(&m, -1, 0, 400, 70);
    sc_metrics_record(&m, -1, 0, 400, 80);
    sc_metrics_record(&m, -1, 0, 400, 90);

    CHECK_EQ_UINT(m.ncounts, 6);
    CHECK_EQ_UINT(m.requests, 9);
    CHECK_EQ_UINT(m.duration_sum_us, 450);
    const sc_metric_count *c = find(&m, 0, SC_M_GET, 200);
    CHECK(c && c->count == 2);
    c = find(&m, 0, SC_M_HEAD, 200);
    CHECK(c && c->count == 1);
    c = find(&m, -1, 0, 400);
    CHECK(c && c->count == 3);
    CHECK(find(&m, 2, SC_M_GET, 200) == NULL);

    m.bytes_sent = 12345;
    m.connections_accepted = 17;
    m.connections_shed = 2;
    char *text = render(&m, 5);
    CHECK_LINE(text, "# TYPE staccato_http_requests_total counter");
    CHECK_LINE(text, "staccato_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"} 2");
    CHECK_LINE(text, "staccato_http_requests_total{route=\"/health\",method=\"HEAD\",status=\"200\"} 1");
    CHECK_LINE(text, "staccato_http_requests_total{route=\"/albums/{id}\",method=\"GET\",status=\"200\"} 1");
    CHECK_LINE(text, "staccato_http_requests_total{route=\"/albums/{id}\",method=\"GET\",status=\"404\"} 1");
    CHECK_LINE(text, "staccato_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1");
    CHECK_LINE(text, "staccato_http_requests_total{route=\"unmatched\",method=\"other\",status=\"400\"} 3");
    CHECK(strstr(text, "route=\"/metrics\"") == NULL); /* no requests, no series */
    CHECK_LINE(text, "# TYPE staccato_http_open_connections gauge");
    CHECK_LINE(text, "staccato_http_open_connections 5");
    CHECK_LINE(text, "staccato_http_connections_accepted_total 17");
    CHECK_LINE(text, "staccato_http_connections_shed_total 2");
    CHECK_LINE(text, "staccato_http_bytes_sent_total 12345");
    CHECK_LINE(text, "staccato_http_request_duration_seconds_count 9");
    CHECK_LINE(text, "staccato_http_request_duration_seconds_sum 0.000450");
    free(text);

    /* Many distinct series: the table grows and keeps every count. */
    for (int route = 0; route < 3; route++)
        for (int status = 100; status < 600; status++)
            sc_metrics_record(&m, route, SC_M_POST, status, 1);
    CHECK_EQ_UINT(m.ncounts, 6 + 3 * 500);
    c = find(&m, 2, SC_M_POST, 599);
    CHECK(c && c->count == 1);
    c = find(&m, 0, SC_M_GET, 200);
    CHECK(c && c->count == 2);
    sc_metrics_free(&m);
    CHECK(m.counts == NULL && m.ncounts == 0);
}

/* Every line of the text is a comment or `name{labels} value` / `name value` with a numeric value. */
static bool well_formed(const char *text)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            return false; /* the last line ends with a newline too */
        if (*p != '#') {
            const char *sp = nl;
            while (sp > p && sp[-1] != ' ')
                sp--;
            if (sp == p || sp == nl)
                return false;
            char *end;
            strtod(sp, &end);
            if (end != nl)
                return false;
        }
        p = nl + 1;
    }
    return true;
}

static void test_histogram(void)
{
    sc_metrics m = {0};
    /* Bucket bounds are inclusive ("le"): 50us lands in the 50us bucket, 51us in the next. */
    sc_metrics_record(&m, 0, SC_M_GET, 200, 0);
    sc_metrics_record(&m, 0, SC_M_GET, 200, 50);
    sc_metrics_record(&m, 0, SC_M_GET, 200, 51);
    sc_metrics_record(&m, 0, SC_M_GET, 200, 100);
    sc_metrics_record(&m, 0, SC_M_GET, 200, 1000);
    sc_metrics_record(&m, 0, SC_M_GET, 200, 1001);
    sc_metrics_record(&m, 0, SC_M_GET, 200, 10000000);   /* 10 s: the last finite bucket */
    sc_metrics_record(&m, 0, SC_M_GET, 200, 10000001);   /* above it: +Inf only */
    sc_metrics_record(&m, 0, SC_M_GET, 200, 3600000000); /* an hour */

    CHECK_EQ_UINT(m.buckets[0], 2);
    CHECK_EQ_UINT(m.buckets[1], 2);
    CHECK_EQ_UINT(m.buckets[4], 1);
    CHECK_EQ_UINT(m.buckets[5], 1);
    CHECK_EQ_UINT(m.buckets[SC_METRICS_BUCKETS - 1], 1);
    CHECK_EQ_UINT(m.buckets[SC_METRICS_BUCKETS], 2);

    char *text = render(&m, 0);
    CHECK_LINE(text, "# TYPE staccato_http_request_duration_seconds histogram");
    CHECK_LINE(text, "staccato_http_request_duration_seconds_bucket{le=\"0.000050\"} 2");
    CHECK_LINE(text, "staccato_http_request_duration_seconds_bucket{le=\"0.000100\"} 4");
    CHECK_LINE(text, "staccato_http_request_duration_seconds_bucket{le=\"0.000250\"} 4"); /* cumulative */
    CHECK_LINE(text, "staccato_http_request_duration_seconds_bucket{le=\"0.000500\"} 4");
    CHECK_LINE(text, "staccato_http_request_duration_seconds_bucket{le=\"0.001000\"} 5");
    CHECK_LINE(text, "staccato_http_request_duration_seconds_bucket{le=\"0.002500\"} 6");
    CHECK_LINE(text, "staccato_http_request_duration_seconds_bucket{le=\"1.000000\"} 6");
    CHECK_LINE(text, "staccato_http_request_duration_seconds_bucket{le=\"2.500000\"} 6");
    CHECK_LINE(text, "staccato_http_request_duration_seconds_bucket{le=\"10.000000\"} 7");
    CHECK_LINE(text, "staccato_http_request_duration_seconds_bucket{le=\"+Inf\"} 9");
    CHECK_LINE(text, "staccato_http_request_duration_seconds_count 9");
    CHECK_LINE(text, "staccato_http_request_duration_seconds_sum 3620.002203");
    CHECK(well_formed(text));

    /* The buckets appear in increasing order, each count at least the one before, and +Inf last. */
    const char *p = text;
    unsigned long long prev = 0;
    int nbuckets = 0, monotonic = 1;
    while ((p = strstr(p, "staccato_http_request_duration_seconds_bucket{le=\"")) != NULL) {
        const char *close = strstr(p, "\"} ");
        if (!CHECK(close != NULL))
            break;
        unsigned long long v = strtoull(close + 3, NULL, 10);
        monotonic &= v >= prev;
        prev = v;
        nbuckets++;
        p = close;
    }
    CHECK_EQ_INT(nbuckets, SC_METRICS_BUCKETS + 1);
    CHECK(monotonic);
    CHECK_EQ_UINT(prev, 9);
    free(text);
    sc_metrics_free(&m);
}

static void test_empty(void)
{
    sc_metrics m = {0};
    char *text = render(&m, 0);
    CHECK_LINE(text, "# HELP staccato_http_requests_total Requests answered, by route, method and status.");
    CHECK(strstr(text, "staccato_http_requests_total{") == NULL);
    CHECK_LINE(text, "staccato_http_request_duration_seconds_bucket{le=\"+Inf\"} 0");
    CHECK_LINE(text, "staccato_http_request_duration_seconds_sum 0.000000");
    CHECK_LINE(text, "staccato_http_request_duration_seconds_count 0");
    CHECK_LINE(text, "staccato_http_open_connections 0");
    CHECK(well_formed(text));
    free(text);
    sc_metrics_free(&m);
    sc_metrics_free(&m);
}

int main(void)
{
    test_counters();
    test_histogram();
    test_empty();
    return check_report();
}
