/* libFuzzer driver: the streaming multipart/form-data parser. The input is a Content-Type line (its boundary
 * parameter, parsed by sc_multipart_boundary, is used when valid; else "XyZ") and then the body. The body is
 * parsed whole and again cut into pieces at positions drawn from the input; both runs must give the same result
 * and the same events, byte for byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "http/multipart.h"

typedef struct rec {
    sc_buf out;
    size_t data_bytes;
} rec;

static void put(sc_buf *b, sc_slice s)
{
    sc_buf_append_char(b, s.ptr ? '[' : '-');
    if (s.ptr)
        sc_buf_append(b, s.ptr, s.len);
    sc_buf_append_char(b, ']');
}

static int on_begin(void *ctx, const sc_mp_part *p)
{
    rec *r = ctx;
    if (!p->name.ptr)
        abort(); /* a part always has a name */
    sc_buf_append_str(&r->out, "<");
    put(&r->out, p->name);
    put(&r->out, p->filename);
    put(&r->out, p->content_type);
    /* A handler may stop the parser: exercise that path. */
    return p->name.len == 4 && memcmp(p->name.ptr, "stop", 4) == 0 ? 413 : 0;
}

static int on_data(void *ctx, const char *d, size_t n)
{
    rec *r = ctx;
    if (n == 0)
        abort(); /* never empty pieces */
    r->data_bytes += n;
    sc_buf_append(&r->out, d, n);
    return 0;
}

static int on_end(void *ctx, const sc_mp_part *p)
{
    rec *r = ctx;
    sc_buf_append_str(&r->out, ">");
    return 0;
}

static const sc_mp_callbacks CB = {on_begin, on_data, on_end};

static sc_multipart mp;

static int parse(sc_slice boundary, const uint8_t *body, size_t len, const uint8_t *cuts, size_t ncuts, rec *r)
{
    sc_mp_limits lim = {512, 8};
    r->out.len = 0;
    r->data_bytes = 0;
    int rc = sc_multipart_init(&mp, boundary, &lim, &CB, r);
    if (rc)
        return rc;
    size_t at = 0;
    for (size_t k = 0; k < ncuts && at < len && !rc; k++) {
        size_t step = 1 + cuts[k] % 97;
        if (step > len - at)
            step = len - at;
        rc = sc_multipart_feed(&mp, (const char *)body + at, step);
        at += step;
    }
    if (!rc && at < len)
        rc = sc_multipart_feed(&mp, (const char *)body + at, len - at);
    if (!rc)
        rc = sc_multipart_finish(&mp);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = size ? memchr(data, '\n', size < 256 ? size : 256) : NULL;
    sc_slice boundary = SC_SLICE_LIT("XyZ");
    const uint8_t *body = data;
    size_t len = size;
    if (nl) {
        sc_slice b;
        if (sc_multipart_boundary((sc_slice){(const char *)data, (size_t)(nl - data)}, &b) == 0) {
            if (b.len == 0 || b.len > SC_MP_MAX_BOUNDARY || b.ptr < (const char *)data ||
                b.ptr + b.len > (const char *)nl)
                abort(); /* the boundary lies inside the header value */
            boundary = b;
        }
        body = nl + 1;
        len = size - (size_t)(nl + 1 - data);
    }
    static rec whole, pieces;
    int rc1 = parse(boundary, body, len, NULL, 0, &whole);
    /* Cut positions: the body's own bytes, read backwards (any sequence will do, it only has to vary). */
    uint8_t cuts[64];
    size_t ncuts = len < sizeof(cuts) ? len : sizeof(cuts);
    for (size_t i = 0; i < ncuts; i++)
        cuts[i] = body[len - 1 - i];
    int rc2 = parse(boundary, body, len, cuts, ncuts, &pieces);
    if (rc1 != rc2)
        abort();
    if (rc1 == 0 && (whole.out.len != pieces.out.len ||
                     (whole.out.len && memcmp(whole.out.ptr, pieces.out.ptr, whole.out.len) != 0)))
        abort();
    if (whole.data_bytes > len)
        abort();
    return 0;
}
