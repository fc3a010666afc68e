#include "http/metrics.h"

#include <stdlib.h>

#include "core/mem.h"
#include "http/method.h"

/* Upper bounds of the latency buckets, in microseconds. */
static const uint64_t bucket_us[SC_METRICS_BUCKETS] = {50,     100,     250,     500,     1000,   2500,
                                                       5000,   10000,   25000,   50000,   100000, 250000,
                                                       500000, 1000000, 2500000, 10000000};

void sc_metrics_record(sc_metrics *m, int route, unsigned method, int status, uint64_t duration_us)
{
    sc_metric_count *c = NULL;
    for (size_t i = 0; i < m->ncounts; i++) {
        sc_metric_count *e = &m->counts[i];
        if (e->route == route && e->method == method && e->status == status) {
            c = e;
            break;
        }
    }
    if (!c) {
        if (m->ncounts == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 32;
            m->counts = sc_realloc(m->counts, m->cap * sizeof(*m->counts));
        }
        c = &m->counts[m->ncounts++];
        *c = (sc_metric_count){route, method, status, 0};
    }
    c->count++;
    size_t b = 0;
    while (b < SC_METRICS_BUCKETS && duration_us > bucket_us[b])
        b++;
    m->buckets[b]++;
    m->duration_sum_us += duration_us;
    m->requests++;
}

static void append_seconds(sc_buf *out, uint64_t us)
{
    sc_buf_printf(out, "%llu.%06llu", (unsigned long long)(us / 1000000), (unsigned long long)(us % 1000000));
}

void sc_metrics_render(const sc_metrics *m, const char *const *route_names, uint64_t open_connections, sc_buf *out)
{
    sc_buf_append_str(out, "# HELP staccato_http_requests_total Requests answered, by route, method and status.\n"
                           "# TYPE staccato_http_requests_total counter\n");
    for (size_t i = 0; i < m->ncounts; i++) {
        const sc_metric_count *c = &m->counts[i];
        const char *method = sc_method_name(c->method);
        sc_buf_printf(out, "staccato_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
                      c->route >= 0 ? route_names[c->route] : "unmatched", method ? method : "other", c->status,
                      (unsigned long long)c->count);
    }
    sc_buf_append_str(out,
                      "# HELP staccato_http_request_duration_seconds Time from the first byte of a request to "
                      "its response being queued.\n"
                      "# TYPE staccato_http_request_duration_seconds histogram\n");
    uint64_t cumulative = 0;
    for (size_t b = 0; b < SC_METRICS_BUCKETS; b++) {
        cumulative += m->buckets[b];
        sc_buf_append_str(out, "staccato_http_request_duration_seconds_bucket{le=\"");
        append_seconds(out, bucket_us[b]);
        sc_buf_printf(out, "\"} %llu\n", (unsigned long long)cumulative);
    }
    cumulative += m->buckets[SC_METRICS_BUCKETS];
    sc_buf_printf(out, "staccato_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                  (unsigned long long)cumulative);
    sc_buf_append_str(out, "staccato_http_request_duration_seconds_sum ");
    append_seconds(out, m->duration_sum_us);
    sc_buf_printf(out, "\nstaccato_http_request_duration_seconds_count %llu\n", (unsigned long long)m->requests);
    sc_buf_printf(out,
                  "# HELP staccato_http_open_connections Client connections currently open.\n"
                  "# TYPE staccato_http_open_connections gauge\n"
                  "staccato_http_open_connections %llu\n"
                  "# HELP staccato_http_connections_accepted_total Client connections accepted.\n"
                  "# TYPE staccato_http_connections_accepted_total counter\n"
                  "staccato_http_connections_accepted_total %llu\n"
                  "# HELP staccato_http_connections_shed_total Connections refused with 503 at the connection "
                  "limit.\n"
                  "# TYPE staccato_http_connections_shed_total counter\n"
                  "staccato_http_connections_shed_total %llu\n"
                  "# HELP staccato_http_bytes_sent_total Bytes written to client sockets.\n"
                  "# TYPE staccato_http_bytes_sent_total counter\n"
                  "staccato_http_bytes_sent_total %llu\n",
                  (unsigned long long)open_connections, (unsigned long long)m->connections_accepted,
                  (unsigned long long)m->connections_shed, (unsigned long long)m->bytes_sent);
    sc_buf_printf(out,
                  "# HELP staccato_tls_handshakes_total TLS handshakes completed.\n"
                  "# TYPE staccato_tls_handshakes_total counter\n"
                  "staccato_tls_handshakes_total %llu\n"
                  "# HELP staccato_tls_handshake_offloads_total TLS handshake steps with public-key work, run on "
                  "the "
                  "threadpool (two per full handshake, none for a resumed one).\n"
                  "# TYPE staccato_tls_handshake_offloads_total counter\n"
                  "staccato_tls_handshake_offloads_total %llu\n",
                  (unsigned long long)m->tls_handshakes, (unsigned long long)m->tls_handshake_offloads);
}

void sc_metrics_free(sc_metrics *m)
{
    free(m->counts);
    m->counts = NULL;
    m->ncounts = m->cap = 0;
}
