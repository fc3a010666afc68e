/* Range, If-Range and the conditional headers (http/range.c): every Range form, exact big numbers, junk,
 * whitespace, the range-spec cap, overlap and merge rules; entity-tag lists; the three HTTP-date formats. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "http/range.h"

#define SIZE 10000

typedef struct parsed {
    sc_range_outcome result;
    size_t n;
    sc_range r[SC_RANGE_MAX];
} parsed;

static parsed parse(const char *value, uint64_t size)
{
    parsed p;
    memset(&p, 0x5a, sizeof(p)); /* garbage in: the parser must set what it reports */
    p.result = sc_range_parse(sc_slice_cstr(value), size, p.r, &p.n);
    return p;
}

/* Expects SC_RANGE_PARTIAL with the ranges given as "first-last first-last ...". */
static void expect_ranges(const char *value, uint64_t size, const char *want)
{
    parsed p = parse(value, size);
    char got[512] = "";
    size_t o = 0;
    if (p.result == SC_RANGE_PARTIAL)
        for (size_t i = 0; i < p.n && i < SC_RANGE_MAX; i++)
            o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%llu-%llu", i ? " " : "",
                                  (unsigned long long)p.r[i].first, (unsigned long long)p.r[i].last);
    else
        snprintf(got, sizeof(got), "result %d", (int)p.result);
    if (!CHECK_EQ_STR(got, want))
        fprintf(stderr, "  for Range: %s (size %llu)\n", value, (unsigned long long)size);
}

static void expect_result(const char *value, uint64_t size, sc_range_outcome want)
{
    parsed p = parse(value, size);
    if (!CHECK_EQ_INT(p.result, want))
        fprintf(stderr, "  for Range: %s (size %llu)\n", value, (unsigned long long)size);
    if (want != SC_RANGE_PARTIAL)
        CHECK_EQ_UINT(p.n, 0);
}

static void test_forms(void)
{
    expect_ranges("bytes=0-99", SIZE, "0-99");
    expect_ranges("bytes=9500-", SIZE, "9500-9999");
    expect_ranges("bytes=-500", SIZE, "9500-9999");
    expect_ranges("bytes=0-", SIZE, "0-9999");
    expect_ranges("bytes=9999-9999", SIZE, "9999-9999");
    expect_ranges("bytes=0-0", SIZE, "0-0");
    expect_ranges("bytes=-1", SIZE, "9999-9999");
    /* A last-pos past the end is the end; a suffix longer than the file is the file. */
    expect_ranges("bytes=100-20000", SIZE, "100-9999");
    expect_ranges("bytes=-20000", SIZE, "0-9999");
    expect_ranges("bytes=-10000", SIZE, "0-9999");
    /* The unit is case-insensitive. */
    expect_ranges("BYTES=0-1", SIZE, "0-1");
    expect_ranges("Bytes=0-1", SIZE, "0-1");
    /* Leading zeros. */
    expect_ranges("bytes=0000000000000000000000000001-0000000000000000000000000002", SIZE, "1-2");
    /* A file of one byte. */
    expect_ranges("bytes=0-0", 1, "0-0");
    expect_ranges("bytes=-1", 1, "0-0");
    expect_ranges("bytes=0-", 1, "0-0");
}

static void test_unsatisfiable(void)
{
    expect_result("bytes=10000-", SIZE, SC_RANGE_UNSATISFIABLE);
    expect_result("bytes=10000-10001", SIZE, SC_RANGE_UNSATISFIABLE);
    expect_result("bytes=20000-30000, 40000-", SIZE, SC_RANGE_UNSATISFIABLE);
    expect_result("bytes=-0", SIZE, SC_RANGE_UNSATISFIABLE);
    /* Unsatisfiable range-specs among satisfiable ones are dropped. */
    expect_ranges("bytes=0-9, 20000-", SIZE, "0-9");
    expect_ranges("bytes=-0, 5-6", SIZE, "5-6");
    /* An empty representation: only a suffix range is satisfiable, and it has no bytes to send. */
    expect_result("bytes=0-", 0, SC_RANGE_UNSATISFIABLE);
    expect_result("bytes=0-0", 0, SC_RANGE_UNSATISFIABLE);
    expect_result("bytes=-0", 0, SC_RANGE_UNSATISFIABLE);
    expect_result("bytes=-5", 0, SC_RANGE_IGNORE);
}

static void test_big_numbers(void)
{
    expect_ranges("bytes=0-99999999999999999999", SIZE, "0-9999");
    expect_ranges("bytes=0-18446744073709551615", SIZE, "0-9999");
    expect_ranges("bytes=0-18446744073709551616", SIZE, "0-9999");
    expect_ranges("bytes=-99999999999999999999999999999999", SIZE, "0-9999");
    expect_result("bytes=99999999999999999999-", SIZE, SC_RANGE_UNSATISFIABLE);
    expect_result("bytes=18446744073709551615-", SIZE, SC_RANGE_UNSATISFIABLE);
    /* Both past UINT64_MAX: compared exactly, not as two saturated values. */
    expect_result("bytes=18446744073709551616-18446744073709551617", SIZE, SC_RANGE_UNSATISFIABLE);
    expect_result("bytes=18446744073709551617-18446744073709551616", SIZE, SC_RANGE_IGNORE);
    expect_result("bytes=99999999999999999999-99999999999999999998", SIZE, SC_RANGE_IGNORE);
    expect_result("bytes=100000000000000000000-99999999999999999999", SIZE, SC_RANGE_IGNORE);
    expect_result("bytes=0099999999999999999999-99999999999999999999", SIZE, SC_RANGE_UNSATISFIABLE);
    /* A size near the top of the range. */
    expect_ranges("bytes=-1", UINT64_MAX - 1, "18446744073709551613-18446744073709551613");
    expect_ranges("bytes=18446744073709551613-", UINT64_MAX - 1, "18446744073709551613-18446744073709551613");
}

static void test_junk(void)
{
    static const char *const junk[] = {
        "",           "bytes",          "bytes=",      "bytes=,",          "bytes= , ,",    "bytes=abc",
        "bytes=0-1x", "bytes=1",        "bytes=-",     "bytes=--1",        "bytes=0--1",    "bytes=+1-2",
        "bytes=0-+2", "bytes=0-1;",     "bytes=0 -1",  "bytes=0- 1",       "bytes=- 1",     "bytes=0-1 2-3",
        "bytes 0-1",  "bytes =0-1",     "items=0-1",   "bytesx=0-1",       "byte=0-1",      "bytes=100-99",
        "bytes=1-0",  "bytes=0-1,junk", "bytes=0x1-2", "bytes=\xd9\xa1-2", "bytes=0-1\r\n", "bytes=1e3-",
        "=0-1",       "bytes=0-1,-",    "bytes=-1-2",
    };
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        expect_result(junk[i], SIZE, SC_RANGE_IGNORE);
    /* An embedded NUL ends nothing: the slice's length counts. */
    sc_range r[SC_RANGE_MAX];
    size_t n;
    CHECK_EQ_INT(sc_range_parse((sc_slice){"bytes=0-1\0", 10}, SIZE, r, &n), SC_RANGE_IGNORE);
    CHECK_EQ_INT(sc_range_parse(SC_SLICE_NULL, SIZE, r, &n), SC_RANGE_IGNORE);
}

static void test_whitespace(void)
{
    expect_ranges("  bytes=0-99  ", SIZE, "0-99");
    expect_ranges("bytes=0-99 ,\t 1000-1099", SIZE, "0-99 1000-1099");
    expect_ranges("bytes=0-99,1000-1099", SIZE, "0-99 1000-1099");
    expect_ranges("bytes= 0-99", SIZE, "0-99");
    expect_ranges("bytes=0-99\t", SIZE, "0-99");
    /* Empty list elements are skipped (RFC 9110 section 5.6.1.2). */
    expect_ranges("bytes=,0-99,,1000-1099,", SIZE, "0-99 1000-1099");
}

static void test_many(void)
{
    char v[1024];
    size_t o = (size_t)snprintf(v, sizeof(v), "bytes=");
    for (int i = 0; i < SC_RANGE_MAX; i++)
        o += (size_t)snprintf(v + o, sizeof(v) - o, "%s%d-%d", i ? "," : "", i * 200, i * 200 + 9);
    parsed p = parse(v, SIZE);
    CHECK_EQ_INT(p.result, SC_RANGE_PARTIAL);
    CHECK_EQ_UINT(p.n, SC_RANGE_MAX);
    CHECK_EQ_UINT(p.r[SC_RANGE_MAX - 1].first, (SC_RANGE_MAX - 1) * 200);
    /* Empty elements do not count against the cap. */
    char w[1100];
    snprintf(w, sizeof(w), "bytes=,,,%s,,,", v + 6);
    CHECK_EQ_INT(parse(w, SIZE).result, SC_RANGE_PARTIAL);
    /* One more range-spec: the header is ignored, even if the extra one is unsatisfiable. */
    snprintf(v + o, sizeof(v) - o, ",%d-%d", SC_RANGE_MAX * 200, SC_RANGE_MAX * 200 + 9);
    expect_result(v, SIZE, SC_RANGE_IGNORE);
    snprintf(v + o, sizeof(v) - o, ",99999-");
    expect_result(v, SIZE, SC_RANGE_IGNORE);
    /* Hundreds of tiny ranges (the classic amplification request). */
    char big[8192];
    o = (size_t)snprintf(big, sizeof(big), "bytes=");
    for (int i = 0; i < 500; i++)
        o += (size_t)snprintf(big + o, sizeof(big) - o, "%s0-", i ? "," : "");
    expect_result(big, SIZE, SC_RANGE_IGNORE);
}

static void test_overlap_and_merge(void)
{
    /* Overlaps: the whole file. This is also the only way ranges can add up to more than the file. */
    expect_result("bytes=0-99,50-149", SIZE, SC_RANGE_IGNORE);
    expect_result("bytes=0-0,0-0", SIZE, SC_RANGE_IGNORE);
    expect_result("bytes=-500,9000-", SIZE, SC_RANGE_IGNORE);
    expect_result("bytes=0-,5000-5001", SIZE, SC_RANGE_IGNORE);
    expect_result("bytes=5000-5999,0-9999", SIZE, SC_RANGE_IGNORE);
    expect_result("bytes=0-9999,0-9999", SIZE, SC_RANGE_IGNORE);
    /* Adjacent ranges merge. */
    expect_ranges("bytes=0-99,100-199", SIZE, "0-199");
    expect_ranges("bytes=100-199,0-99", SIZE, "0-199");
    /* A gap below SC_RANGE_MERGE_GAP merges, one of that size does not. */
    expect_ranges("bytes=0-99,179-199", SIZE, "0-199");
    expect_ranges("bytes=0-99,180-199", SIZE, "0-99 180-199");
    /* Without merges the order requested stands; with one, ascending order. */
    expect_ranges("bytes=1000-1099,0-99", SIZE, "1000-1099 0-99");
    expect_ranges("bytes=1000-1099,0-99,100-199", SIZE, "0-199 1000-1099");
    expect_ranges("bytes=-100,0-99,5000-5099", SIZE, "9900-9999 0-99 5000-5099");
    /* Merging can leave one range that is the whole file: still a 206 of one range. */
    expect_ranges("bytes=0-4999,5000-", SIZE, "0-9999");
}

static sc_slice S(const char *s) { return sc_slice_cstr(s); }

#define ETAG "\"0123abcd\""

static void test_etag_match(void)
{
    /* Weak comparison (If-None-Match). */
    CHECK(sc_etag_match(S(ETAG), S(ETAG), false));
    CHECK(sc_etag_match(S("W/" ETAG), S(ETAG), false));
    CHECK(sc_etag_match(S(ETAG), S("W/" ETAG), false));
    CHECK(sc_etag_match(S("*"), S(ETAG), false));
    CHECK(sc_etag_match(S(" * "), S(ETAG), false));
    CHECK(sc_etag_match(S("\"x\", " ETAG), S(ETAG), false));
    CHECK(sc_etag_match(S("\"x\",W/\"y\" ,\t" ETAG " , \"z\""), S(ETAG), false));
    CHECK(sc_etag_match(S(", ," ETAG ",,"), S(ETAG), false));
    CHECK(!sc_etag_match(S("\"0123abc\""), S(ETAG), false));
    CHECK(!sc_etag_match(S("\"0123ABCD\""), S(ETAG), false)); /* opaque tags are case-sensitive */
    CHECK(!sc_etag_match(S("0123abcd"), S(ETAG), false));     /* unquoted */
    CHECK(!sc_etag_match(S("w/" ETAG), S(ETAG), false));      /* the W is upper case */
    CHECK(!sc_etag_match(S(""), S(ETAG), false));
    CHECK(!sc_etag_match(S("\"x\" \"y\", " ETAG), S(ETAG), false)); /* damaged before the match */
    CHECK(sc_etag_match(S(ETAG ", \"x\" junk"), S(ETAG), false));   /* matched before the damage */
    CHECK(!sc_etag_match(S("*, " ETAG "x"), S(ETAG), false));
    CHECK(!sc_etag_match(S("\"unterminated"), S(ETAG), false));
    CHECK(!sc_etag_match(S("\"a b\""), S("\"a b\""), false)); /* a space is not an etagc */
    /* Strong comparison (If-Match). */
    CHECK(sc_etag_match(S(ETAG), S(ETAG), true));
    CHECK(sc_etag_match(S("*"), S(ETAG), true));
    CHECK(!sc_etag_match(S("W/" ETAG), S(ETAG), true));
    CHECK(!sc_etag_match(S(ETAG), S("W/" ETAG), true));
    CHECK(sc_etag_match(S("W/" ETAG ", " ETAG), S(ETAG), true));
    /* A broken etag of ours matches nothing but "*". */
    CHECK(!sc_etag_match(S("\"x\""), S("x"), false));
    CHECK(!sc_etag_match(S(""), S(""), false));
}

#define T1994 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT */

static void expect_date(const char *s, int64_t want)
{
    int64_t t = -12345;
    if (!CHECK(sc_http_date_parse(S(s), &t)))
        fprintf(stderr, "  for date: %s\n", s);
    else if (!CHECK_EQ_INT(t, want))
        fprintf(stderr, "  for date: %s\n", s);
}

static void expect_bad_date(const char *s)
{
    int64_t t;
    if (!CHECK(!sc_http_date_parse(S(s), &t)))
        fprintf(stderr, "  accepted date: %s\n", s);
}

static void test_dates(void)
{
    expect_date("Sun, 06 Nov 1994 08:49:37 GMT", T1994);
    expect_date("Sunday, 06-Nov-94 08:49:37 GMT", T1994);
    expect_date("Sun Nov  6 08:49:37 1994", T1994);
    expect_date("Sun Nov 06 08:49:37 1994", T1994);
    expect_date("  Sun, 06 Nov 1994 08:49:37 GMT ", T1994);
    expect_date("Thu, 01 Jan 1970 00:00:00 GMT", 0);
    expect_date("Wed, 31 Dec 1969 23:59:59 GMT", -1);
    expect_date("Tue, 29 Feb 2000 12:00:00 GMT", 951825600);
    expect_date("Fri, 31 Dec 9999 23:59:59 GMT", 253402300799LL);
    expect_date("Thursday, 01-Jan-70 00:00:00 GMT", 0);
    expect_date("Saturday, 01-Jan-00 00:00:00 GMT", 946684800);
    expect_date("Sat, 31 Dec 2016 23:59:60 GMT", 1483228800); /* a leap second is the next second */
    /* The day name is not checked against the date (RFC 9110 lets recipients ignore it). */
    expect_date("Mon, 06 Nov 1994 08:49:37 GMT", T1994);
    expect_bad_date("");
    expect_bad_date("Sun, 06 Nov 1994 08:49:37");
    expect_bad_date("Sun, 06 Nov 1994 08:49:37 UTC");
    expect_bad_date("Sun, 06 Nov 1994 08:49:37 gmt");
    expect_bad_date("sun, 06 Nov 1994 08:49:37 GMT");
    expect_bad_date("Sun, 06 nov 1994 08:49:37 GMT");
    expect_bad_date("Sun, 6 Nov 1994 08:49:37 GMT");
    expect_bad_date("Sun, 06 Nov 94 08:49:37 GMT");
    expect_bad_date("Sun, 06 Nov 1994 8:49:37 GMT");
    expect_bad_date("Sun, 06 Nov 1994 24:00:00 GMT");
    expect_bad_date("Sun, 06 Nov 1994 23:60:00 GMT");
    expect_bad_date("Sun, 06 Nov 1994 23:59:61 GMT");
    expect_bad_date("Sun, 31 Apr 1994 08:49:37 GMT");
    expect_bad_date("Sun, 29 Feb 1900 08:49:37 GMT");
    expect_bad_date("Sun, 29 Feb 2001 08:49:37 GMT");
    expect_bad_date("Sun, 00 Nov 1994 08:49:37 GMT");
    expect_bad_date("Sun, 06 Nov 1994 08:49:37 GMTx");
    expect_bad_date("Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT");
    expect_bad_date("Sun,  06 Nov 1994 08:49:37 GMT");
    expect_bad_date("Sunday, 06 Nov 1994 08:49:37 GMT");
    expect_bad_date("Sun, 06-Nov-94 08:49:37 GMT");
    expect_bad_date("Sun Nov 6 08:49:37 1994");
    expect_bad_date("Sun Nov  6 08:49:37 94");
    expect_bad_date("1994-11-06T08:49:37Z");
    expect_bad_date("784111777");
}

static void test_date_format(void)
{
    char b[SC_HTTP_DATE_LEN + 1];
    sc_http_date_format(T1994, b);
    CHECK_EQ_STR(b, "Sun, 06 Nov 1994 08:49:37 GMT");
    sc_http_date_format(0, b);
    CHECK_EQ_STR(b, "Thu, 01 Jan 1970 00:00:00 GMT");
    sc_http_date_format(-1, b);
    CHECK_EQ_STR(b, "Wed, 31 Dec 1969 23:59:59 GMT");
    sc_http_date_format(951825600, b);
    CHECK_EQ_STR(b, "Tue, 29 Feb 2000 12:00:00 GMT");
    sc_http_date_format(INT64_MAX, b); /* clamped to the last second of 9999 */
    CHECK_EQ_STR(b, "Fri, 31 Dec 9999 23:59:59 GMT");
    sc_http_date_format(INT64_MIN, b);
    CHECK_EQ_STR(b, "Sat, 01 Jan 0000 00:00:00 GMT");
    /* Round trips over a spread of times, leap days included. */
    for (int64_t t = -2208988800LL; t < 4102444800LL; t += 86400 * 97 + 3607) {
        int64_t back;
        sc_http_date_format(t, b);
        if (!CHECK(sc_http_date_parse(S(b), &back)) || !CHECK_EQ_INT(back, t)) {
            fprintf(stderr, "  round trip of %lld: %s\n", (long long)t, b);
            break;
        }
    }
}

static void test_if_range(void)
{
    CHECK(sc_range_if_range(S(ETAG), S(ETAG), T1994));
    CHECK(sc_range_if_range(S(" " ETAG " "), S(ETAG), T1994));
    CHECK(!sc_range_if_range(S("\"other\""), S(ETAG), T1994));
    CHECK(!sc_range_if_range(S("W/" ETAG), S(ETAG), T1994)); /* If-Range compares strongly */
    CHECK(!sc_range_if_range(S(ETAG), S("W/" ETAG), T1994));
    CHECK(!sc_range_if_range(S(ETAG ", " ETAG), S(ETAG), T1994)); /* one validator, not a list */
    CHECK(sc_range_if_range(S("Sun, 06 Nov 1994 08:49:37 GMT"), S(ETAG), T1994));
    CHECK(sc_range_if_range(S("Sun Nov  6 08:49:37 1994"), S(ETAG), T1994));
    CHECK(!sc_range_if_range(S("Sun, 06 Nov 1994 08:49:38 GMT"), S(ETAG), T1994));
    CHECK(!sc_range_if_range(S("Sun, 06 Nov 1994 08:49:36 GMT"), S(ETAG), T1994));
    CHECK(!sc_range_if_range(S("Wed, 09 Nov 1994 08:49:37 GMT"), S(ETAG), T1994)); /* later is not equal either */
    CHECK(!sc_range_if_range(S("garbage"), S(ETAG), T1994));
    CHECK(!sc_range_if_range(S(""), S(ETAG), T1994));
    CHECK(!sc_range_if_range(S("*"), S(ETAG), T1994));
}

static int pre(const char *inm, const char *ims, const char *im, const char *ius, int64_t lm, int64_t now)
{
    sc_range_request r = {0};
    r.if_none_match = inm ? S(inm) : SC_SLICE_NULL;
    r.if_modified_since = ims ? S(ims) : SC_SLICE_NULL;
    r.if_match = im ? S(im) : SC_SLICE_NULL;
    r.if_unmodified_since = ius ? S(ius) : SC_SLICE_NULL;
    return sc_range_preconditions(&r, S(ETAG), lm, now);
}

#define D1994 "Sun, 06 Nov 1994 08:49:37 GMT"
#define NOW 1700000000

static void test_preconditions(void)
{
    CHECK_EQ_INT(pre(NULL, NULL, NULL, NULL, T1994, NOW), 0);
    /* If-None-Match: weak comparison, lists, "*". */
    CHECK_EQ_INT(pre(ETAG, NULL, NULL, NULL, T1994, NOW), 304);
    CHECK_EQ_INT(pre("W/" ETAG, NULL, NULL, NULL, T1994, NOW), 304);
    CHECK_EQ_INT(pre("\"a\", \"b\", " ETAG, NULL, NULL, NULL, T1994, NOW), 304);
    CHECK_EQ_INT(pre("*", NULL, NULL, NULL, T1994, NOW), 304);
    CHECK_EQ_INT(pre("\"a\"", NULL, NULL, NULL, T1994, NOW), 0);
    /* If-Modified-Since: not modified since a date at or after Last-Modified. */
    CHECK_EQ_INT(pre(NULL, D1994, NULL, NULL, T1994, NOW), 304);
    CHECK_EQ_INT(pre(NULL, "Mon, 07 Nov 1994 08:49:37 GMT", NULL, NULL, T1994, NOW), 304);
    CHECK_EQ_INT(pre(NULL, "Sat, 05 Nov 1994 08:49:37 GMT", NULL, NULL, T1994, NOW), 0);
    CHECK_EQ_INT(pre(NULL, "not a date", NULL, NULL, T1994, NOW), 0);
    CHECK_EQ_INT(pre(NULL, "Fri, 01 Jan 2100 00:00:00 GMT", NULL, NULL, T1994, NOW), 0); /* in the future */
    /* If-None-Match wins over If-Modified-Since, either way. */
    CHECK_EQ_INT(pre("\"a\"", D1994, NULL, NULL, T1994, NOW), 0);
    CHECK_EQ_INT(pre(ETAG, "Sat, 05 Nov 1994 08:49:37 GMT", NULL, NULL, T1994, NOW), 304);
    /* If-Match: strong comparison; then If-Unmodified-Since only without it. */
    CHECK_EQ_INT(pre(NULL, NULL, ETAG, NULL, T1994, NOW), 0);
    CHECK_EQ_INT(pre(NULL, NULL, "*", NULL, T1994, NOW), 0);
    CHECK_EQ_INT(pre(NULL, NULL, "\"a\"", NULL, T1994, NOW), 412);
    CHECK_EQ_INT(pre(NULL, NULL, "W/" ETAG, NULL, T1994, NOW), 412);
    CHECK_EQ_INT(pre(NULL, NULL, NULL, D1994, T1994, NOW), 0);
    CHECK_EQ_INT(pre(NULL, NULL, NULL, "Sat, 05 Nov 1994 08:49:37 GMT", T1994, NOW), 412);
    CHECK_EQ_INT(pre(NULL, NULL, NULL, "junk", T1994, NOW), 0);
    CHECK_EQ_INT(pre(NULL, NULL, ETAG, "Sat, 05 Nov 1994 08:49:37 GMT", T1994, NOW), 0);
    /* 412 comes before 304. */
    CHECK_EQ_INT(pre(ETAG, NULL, "\"a\"", NULL, T1994, NOW), 412);
}

static void test_select(void)
{
    sc_range r[SC_RANGE_MAX];
    size_t n = 99;
    sc_range_request q = {0};
    CHECK_EQ_INT(sc_range_select(&q, S(ETAG), T1994, SIZE, r, &n), SC_RANGE_IGNORE);
    CHECK_EQ_UINT(n, 0);
    q.if_range = S(ETAG); /* If-Range without Range: nothing */
    CHECK_EQ_INT(sc_range_select(&q, S(ETAG), T1994, SIZE, r, &n), SC_RANGE_IGNORE);
    q.range = S("bytes=10-19");
    CHECK_EQ_INT(sc_range_select(&q, S(ETAG), T1994, SIZE, r, &n), SC_RANGE_PARTIAL);
    CHECK_EQ_UINT(n, 1);
    CHECK_EQ_UINT(r[0].first, 10);
    CHECK_EQ_UINT(r[0].last, 19);
    q.if_range = S("\"stale\"");
    CHECK_EQ_INT(sc_range_select(&q, S(ETAG), T1994, SIZE, r, &n), SC_RANGE_IGNORE);
    q.if_range = S(D1994);
    CHECK_EQ_INT(sc_range_select(&q, S(ETAG), T1994, SIZE, r, &n), SC_RANGE_PARTIAL);
    CHECK_EQ_INT(sc_range_select(&q, S(ETAG), T1994 + 1, SIZE, r, &n), SC_RANGE_IGNORE);
    /* An If-Range that does not hold turns a 416 into a 200 too. */
    q.range = S("bytes=20000-");
    CHECK_EQ_INT(sc_range_select(&q, S(ETAG), T1994, SIZE, r, &n), SC_RANGE_UNSATISFIABLE);
    CHECK_EQ_INT(sc_range_select(&q, S(ETAG), T1994 + 1, SIZE, r, &n), SC_RANGE_IGNORE);
}

int main(void)
{
    test_forms();
    test_unsatisfiable();
    test_big_numbers();
    test_junk();
    test_whitespace();
    test_many();
    test_overlap_and_merge();
    test_etag_match();
    test_dates();
    test_date_format();
    test_if_range();
    test_preconditions();
    test_select();
    return check_report();
}
