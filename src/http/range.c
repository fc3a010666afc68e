/* Range, If-Range and the other conditional headers (RFC 9110 sections 13 and 14).
 *
 * The Range header, as this parser reads it:
 *
 *     Range: bytes=0-499, 1000-, -500
 *            ^^^^^^ ^^^^^^^^^^^^^^^^^
 *            unit   range-set: range-specs separated by commas, spaces/tabs around them and empty elements allowed
 *            (any case)
 *
 *     range-spec   0-499    first "-" last   bytes 0 to 499, both included; a last past the end means the end
 *                  1000-    first "-"        from byte 1000 to the end
 *                  -500     "-" suffix       the last 500 bytes (the whole representation when it is shorter)
 *
 * first, last and suffix are 1*DIGIT of any length: they are read with saturation and compared digit by digit, so
 * 99999999999999999999 is simply "past the end" and never wraps. last < first makes the header invalid (ignored);
 * first >= size makes that range-spec unsatisfiable (dropped; 416 when none is left); "-0" has no bytes.
 *
 * Entity-tags (If-Match, If-None-Match, If-Range):  "opaque"  or  W/"opaque"  (W/: weak), lists comma-separated.
 * HTTP-dates: "Sun, 06 Nov 1994 08:49:37 GMT" (IMF-fixdate), "Sunday, 06-Nov-94 08:49:37 GMT" (RFC 850),
 * "Sun Nov  6 08:49:37 1994" (asctime). */
#include "http/range.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- numbers ---------------------------------------------------------------------------------------------- */

/* A decimal number as read from the client: its value (UINT64_MAX when it does not fit) and its digits without
 * leading zeros, for exact comparisons whatever the length. */
typedef struct number {
    uint64_t value;
    sc_slice digits;
} number;

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

/* Reads 1*DIGIT at s[*i]; false (and *i unchanged) when there is no digit. */
static bool read_number(sc_slice s, size_t *i, number *out)
{
    size_t start = *i, k = *i;
    uint64_t v = 0;
    bool big = false;
    while (k < s.len && is_digit(s.ptr[k])) {
        unsigned d = (unsigned)(s.ptr[k] - '0');
        if (big || v > (UINT64_MAX - d) / 10)
            big = true;
        else
            v = v * 10 + d;
        k++;
    }
    if (k == start)
        return false;
    size_t z = start;
    while (z + 1 < k && s.ptr[z] == '0')
        z++;
    out->value = big ? UINT64_MAX : v;
    out->digits = (sc_slice){s.ptr + z, k - z};
    *i = k;
    return true;
}

/* Compares two numbers exactly: without leading zeros, the longer is larger, and equal lengths compare like
 * strings. */
static int number_cmp(const number *a, const number *b)
{
    if (a->digits.len != b->digits.len)
        return a->digits.len < b->digits.len ? -1 : 1;
    int c = memcmp(a->digits.ptr, b->digits.ptr, a->digits.len);
    return (c > 0) - (c < 0);
}

/* ---- Range ------------------------------------------------------------------------------------------------ */

static void sort_by_first(sc_range *r, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        sc_range x = r[i];
        size_t j = i;
        while (j > 0 && r[j - 1].first > x.first) {
            r[j] = r[j - 1];
            j--;
        }
        r[j] = x;
    }
}

sc_range_outcome sc_range_parse(sc_slice value, uint64_t size, sc_range out[SC_RANGE_MAX], size_t *n)
{
    *n = 0;
    sc_slice v = sc_slice_trim(value);
    if (v.len < 6 || strncasecmp(v.ptr, "bytes=", 6) != 0)
        return SC_RANGE_IGNORE;
    sc_range got[SC_RANGE_MAX];
    size_t ngot = 0, specs = 0, i = 6;
    bool empty_suffix = false; /* a suffix range of an empty representation: satisfiable, but without bytes */
    for (;;) {
        while (i < v.len && (is_ows(v.ptr[i]) || v.ptr[i] == ','))
            i++; /* separators and empty list elements */
        if (i == v.len)
            break;
        if (++specs > SC_RANGE_MAX)
            return SC_RANGE_IGNORE;
        number a, b;
        bool satisfiable = false;
        uint64_t first = 0, last = 0;
        if (v.ptr[i] == '-') {
            i++;
            if (!read_number(v, &i, &a))
                return SC_RANGE_IGNORE;
            if (a.value > 0 && size == 0) {
                empty_suffix = true;
            } else if (a.value > 0) {
                satisfiable = true;
                first = a.value >= size ? 0 : size - a.value;
                last = size - 1;
            }
        } else {
            if (!read_number(v, &i, &a) || i == v.len || v.ptr[i] != '-')
                return SC_RANGE_IGNORE;
            i++;
            bool has_last = read_number(v, &i, &b);
            if (has_last && number_cmp(&b, &a) < 0)
                return SC_RANGE_IGNORE;
            if (a.value < size) {
                satisfiable = true;
                first = a.value;
                last = has_last && b.value < size - 1 ? b.value : size - 1;
            }
        }
        while (i < v.len && is_ows(v.ptr[i]))
            i++;
        if (i < v.len && v.ptr[i] != ',')
            return SC_RANGE_IGNORE; /* junk after a range-spec */
        if (satisfiable)
            got[ngot++] = (sc_range){first, last};
    }
    if (specs == 0)
        return SC_RANGE_IGNORE;
    if (ngot == 0)
        return empty_suffix ? SC_RANGE_IGNORE : SC_RANGE_UNSATISFIABLE;

    /* In ascending order: overlaps mean the whole file; neighbours closer than the merge gap become one range. */
    sc_range sorted[SC_RANGE_MAX], merged[SC_RANGE_MAX];
    memcpy(sorted, got, ngot * sizeof(sc_range));
    sort_by_first(sorted, ngot);
    size_t m = 0;
    for (size_t k = 0; k < ngot; k++) {
        if (m > 0 && sorted[k].first <= merged[m - 1].last)
            return SC_RANGE_IGNORE;
        if (m > 0 && sorted[k].first - merged[m - 1].last - 1 < SC_RANGE_MERGE_GAP)
            merged[m - 1].last = sorted[k].last;
        else
            merged[m++] = sorted[k];
    }
    /* The order requested stands unless something was merged. */
    const sc_range *use = m < ngot ? merged : got;
    *n = m < ngot ? m : ngot;
    memcpy(out, use, *n * sizeof(sc_range));
    return SC_RANGE_PARTIAL;
}

/* ---- entity-tags ------------------------------------------------------------------------------------------ */

/* The entity-tag at the start of s ([W/] DQUOTE *etagc DQUOTE): returns its length, or 0 when there is none, and
 * sets *weak and *opaque (the quoted part, quotes included). */
static size_t etag_at(sc_slice s, bool *weak, sc_slice *opaque)
{
    size_t i = 0;
    *weak = false;
    if (s.len >= 2 && s.ptr[0] == 'W' && s.ptr[1] == '/') {
        *weak = true;
        i = 2;
    }
    if (i >= s.len || s.ptr[i] != '"')
        return 0;
    size_t start = i++;
    while (i < s.len && s.ptr[i] != '"') {
        unsigned char ch = (unsigned char)s.ptr[i];
        if (ch < 0x21 || ch == 0x7f) /* etagc = %x21 / %x23-7E / obs-text */
            return 0;
        i++;
    }
    if (i == s.len)
        return 0;
    i++;
    *opaque = (sc_slice){s.ptr + start, i - start};
    return i;
}

bool sc_etag_match(sc_slice list, sc_slice etag, bool strong)
{
    bool our_weak, weak;
    sc_slice ours, tag;
    if (etag.len == 0 || etag_at(etag, &our_weak, &ours) != etag.len)
        return false;
    sc_slice l = sc_slice_trim(list);
    if (l.len == 1 && l.ptr[0] == '*')
        return true;
    if (strong && our_weak)
        return false;
    for (;;) {
        while (l.len && (is_ows(l.ptr[0]) || l.ptr[0] == ',')) {
            l.ptr++;
            l.len--;
        }
        if (l.len == 0)
            return false;
        size_t k = etag_at(l, &weak, &tag);
        if (k == 0)
            return false;
        if (sc_slice_eq(tag, ours) && !(strong && weak))
            return true;
        l.ptr += k;
        l.len -= k;
        while (l.len && is_ows(l.ptr[0])) {
            l.ptr++;
            l.len--;
        }
        if (l.len && l.ptr[0] != ',')
            return false;
    }
}

/* ---- HTTP-dates ------------------------------------------------------------------------------------------- */

static const char *const day_names[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const day_names_long[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                              "Thursday", "Friday", "Saturday"};
static const char *const month_names[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static unsigned days_in_month(unsigned year, unsigned month)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : dim[month - 1];
}

typedef struct cursor {
    const char *p, *end;
} cursor;

static bool lit(cursor *c, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* Exactly n digits. */
static bool digits(cursor *c, int n, unsigned *out)
{
    unsigned v = 0;
    if (c->end - c->p < n)
        return false;
    for (int i = 0; i < n; i++) {
        if (!is_digit(c->p[i]))
            return false;
        v = v * 10 + (unsigned)(c->p[i] - '0');
    }
    c->p += n;
    *out = v;
    return true;
}

/* One of the names (case-sensitive, as the grammar says); returns its index or -1. */
static int name(cursor *c, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (lit(c, names[i]))
            return i;
    return -1;
}

typedef struct date_parts {
    unsigned year, month, day, hour, min, sec;
} date_parts;

static bool time_of_day(cursor *c, date_parts *d)
{
    return digits(c, 2, &d->hour) && lit(c, ":") && digits(c, 2, &d->min) && lit(c, ":") &&
           digits(c, 2, &d->sec) && d->hour < 24 && d->min < 60 && d->sec <= 60;
}

static bool month(cursor *c, date_parts *d)
{
    int m = name(c, month_names, 12);
    d->month = (unsigned)(m + 1);
    return m >= 0;
}

/* Sun, 06 Nov 1994 08:49:37 GMT */
static bool imf_fixdate(cursor c, date_parts *d)
{
    return name(&c, day_names, 7) >= 0 && lit(&c, ", ") && digits(&c, 2, &d->day) && lit(&c, " ") &&
           month(&c, d) && lit(&c, " ") && digits(&c, 4, &d->year) && lit(&c, " ") && time_of_day(&c, d) &&
           lit(&c, " GMT") && c.p == c.end;
}

/* Sunday, 06-Nov-94 08:49:37 GMT */
static bool rfc850_date(cursor c, date_parts *d)
{
    if (!(name(&c, day_names_long, 7) >= 0 && lit(&c, ", ") && digits(&c, 2, &d->day) && lit(&c, "-") &&
          month(&c, d) && lit(&c, "-") && digits(&c, 2, &d->year) && lit(&c, " ") && time_of_day(&c, d) &&
          lit(&c, " GMT") && c.p == c.end))
        return false;
    d->year += d->year < 70 ? 2000 : 1900;
    return true;
}

/* Sun Nov  6 08:49:37 1994 */
static bool asctime_date(cursor c, date_parts *d)
{
    if (!(name(&c, day_names, 7) >= 0 && lit(&c, " ") && month(&c, d) && lit(&c, " ")))
        return false;
    if (!(digits(&c, 2, &d->day) || (lit(&c, " ") && digits(&c, 1, &d->day))))
        return false;
    return lit(&c, " ") && time_of_day(&c, d) && lit(&c, " ") && digits(&c, 4, &d->year) && c.p == c.end;
}

bool sc_http_date_parse(sc_slice s, int64_t *out)
{
    s = sc_slice_trim(s);
    cursor c = {s.ptr, s.ptr + s.len};
    date_parts d = {0};
    if (!s.len || !(imf_fixdate(c, &d) || rfc850_date(c, &d) || asctime_date(c, &d)))
        return false;
    if (d.day < 1 || d.day > days_in_month(d.year, d.month))
        return false;
    *out = days_from_civil(d.year, d.month, d.day) * 86400 + d.hour * 3600 + d.min * 60 + d.sec;
    return true;
}

void sc_http_date_format(int64_t t, char out[SC_HTTP_DATE_LEN + 1])
{
    static const int64_t min = -62167219200LL, max = 253402300799LL; /* 0000-01-01 .. 9999-12-31 23:59:59 */
    t = t < min ? min : t > max ? max : t;
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t secs = t - days * 86400, y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int wd = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
    /* Every field is in range after the clamp; the modulos only tell the compiler so. */
    snprintf(out, SC_HTTP_DATE_LEN + 1, "%s, %02u %s %04d %02d:%02d:%02d GMT", day_names[wd], d % 100u,
             month_names[(m - 1) % 12], (int)(y % 10000), (int)(secs / 3600 % 24), (int)(secs / 60 % 60),
             (int)(secs % 60));
}

/* ---- conditional requests --------------------------------------------------------------------------------- */

bool sc_range_if_range(sc_slice if_range, sc_slice etag, int64_t last_modified)
{
    sc_slice v = sc_slice_trim(if_range);
    if (v.len && (v.ptr[0] == '"' || (v.len >= 2 && v.ptr[0] == 'W' && v.ptr[1] == '/'))) {
        bool weak, our_weak;
        sc_slice tag, ours;
        if (etag_at(v, &weak, &tag) != v.len || weak)
            return false;
        if (etag.len == 0 || etag_at(etag, &our_weak, &ours) != etag.len || our_weak)
            return false;
        return sc_slice_eq(tag, ours);
    }
    int64_t t;
    return sc_http_date_parse(v, &t) && t == last_modified;
}

sc_range_condition sc_range_preconditions(const sc_range_request *r, sc_slice etag, int64_t last_modified,
                                          int64_t now)
{
    int64_t t;
    if (r->if_match.ptr) {
        if (!sc_etag_match(r->if_match, etag, true))
            return SC_RANGE_PRECONDITION_FAILED;
    } else if (r->if_unmodified_since.ptr && sc_http_date_parse(r->if_unmodified_since, &t)) {
        if (last_modified > t)
            return SC_RANGE_PRECONDITION_FAILED;
    }
    if (r->if_none_match.ptr) {
        if (sc_etag_match(r->if_none_match, etag, false))
            return SC_RANGE_NOT_MODIFIED;
    } else if (r->if_modified_since.ptr && sc_http_date_parse(r->if_modified_since, &t) && t <= now) {
        if (last_modified <= t)
            return SC_RANGE_NOT_MODIFIED;
    }
    return SC_RANGE_PROCEED;
}

sc_range_outcome sc_range_select(const sc_range_request *r, sc_slice etag, int64_t last_modified, uint64_t size,
                                 sc_range out[SC_RANGE_MAX], size_t *n)
{
    *n = 0;
    if (!r->range.ptr)
        return SC_RANGE_IGNORE;
    if (r->if_range.ptr && !sc_range_if_range(r->if_range, etag, last_modified))
        return SC_RANGE_IGNORE;
    return sc_range_parse(r->range, size, out, n);
}
