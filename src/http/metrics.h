/* Request metrics kept by the server and rendered in Prometheus text format: requests by route, method and
 * status; a latency histogram; open connections; bytes sent; connections shed. */
#ifndef SC_HTTP_METRICS_H
#define SC_HTTP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define SC_METRICS_BUCKETS 16

typedef struct sc_metric_count {
    int route;       /* route index, -1 for unmatched */
    unsigned method; /* SC_M_* bit, 0 for unparsed */
    int status;
    uint64_t count;
} sc_metric_count;

typedef struct sc_metrics {
    sc_metric_count *counts;
    size_t ncounts, cap;
    uint64_t buckets[SC_METRICS_BUCKETS + 1]; /* last: +Inf */
    uint64_t duration_sum_us;
    uint64_t requests;
    uint64_t bytes_sent;
    uint64_t connections_shed;
    uint64_t connections_accepted;
    uint64_t tls_handshakes;         /* completed */
    uint64_t tls_handshake_offloads; /* handshake steps run on the threadpool (public-key work) */
} sc_metrics;

void sc_metrics_record(sc_metrics *m, int route, unsigned method, int status, uint64_t duration_us);
/* route_names[i] names route i. open_connections is a gauge read at render time. */
void sc_metrics_render(const sc_metrics *m, const char *const *route_names, uint64_t open_connections,
                       sc_buf *out);
void sc_metrics_free(sc_metrics *m);

#endif
