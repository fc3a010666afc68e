/* Range requests and conditional requests for representations served from files (RFC 9110 sections 13 and 14).
 *
 * Everything here works on header values and numbers, never on a request, so that the rules can be unit-tested
 * and fuzzed on their own. A handler that serves a file evaluates them in two steps:
 *
 *   1. sc_range_preconditions with the validators (strong ETag, Last-Modified) it knows before opening the file:
 *      If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since, in the order of RFC 9110 section 13.2.2.
 *      A 304 or 412 needs no file at all.
 *   2. sc_range_select with the file's size: If-Range, then Range. The outcome says 200 (send everything), 206
 *      (send the ranges it wrote) or 416.
 *
 * Ranges are answered only when it is worth it and safe: at most SC_RANGE_MAX range-specs, no overlaps (which is
 * also the only way ranges can add up to more than the file), close ranges merged. Anything else is answered with
 * the whole file, which RFC 9110 section 14.2 allows ("a server MAY ignore the Range header field"). */
#ifndef SC_HTTP_RANGE_H
#define SC_HTTP_RANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"

/* Range-specs one Range header may carry (empty list elements not counted); with more the header is ignored. */
#define SC_RANGE_MAX 16
/* Ranges separated by fewer bytes than this (about the headers of one multipart part) are merged into one. */
#define SC_RANGE_MERGE_GAP 80

/* Bytes first..last of a representation, both included, last < its size. */
typedef struct sc_range {
    uint64_t first, last;
} sc_range;

/* What to send for a Range header. These are outcomes, not errors (docs/internals/errors.md): every one is the
 * right answer to some request, a malformed header included (RFC 9110 lets a server ignore it), so none is
 * negative and none has a message. */
typedef enum sc_range_outcome {
    SC_RANGE_IGNORE,        /* no usable Range: send the whole representation (200) */
    SC_RANGE_PARTIAL,       /* send the ranges written out (206) */
    SC_RANGE_UNSATISFIABLE, /* well-formed, but no range-spec overlaps the representation (416) */
} sc_range_outcome;

/* Parses a Range header value against a representation of size bytes. On SC_RANGE_PARTIAL writes 1 to
 * SC_RANGE_MAX ranges to out and their count to *n: in the order requested, or, when close ranges were merged, in
 * ascending order. Unsatisfiable range-specs among satisfiable ones are dropped. A header that is malformed, names
 * another unit, has more than SC_RANGE_MAX range-specs or overlapping ranges gives SC_RANGE_IGNORE. Numbers of any
 * length are read exactly (a last-pos past the end is the end; a first-pos past it is unsatisfiable). */
sc_range_outcome sc_range_parse(sc_slice value, uint64_t size, sc_range out[SC_RANGE_MAX], size_t *n);

/* Whether an If-Range value lets the Range header apply: an entity-tag that is strongly equal to etag, or an
 * HTTP-date that is exactly last_modified. A weak or malformed validator never does. */
bool sc_range_if_range(sc_slice if_range, sc_slice etag, int64_t last_modified);

/* The header values a conditional range request can carry; absent ones have ptr NULL. */
typedef struct sc_range_request {
    sc_slice if_match;
    sc_slice if_none_match;
    sc_slice if_modified_since;
    sc_slice if_unmodified_since;
    sc_slice if_range;
    sc_slice range;
} sc_range_request;

/* The outcome of the preconditions, again not an error. The values are the HTTP statuses a handler answers with
 * (0: none yet, go on to the representation). */
typedef enum sc_range_condition {
    SC_RANGE_PROCEED = 0,               /* no precondition stops the request */
    SC_RANGE_NOT_MODIFIED = 304,        /* If-None-Match matches, or If-Modified-Since is not older */
    SC_RANGE_PRECONDITION_FAILED = 412, /* If-Match, or without it If-Unmodified-Since, fails */
} sc_range_condition;

/* Evaluates the preconditions of a GET or HEAD request for a representation with strong entity-tag etag (with its
 * quotes) and the Last-Modified time last_modified (Unix seconds) at time now, in the order of RFC 9110 section
 * 13.2.2: SC_RANGE_PRECONDITION_FAILED (If-Match, or without it If-Unmodified-Since, fails), SC_RANGE_NOT_MODIFIED
 * (If-None-Match matches, or without it If-Modified-Since is not older than the representation), or
 * SC_RANGE_PROCEED. Dates that do not parse, and If-Modified-Since dates in the future, are ignored. */
sc_range_condition sc_range_preconditions(const sc_range_request *r, sc_slice etag, int64_t last_modified,
                                          int64_t now);

/* Decides between the whole representation and parts of it: If-Range (when present and not holding, the Range
 * header is ignored), then sc_range_parse. */
sc_range_outcome sc_range_select(const sc_range_request *r, sc_slice etag, int64_t last_modified, uint64_t size,
                                 sc_range out[SC_RANGE_MAX], size_t *n);

/* Whether an If-Match / If-None-Match value (a comma-separated list of entity-tags, or "*") matches etag: with
 * strong comparison both must be strong and equal; with weak comparison the W/ prefixes do not matter. A malformed
 * list matches only through the tags before the damage. */
bool sc_etag_match(sc_slice list, sc_slice etag, bool strong);

/* Parses an HTTP-date in any of the three formats recipients must accept (RFC 9110 section 5.6.7):
 * "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994". Two-digit years
 * 70-99 are 19xx, 00-69 20xx. Returns false for anything else, including impossible dates such as 31 Apr. */
bool sc_http_date_parse(sc_slice s, int64_t *out);

#define SC_HTTP_DATE_LEN 29
/* Writes t (Unix seconds, years 0 to 9999) as an IMF-fixdate, NUL-terminated. */
void sc_http_date_format(int64_t t, char out[SC_HTTP_DATE_LEN + 1]);

#endif
