/* multipart/form-data, parsed as it streams in.
 *
 * The wire format (RFC 2046 section 5.1, RFC 7578), with boundary "XyZ":
 *
 *     preamble, ignored CRLF                       <- optional; the first boundary may also open the body
 *     --XyZ CRLF                                   <- delimiter line: "--" boundary, optional spaces/tabs, CRLF
 *     Content-Disposition: form-data; name="cover"; filename="a.png" CRLF
 *     Content-Type: image/png CRLF
 *     CRLF                                         <- end of the part's headers
 *     <part data, any bytes>
 *     CRLF --XyZ CRLF                              <- the CRLF before "--" belongs to the delimiter, not the data
 *     Content-Disposition: form-data; name="title" CRLF
 *     CRLF
 *     hello
 *     CRLF --XyZ-- CRLF                            <- close delimiter: "--" boundary "--"
 *     epilogue, ignored
 *
 * So the delimiter is CR LF "--" boundary, searched for in the data; the body is treated as if it began with a
 * CRLF so that a boundary on the very first line is found the same way. A boundary has no CR or LF in it, which
 * makes the search simple: a partial match can only restart at a CR, and the CR is the delimiter's first byte.
 * Bytes of a partial match at the end of a piece are held back (they are the delimiter's own bytes, so the parser
 * needs no copy of them) and passed on as data if the match fails in the next piece.
 *
 * Strictness: header lines end in CRLF (a bare CR or LF is an error), folded header lines are refused, every
 * part needs Content-Disposition: form-data with a name, and a delimiter must be followed by "--", or by optional
 * whitespace and CRLF (a boundary string that appears inside data followed by something else is an error: the
 * sender chose a boundary that occurs in its data). Nested multipart/mixed parts are passed on as opaque data. */
#include "http/multipart.h"

#include <stddef.h>
#include <string.h>

enum {
    S_PREAMBLE, /* before the first delimiter */
    S_AFTER,    /* right after a delimiter: "--", padding or CRLF next */
    S_DASH,     /* after the first '-' of a close delimiter */
    S_PAD,      /* spaces or tabs after a delimiter */
    S_LF,       /* the CR of the delimiter line's end was seen */
    S_HEADERS,  /* a part's header block */
    S_BODY,     /* a part's data */
    S_EPILOGUE, /* after the close delimiter: ignored */
};

SC_ERROR_STRERROR(sc_multipart_strerror, SC_MP_ERRORS, "multipart parser stopped")

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* ---- parameters: type/subtype; name=value; name="quoted value" ------------------------------------------ */

typedef struct param_iter {
    const char *p;
    size_t n, i;
} param_iter;

static void skip_ows(param_iter *it)
{
    while (it->i < it->n && (it->p[it->i] == ' ' || it->p[it->i] == '\t'))
        it->i++;
}

/* The leading token of a header value (a disposition type, a media type with its '/'), trimmed. */
static sc_slice first_item(param_iter *it)
{
    while (it->i < it->n && it->p[it->i] != ';')
        it->i++;
    return sc_slice_trim((sc_slice){it->p, it->i});
}

/* What next_param found: three answers, so each has its name. */
typedef enum param_step { PARAM_MALFORMED = -1, PARAM_END = 0, PARAM_FOUND = 1 } param_step;

/* The next "; name=value" parameter: PARAM_FOUND with the name and value (quotes removed, backslash escapes still
 * in, *escaped set when there are any), PARAM_END at the end, PARAM_MALFORMED on a syntax error. */
static param_step next_param(param_iter *it, sc_slice *name, sc_slice *value, bool *escaped)
{
    for (;;) {
        skip_ows(it);
        if (it->i >= it->n)
            return PARAM_END;
        if (it->p[it->i] != ';')
            return PARAM_MALFORMED;
        it->i++;
        skip_ows(it);
        if (it->i < it->n && it->p[it->i] != ';')
            break; /* an empty parameter (";;", a trailing ';') is tolerated */
    }
    size_t start = it->i;
    while (it->i < it->n && is_tchar((unsigned char)it->p[it->i]))
        it->i++;
    *name = (sc_slice){it->p + start, it->i - start};
    skip_ows(it);
    if (name->len == 0 || it->i >= it->n || it->p[it->i] != '=')
        return PARAM_MALFORMED;
    it->i++;
    skip_ows(it);
    *escaped = false;
    if (it->i < it->n && it->p[it->i] == '"') {
        start = ++it->i;
        for (;;) {
            if (it->i >= it->n)
                return PARAM_MALFORMED; /* no closing quote */
            char c = it->p[it->i];
            if (c == '"')
                break;
            if (c == '\\') {
                *escaped = true;
                if (++it->i >= it->n)
                    return PARAM_MALFORMED;
            }
            it->i++;
        }
        *value = (sc_slice){it->p + start, it->i - start};
        it->i++;
        return PARAM_FOUND;
    }
    start = it->i;
    while (it->i < it->n && is_tchar((unsigned char)it->p[it->i]))
        it->i++;
    *value = (sc_slice){it->p + start, it->i - start};
    return value->len ? PARAM_FOUND : PARAM_MALFORMED;
}

/* Removes backslash escapes in place (the value lives in the parser's header buffer). */
static sc_slice unescape(char *base, sc_slice v)
{
    char *w = base + (v.ptr - base);
    const char *r = v.ptr, *end = v.ptr + v.len;
    char *start = w;
    while (r < end) {
        if (*r == '\\' && r + 1 < end)
            r++;
        *w++ = *r++;
    }
    return (sc_slice){start, (size_t)(w - start)};
}

static bool valid_boundary(sc_slice b)
{
    if (b.len == 0 || b.len > SC_MP_MAX_BOUNDARY || b.ptr[b.len - 1] == ' ')
        return false;
    for (size_t i = 0; i < b.len; i++)
        if ((unsigned char)b.ptr[i] < 0x20 || (unsigned char)b.ptr[i] > 0x7e)
            return false;
    return true;
}

int sc_multipart_boundary(sc_slice content_type, sc_slice *out)
{
    param_iter it = {content_type.ptr, content_type.ptr ? content_type.len : 0, 0};
    if (!sc_slice_eq_nocase(first_item(&it), SC_SLICE_LIT("multipart/form-data")))
        return SC_MP_E_BOUNDARY;
    sc_slice name, value, found = SC_SLICE_NULL;
    bool escaped;
    param_step step;
    while ((step = next_param(&it, &name, &value, &escaped)) == PARAM_FOUND) {
        if (!sc_slice_eq_nocase(name, SC_SLICE_LIT("boundary")))
            continue;
        /* Boundary characters (RFC 2046) need no escaping: a backslash means something else was meant. */
        if (found.ptr || escaped || !valid_boundary(value))
            return SC_MP_E_BOUNDARY;
        found = value;
    }
    if (step == PARAM_MALFORMED || !found.ptr)
        return SC_MP_E_BOUNDARY;
    *out = found;
    return 0;
}

/* ---- the parser ----------------------------------------------------------------------------------------- */

int sc_multipart_init(sc_multipart *mp, sc_slice boundary, const sc_mp_limits *limits, const sc_mp_callbacks *cb,
                      void *ctx)
{
    memset(mp, 0, offsetof(sc_multipart, hdr));
    if (!valid_boundary(boundary))
        return mp->result = SC_MP_E_BOUNDARY;
    mp->cb = cb;
    mp->ctx = ctx;
    if (limits)
        mp->limits = *limits;
    if (mp->limits.max_header_bytes == 0 || mp->limits.max_header_bytes > SC_MP_HEADER_CAP)
        mp->limits.max_header_bytes = SC_MP_HEADER_CAP;
    memcpy(mp->delim, "\r\n--", 4);
    memcpy(mp->delim + 4, boundary.ptr, boundary.len);
    mp->dlen = 4 + boundary.len;
    mp->state = S_PREAMBLE;
    mp->match = 2; /* the body counts as starting after a CRLF, so that it may open with "--boundary" */
    return 0;
}

static int stop(sc_multipart *mp, int rc)
{
    mp->result = rc;
    return rc;
}

static int emit(sc_multipart *mp, const char *p, size_t n)
{
    if (n == 0 || mp->state != S_BODY)
        return 0; /* preamble bytes go nowhere */
    return mp->cb->on_part_data(mp->ctx, p, n);
}

/* Looks for the delimiter in p[0..n), passing data before it on (in a part). Sets *used to the bytes consumed
 * (all of them unless the delimiter ends inside p) and *found when it completed. */
static int scan(sc_multipart *mp, const char *p, size_t n, size_t *used, bool *found)
{
    size_t carried = mp->match; /* matched bytes that arrived in earlier pieces (held back) */
    size_t i = 0;
    int rc;
    *found = false;
    *used = n;
    while (i < n) {
        if (mp->match == 0) {
            const char *cr = memchr(p + i, '\r', n - i);
            if (!cr) {
                i = n;
                break;
            }
            i = (size_t)(cr - p) + 1;
            mp->match = 1;
            continue;
        }
        if (p[i] == mp->delim[mp->match]) {
            i++;
            if (++mp->match < mp->dlen)
                continue;
            /* The delimiter is complete; whatever preceded it in p is data. A match that began in an earlier
             * piece covers p from its start. */
            size_t start = i - (mp->dlen - carried);
            mp->match = 0;
            *used = i;
            *found = true;
            return emit(mp, p, start);
        }
        /* Mismatch: held-back bytes from earlier pieces were data after all (they precede everything in p);
         * matched bytes inside p simply stay part of p's data. p[i] is looked at again: it may be a CR. */
        if (carried && (rc = emit(mp, mp->delim, carried)) != 0)
            return rc;
        carried = 0;
        mp->match = 0;
    }
    /* Hold back the bytes of a partial match inside p. */
    return emit(mp, p, n - (mp->match - carried));
}

/* Parses the complete header block in mp->hdr (lines ending in CRLF, then an empty line). */
static int parse_headers(sc_multipart *mp)
{
    sc_mp_part *part = &mp->part;
    memset(part, 0, sizeof(*part));
    part->index = mp->nparts - 1;
    bool have_disposition = false, have_type = false;
    size_t pos = 0, end = mp->hlen - 2; /* without the final empty line */
    while (pos < end) {
        const char *line = mp->hdr + pos;
        const char *crlf = memchr(line, '\r', end - pos);
        size_t len = (size_t)(crlf - line); /* every line ends in CRLF: checked as the bytes came in */
        pos += len + 2;
        if (len == 0 || line[0] == ' ' || line[0] == '\t')
            return SC_MP_E_HEADER; /* empty or folded line */
        const char *colon = memchr(line, ':', len);
        if (!colon || colon == line)
            return SC_MP_E_HEADER;
        sc_slice name = {line, (size_t)(colon - line)};
        for (size_t k = 0; k < name.len; k++)
            if (!is_tchar((unsigned char)name.ptr[k]))
                return SC_MP_E_HEADER;
        sc_slice value = sc_slice_trim((sc_slice){colon + 1, len - name.len - 1});
        if (sc_slice_eq_nocase(name, SC_SLICE_LIT("content-type"))) {
            if (have_type)
                return SC_MP_E_HEADER;
            have_type = true;
            part->content_type = value;
            continue;
        }
        if (!sc_slice_eq_nocase(name, SC_SLICE_LIT("content-disposition")))
            continue;
        if (have_disposition)
            return SC_MP_E_HEADER;
        have_disposition = true;
        param_iter it = {value.ptr, value.len, 0};
        if (!sc_slice_eq_nocase(first_item(&it), SC_SLICE_LIT("form-data")))
            return SC_MP_E_DISPOSITION;
        sc_slice pname, pvalue;
        bool escaped;
        param_step step;
        while ((step = next_param(&it, &pname, &pvalue, &escaped)) == PARAM_FOUND) {
            sc_slice *dst = NULL;
            if (sc_slice_eq_nocase(pname, SC_SLICE_LIT("name")))
                dst = &part->name;
            else if (sc_slice_eq_nocase(pname, SC_SLICE_LIT("filename")))
                dst = &part->filename;
            else
                continue;
            if (dst->ptr)
                return SC_MP_E_HEADER; /* the same parameter twice */
            *dst = escaped ? unescape(mp->hdr, pvalue) : pvalue;
        }
        if (step == PARAM_MALFORMED)
            return SC_MP_E_HEADER;
    }
    if (!have_disposition || !part->name.ptr)
        return SC_MP_E_DISPOSITION;
    return 0;
}

/* Collects header bytes until the empty line; then the part begins. */
static int headers(sc_multipart *mp, const char *p, size_t n, size_t *used)
{
    size_t i = 0;
    *used = n;
    while (i < n) {
        unsigned char c = (unsigned char)p[i++];
        char prev = mp->hlen ? mp->hdr[mp->hlen - 1] : '\0';
        if ((prev == '\r') != (c == '\n'))
            return SC_MP_E_HEADER; /* CR without LF, or LF without CR */
        if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f)
            return SC_MP_E_HEADER;
        if (mp->hlen >= mp->limits.max_header_bytes)
            return SC_MP_E_HEADER_TOO_LARGE;
        mp->hdr[mp->hlen++] = (char)c;
        if (c != '\n' || !(mp->hlen == 2 || (mp->hlen >= 4 && memcmp(mp->hdr + mp->hlen - 4, "\r\n\r\n", 4) == 0)))
            continue;
        *used = i;
        int rc = parse_headers(mp);
        if (rc)
            return rc;
        mp->state = S_BODY;
        mp->in_part = true;
        return mp->cb->on_part_begin(mp->ctx, &mp->part);
    }
    return 0;
}

int sc_multipart_feed(sc_multipart *mp, const char *data, size_t len)
{
    size_t i = 0;
    while (i < len && !mp->result) {
        int rc = 0;
        size_t used;
        bool found;
        char c;
        switch (mp->state) {
        case S_PREAMBLE:
        case S_BODY:
            rc = scan(mp, data + i, len - i, &used, &found);
            i += used;
            if (rc || !found)
                break;
            if (mp->in_part) {
                mp->in_part = false;
                rc = mp->cb->on_part_end(mp->ctx, &mp->part);
            }
            mp->state = S_AFTER;
            break;
        case S_AFTER:
            c = data[i++];
            if (c == '-')
                mp->state = S_DASH;
            else if (c == '\r')
                mp->state = S_LF;
            else if (c == ' ' || c == '\t')
                mp->state = S_PAD;
            else
                rc = SC_MP_E_DELIMITER;
            break;
        case S_DASH:
            if (data[i++] == '-')
                mp->state = S_EPILOGUE;
            else
                rc = SC_MP_E_DELIMITER;
            break;
        case S_PAD:
            c = data[i++];
            if (c == '\r')
                mp->state = S_LF;
            else if (c != ' ' && c != '\t')
                rc = SC_MP_E_DELIMITER;
            break;
        case S_LF:
            if (data[i++] != '\n') {
                rc = SC_MP_E_DELIMITER;
            } else if (mp->limits.max_parts && mp->nparts >= mp->limits.max_parts) {
                rc = SC_MP_E_TOO_MANY_PARTS;
            } else {
                mp->nparts++;
                mp->hlen = 0;
                mp->state = S_HEADERS;
            }
            break;
        case S_HEADERS:
            rc = headers(mp, data + i, len - i, &used);
            i += used;
            break;
        case S_EPILOGUE:
            i = len;
            break;
        }
        if (rc)
            return stop(mp, rc);
    }
    return mp->result;
}

int sc_multipart_finish(sc_multipart *mp)
{
    if (mp->result)
        return mp->result;
    return mp->state == S_EPILOGUE ? 0 : stop(mp, SC_MP_E_TRUNCATED);
}
