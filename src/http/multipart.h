/* A streaming parser of multipart/form-data bodies (RFC 7578 on RFC 2046), for uploads that must never sit in
 * memory whole: bytes go in as they arrive, in pieces of any size, and come out as part events (the part's
 * headers, its data in pieces, its end). Nothing is allocated; the parser is one fixed-size struct.
 *
 * The boundary may be split across reads at any byte; part headers are limited in size and parts in number.
 * Callbacks return 0 to go on or a positive value to stop: the parser then stays stopped and every later call
 * returns that value (handlers use an HTTP status). Parser errors are the negative SC_MP_E_* codes, so the sign
 * tells the two apart (docs/internals/errors.md). */
#ifndef SC_HTTP_MULTIPART_H
#define SC_HTTP_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "core/slice.h"

/* Longest boundary RFC 2046 allows. */
#define SC_MP_MAX_BOUNDARY 70
/* Room for one part's header block; limits.max_header_bytes may be lower, never higher. */
#define SC_MP_HEADER_CAP 8192

#define SC_MP_ERRORS(X)                                                                                           \
    X(SC_MP_E_BOUNDARY, -1, "the multipart boundary is missing or invalid")                                       \
    X(SC_MP_E_DELIMITER, -2, "malformed multipart boundary line")                                                 \
    X(SC_MP_E_HEADER, -3, "malformed multipart part header")                                                      \
    X(SC_MP_E_HEADER_TOO_LARGE, -4, "multipart part headers too large")                                           \
    X(SC_MP_E_TOO_MANY_PARTS, -5, "too many multipart parts")                                                     \
    X(SC_MP_E_DISPOSITION, -6, "multipart part without Content-Disposition: form-data and a name")                \
    X(SC_MP_E_TRUNCATED, -7, "multipart body ends before its closing boundary")

enum { SC_MP_ERRORS(SC_ERROR_ENUM) };

/* A one-line message for an SC_MP_E_* code ("ok" for 0; a callback's stop value is "multipart parser stopped"). */
const char *sc_multipart_strerror(int code);

/* One part as its headers describe it. The slices point into the parser and stay valid until the part ends. */
typedef struct sc_mp_part {
    sc_slice name;         /* Content-Disposition name, unquoted */
    sc_slice filename;     /* Content-Disposition filename (ptr NULL when absent) */
    sc_slice content_type; /* Content-Type (ptr NULL when absent) */
    unsigned index;        /* 0 for the first part */
} sc_mp_part;

typedef struct sc_mp_callbacks {
    int (*on_part_begin)(void *ctx, const sc_mp_part *part);
    int (*on_part_data)(void *ctx, const char *data, size_t len); /* len > 0 */
    int (*on_part_end)(void *ctx, const sc_mp_part *part);
} sc_mp_callbacks;

typedef struct sc_mp_limits {
    size_t max_header_bytes; /* per part, CRLFs included; at most SC_MP_HEADER_CAP (0: the cap) */
    size_t max_parts;        /* 0: no limit */
} sc_mp_limits;

typedef struct sc_multipart {
    const sc_mp_callbacks *cb;
    void *ctx;
    sc_mp_limits limits;
    char delim[4 + SC_MP_MAX_BOUNDARY]; /* CR LF "--" boundary */
    size_t dlen;
    size_t match; /* delimiter bytes matched so far (they are held back, not yet emitted as data) */
    int state;
    int result; /* sticky: an error or a callback's stop value */
    bool in_part;
    unsigned nparts;
    sc_mp_part part;
    size_t hlen;
    char hdr[SC_MP_HEADER_CAP];
} sc_multipart;

/* Finds the boundary parameter of a Content-Type value that is multipart/form-data. Returns 0 and points *out into
 * content_type, or SC_MP_E_BOUNDARY (wrong type, no boundary, or one RFC 2046 does not allow). */
int sc_multipart_boundary(sc_slice content_type, sc_slice *out);

/* Prepares a parser. Returns 0 or SC_MP_E_BOUNDARY for a boundary RFC 2046 does not allow. */
int sc_multipart_init(sc_multipart *mp, sc_slice boundary, const sc_mp_limits *limits, const sc_mp_callbacks *cb,
                      void *ctx);

/* Parses the next piece of the body. Returns 0, a negative SC_MP_E_* code, or the positive value a callback
 * returned to stop. */
int sc_multipart_feed(sc_multipart *mp, const char *data, size_t len);

/* The body has ended: 0 when the closing boundary was seen, else SC_MP_E_TRUNCATED (or the earlier result). */
int sc_multipart_finish(sc_multipart *mp);

#endif
