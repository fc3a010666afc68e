/* libFuzzer driver: the Range parser (http/range.c) and the validators beside it. The first byte picks the size of
 * the representation from a table of interesting ones, the rest is the header value. Checks what a caller relies
 * on: a partial answer has 1..SC_RANGE_MAX ranges inside the file, none overlapping or closer than the merge gap,
 * adding up to no more than the file; other answers have no ranges; a parsed HTTP-date formats and parses back to
 * the same second; a strong entity-tag match is also a weak one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/range.h"

static const uint64_t sizes[] = {0, 1, 2, 79, 80, 81, 100, 10000, 1u << 20, UINT64_MAX / 2, UINT64_MAX - 1};

static void check_ranges(sc_slice v, uint64_t len)
{
    sc_range r[SC_RANGE_MAX];
    size_t n = 12345;
    sc_range_outcome res = sc_range_parse(v, len, r, &n);
    if (res != SC_RANGE_PARTIAL) {
        if (n != 0 || (res != SC_RANGE_IGNORE && res != SC_RANGE_UNSATISFIABLE))
            abort();
        return;
    }
    if (n == 0 || n > SC_RANGE_MAX)
        abort();
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].first > r[i].last || r[i].last >= len)
            abort();
        total += r[i].last - r[i].first + 1;
        if (total > len)
            abort();
        for (size_t j = 0; j < n; j++) {
            if (i == j || r[j].first < r[i].first)
                continue;
            /* r[j] starts at or after r[i]: it must start past r[i]'s end and the merge gap. */
            if (r[j].first <= r[i].last || r[j].first - r[i].last - 1 < SC_RANGE_MERGE_GAP)
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint64_t len = sizes[data[0] % (sizeof(sizes) / sizeof(sizes[0]))];
    sc_slice v = {(const char *)data + 1, size - 1};
    check_ranges(v, len);

    int64_t t, back;
    if (sc_http_date_parse(v, &t)) {
        char b[SC_HTTP_DATE_LEN + 1];
        sc_http_date_format(t, b);
        if (strlen(b) != SC_HTTP_DATE_LEN || !sc_http_date_parse(sc_slice_cstr(b), &back) || back != t)
            abort();
        if (!sc_range_if_range(v, SC_SLICE_LIT("\"e\""), t))
            abort();
    }

    static const sc_slice tags[] = {SC_SLICE_LIT("\"e\""), SC_SLICE_LIT("W/\"e\""), SC_SLICE_LIT("\"\"")};
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        if (sc_etag_match(v, tags[i], true) && !sc_etag_match(v, tags[i], false))
            abort();
        (void)sc_range_if_range(v, tags[i], 0);
    }
    /* The input as our own entity-tag. */
    static const sc_slice list = SC_SLICE_LIT("\"e\", W/\"f\"");
    if (sc_etag_match(list, v, true) && !sc_etag_match(list, v, false))
        abort();
    if (sc_range_if_range(v, v, 0) && !sc_etag_match(v, v, true))
        abort();

    sc_range_request q = {v, v, v, v, v, v};
    int st = sc_range_preconditions(&q, SC_SLICE_LIT("\"e\""), 784111777, 1700000000);
    if (st != 0 && st != 304 && st != 412)
        abort();
    sc_range r[SC_RANGE_MAX];
    size_t n;
    (void)sc_range_select(&q, SC_SLICE_LIT("\"e\""), 784111777, len, r, &n);
    return 0;
}
