/* The streaming multipart/form-data parser: events must not depend on how the body is cut into pieces (every
 * split position is tried), preamble and epilogue are ignored, and malformed bodies fail with the right code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/buf.h"
#include "http/multipart.h"

/* Events rendered as text: <name|filename|type> for a part's start, its data as is, </> for its end. */
typedef struct rec {
    sc_buf out;
    int stop_at_begin; /* a status to return from on_part_begin (0: go on) */
    unsigned data_calls;
} rec;

static void put_slice(sc_buf *b, sc_slice s)
{
    if (!s.ptr)
        sc_buf_append_str(b, "(null)");
    else
        sc_buf_append(b, s.ptr, s.len);
}

static int on_begin(void *ctx, const sc_mp_part *p)
{
    rec *r = ctx;
    sc_buf_append_str(&r->out, "<");
    put_slice(&r->out, p->name);
    sc_buf_append_str(&r->out, "|");
    put_slice(&r->out, p->filename);
    sc_buf_append_str(&r->out, "|");
    put_slice(&r->out, p->content_type);
    sc_buf_append_str(&r->out, ">");
    return r->stop_at_begin;
}

static int on_data(void *ctx, const char *d, size_t n)
{
    rec *r = ctx;
    if (n == 0)
        sc_buf_append_str(&r->out, "!EMPTY!");
    r->data_calls++;
    sc_buf_append(&r->out, d, n);
    return 0;
}

static int on_end(void *ctx, const sc_mp_part *p)
{
    rec *r = ctx;
    sc_buf_append_str(&r->out, "</>");
    return 0;
}

static const sc_mp_callbacks CB = {on_begin, on_data, on_end};

/* Parses body in the given pieces (cuts: ascending offsets); returns the final code (feed's, else finish's). */
static int parse_cut(const char *boundary, const char *body, size_t len, const size_t *cuts, size_t ncuts,
                     const sc_mp_limits *lim, rec *r)
{
    static sc_multipart mp;
    r->out.len = 0;
    int rc = sc_multipart_init(&mp, sc_slice_cstr(boundary), lim, &CB, r);
    if (rc)
        return rc;
    size_t at = 0;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t to = k < ncuts ? cuts[k] : len;
        rc = sc_multipart_feed(&mp, body + at, to - at);
        if (rc)
            return rc;
        at = to;
    }
    return sc_multipart_finish(&mp);
}

static int parse_whole(const char *boundary, const char *body, size_t len, const sc_mp_limits *lim, rec *r)
{
    return parse_cut(boundary, body, len, NULL, 0, lim, r);
}

static bool same(const rec *r, const char *want, size_t n)
{
    return r->out.len == n && (n == 0 || memcmp(r->out.ptr, want, n) == 0);
}

/* Checks that the body gives want_rc and (on success) the events want, however it is cut: whole, in two pieces at
 * every position, in three pieces at many positions, and byte by byte. */
static void expect(const char *boundary, const char *body, size_t len, const sc_mp_limits *lim, int want_rc,
                   const char *want, int line)
{
    rec r = {0};
    int rc = parse_whole(boundary, body, len, lim, &r);
    if (!check_int_(rc, want_rc, __FILE__, line, "whole body: result"))
        return;
    if (want && !check_mem_(r.out.ptr ? r.out.ptr : "", r.out.len, want, strlen(want), __FILE__, line,
                            "whole body: events"))
        return;
    char *whole = malloc(r.out.len + 1);
    memcpy(whole, r.out.ptr ? r.out.ptr : "", r.out.len);
    size_t whole_len = r.out.len;
    unsigned bad = 0;
    for (size_t a = 0; a <= len && bad < 3; a++) {
        size_t cuts[1] = {a};
        rc = parse_cut(boundary, body, len, cuts, 1, lim, &r);
        if (rc != want_rc || (want_rc == 0 && !same(&r, whole, whole_len))) {
            char what[64];
            snprintf(what, sizeof(what), "split at %zu", a);
            check_result_(false, __FILE__, line, what);
            bad++;
        }
    }
    size_t step = len > 200 ? len / 50 : 1;
    for (size_t a = 0; a <= len && bad < 3; a += step) {
        for (size_t b = a; b <= len && bad < 3; b += step) {
            size_t cuts[2] = {a, b};
            rc = parse_cut(boundary, body, len, cuts, 2, lim, &r);
            if (rc != want_rc || (want_rc == 0 && !same(&r, whole, whole_len))) {
                char what[64];
                snprintf(what, sizeof(what), "split at %zu and %zu", a, b);
                check_result_(false, __FILE__, line, what);
                bad++;
            }
        }
    }
    /* byte by byte */
    size_t *cuts = malloc((len + 1) * sizeof(size_t));
    for (size_t k = 0; k < len; k++)
        cuts[k] = k;
    rc = parse_cut(boundary, body, len, cuts, len, lim, &r);
    free(cuts);
    if (rc != want_rc || (want_rc == 0 && !same(&r, whole, whole_len)))
        check_result_(false, __FILE__, line, "byte by byte");
    else if (!bad)
        check_result_(true, __FILE__, line, "all splits");
    free(whole);
    sc_buf_free(&r.out);
}

#define EXPECT(body, rc, want) expect("XyZ", (body), sizeof(body) - 1, NULL, (rc), (want), __LINE__)
#define EXPECT_LIM(body, lim, rc, want) expect("XyZ", (body), sizeof(body) - 1, (lim), (rc), (want), __LINE__)

static void test_basic(void)
{
    EXPECT("--XyZ\r\n"
           "Content-Disposition: form-data; name=\"cover\"; filename=\"a.png\"\r\n"
           "Content-Type: image/png\r\n"
           "\r\n"
           "PNGDATA\r\n"
           "--XyZ\r\n"
           "Content-Disposition: form-data; name=title\r\n"
           "\r\n"
           "hello world\r\n"
           "--XyZ--\r\n",
           0, "<cover|a.png|image/png>PNGDATA</><title|(null)|(null)>hello world</>");
}

static void test_preamble_epilogue(void)
{
    EXPECT("This is the preamble.\r\nIt has --XyZ inside a line and \r\n--Xy almost.\r\n"
           "--XyZ\r\n"
           "Content-Disposition: form-data; name=a\r\n"
           "\r\n"
           "1\r\n"
           "--XyZ--"
           "\r\nepilogue --XyZ\r\n--XyZ\r\nnot a part\r\n",
           0, "<a|(null)|(null)>1</>");
    /* The first delimiter after a CRLF that opens the body. */
    EXPECT("\r\n--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--XyZ--", 0, "<a|(null)|(null)>x</>");
    /* No epilogue, not even a CRLF after the close delimiter. */
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n--XyZ--", 0, "<a|(null)|(null)></>");
}

static void test_data_that_looks_like_a_delimiter(void)
{
    /* CRs, CRLFs, dashes and boundary prefixes inside the data are data. */
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=f\r\n\r\n"
           "\r\r\n\r\n-\r\n--\r\n--X\r\n--Xy\r--XyZ\n--XyZ a--XyZ\r\r\n\r"
           "\r\n--XyZ--\r\n",
           0, "<f|(null)|(null)>\r\r\n\r\n-\r\n--\r\n--X\r\n--Xy\r--XyZ\n--XyZ a--XyZ\r\r\n\r</>");
    /* Data ending in CR right before the delimiter. */
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=f\r\n\r\nabc\r\r\n--XyZ--", 0,
           "<f|(null)|(null)>abc\r</>");
}

static void test_delimiter_line(void)
{
    /* Transport padding after the boundary is allowed. */
    EXPECT("--XyZ \t \r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--XyZ\t\r\n"
           "Content-Disposition: form-data; name=b\r\n\r\nw\r\n--XyZ--",
           0, "<a|(null)|(null)>v</><b|(null)|(null)>w</>");
    EXPECT("--XyZ\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--XyZ--", SC_MP_E_DELIMITER, NULL);
    EXPECT("--XyZ\r\rContent-Disposition: form-data; name=a\r\n\r\nv\r\n--XyZ--", SC_MP_E_DELIMITER, NULL);
    EXPECT("--XyZx\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--XyZ--", SC_MP_E_DELIMITER, NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--XyZ-x", SC_MP_E_DELIMITER, NULL);
    EXPECT("--XyZ \tx\r\n", SC_MP_E_DELIMITER, NULL);
}

static void test_truncated(void)
{
    EXPECT("", SC_MP_E_TRUNCATED, NULL);
    EXPECT("just a preamble\r\n", SC_MP_E_TRUNCATED, NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nv", SC_MP_E_TRUNCATED, NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--XyZ", SC_MP_E_TRUNCATED, NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--XyZ-", SC_MP_E_TRUNCATED, NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--XyZ\r\n", SC_MP_E_TRUNCATED, NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data; na", SC_MP_E_TRUNCATED, NULL);
    /* The close delimiter right away: no parts, fine for the parser. */
    EXPECT("--XyZ--\r\n", 0, "");
}

static void test_headers(void)
{
    /* Case-insensitive names, unknown headers ignored, quoted values with escapes, empty filename. */
    EXPECT("--XyZ\r\nX-Other: 1\r\ncontent-disposition: Form-Data; filename=\"\"; NAME=\"a \\\"b\\\\ c\"\r\n"
           "CONTENT-TYPE:text/plain; charset=utf-8\r\n\r\nv\r\n--XyZ--",
           0, "<a \"b\\ c||text/plain; charset=utf-8>v</>");
    /* Parameters with spaces around '=' and ';', a trailing ';'. */
    EXPECT("--XyZ\r\nContent-Disposition: form-data ; name = \"x\" ;\r\n\r\nv\r\n--XyZ--", 0,
           "<x|(null)|(null)>v</>");
    /* UTF-8 in a filename is kept as is. */
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=f; "
           "filename=\"\xc3\xa9t\xc3\xa9.mp3\"\r\n\r\n\r\n--XyZ--",
           0, "<f|\xc3\xa9t\xc3\xa9.mp3|(null)></>");
    /* Missing or wrong Content-Disposition, no name. */
    EXPECT("--XyZ\r\n\r\nv\r\n--XyZ--", SC_MP_E_DISPOSITION, NULL);
    EXPECT("--XyZ\r\nContent-Type: text/plain\r\n\r\nv\r\n--XyZ--", SC_MP_E_DISPOSITION, NULL);
    EXPECT("--XyZ\r\nContent-Disposition: attachment; name=a\r\n\r\nv\r\n--XyZ--", SC_MP_E_DISPOSITION, NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data; filename=a\r\n\r\nv\r\n--XyZ--", SC_MP_E_DISPOSITION, NULL);
    /* Syntax errors. */
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=\"a\r\n\r\nv\r\n--XyZ--", SC_MP_E_HEADER, NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\nv\r\n--XyZ--", SC_MP_E_HEADER, NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name\r\n\r\nv\r\n--XyZ--", SC_MP_E_HEADER, NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=a b\r\n\r\nv\r\n--XyZ--", SC_MP_E_HEADER, NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\nv\r\n--XyZ--", SC_MP_E_HEADER, NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=a\r\nNo colon here\r\n\r\nv\r\n--XyZ--", SC_MP_E_HEADER,
           NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=a\r\n: empty name\r\n\r\nv\r\n--XyZ--", SC_MP_E_HEADER,
           NULL);
    EXPECT("--XyZ\r\nBad Name: x\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--XyZ--", SC_MP_E_HEADER,
           NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=a\r\nContent-Disposition: form-data; name=b\r\n\r\n"
           "v\r\n--XyZ--",
           SC_MP_E_HEADER, NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=a\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\n"
           "v\r\n--XyZ--",
           SC_MP_E_HEADER, NULL);
    /* CRLF edge cases inside headers: bare LF, bare CR, LF LF, a control byte. */
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=a\n\r\nv\r\n--XyZ--", SC_MP_E_HEADER, NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\nv\r\n--XyZ--", SC_MP_E_HEADER, NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=a\rX\r\n\r\nv\r\n--XyZ--", SC_MP_E_HEADER, NULL);
    EXPECT("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\r\nv\r\n--XyZ--", SC_MP_E_HEADER, NULL);
    EXPECT("--XyZ\r\nX: a\x01"
           "b\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--XyZ--",
           SC_MP_E_HEADER, NULL);
}

static void test_header_limit(void)
{
    /* The header block of this part is 48 bytes: "Content-Disposition: form-data; name=a\r\n" (40), "X: 1\r\n" (6)
     * and the empty line (2). */
    static const char body[] = "--XyZ\r\nContent-Disposition: form-data; name=a\r\nX: 1\r\n\r\nv\r\n--XyZ--";
    sc_mp_limits lim = {48, 0};
    EXPECT_LIM(body, &lim, 0, "<a|(null)|(null)>v</>");
    lim.max_header_bytes = 47;
    EXPECT_LIM(body, &lim, SC_MP_E_HEADER_TOO_LARGE, NULL);
    /* The default cap refuses an endless header. */
    size_t n = SC_MP_HEADER_CAP + 100;
    char *big = malloc(n + 64);
    size_t k = (size_t)snprintf(big, n + 64, "--XyZ\r\nX: ");
    memset(big + k, 'a', n);
    k += n;
    k += (size_t)snprintf(big + k, n + 64 - k, "\r\n\r\n");
    rec r = {0};
    CHECK_EQ_INT(parse_whole("XyZ", big, k, NULL, &r), SC_MP_E_HEADER_TOO_LARGE);
    /* A limit above the cap is the cap. */
    lim.max_header_bytes = SC_MP_HEADER_CAP * 4;
    CHECK_EQ_INT(parse_whole("XyZ", big, k, &lim, &r), SC_MP_E_HEADER_TOO_LARGE);
    free(big);
    sc_buf_free(&r.out);
}

static void test_part_limit(void)
{
    static const char body[] = "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
                               "--XyZ\r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n"
                               "--XyZ\r\nContent-Disposition: form-data; name=c\r\n\r\n3\r\n--XyZ--";
    sc_mp_limits lim = {0, 3};
    EXPECT_LIM(body, &lim, 0, "<a|(null)|(null)>1</><b|(null)|(null)>2</><c|(null)|(null)>3</>");
    lim.max_parts = 2;
    EXPECT_LIM(body, &lim, SC_MP_E_TOO_MANY_PARTS, NULL);
}

static void test_callback_stop(void)
{
    static const char body[] = "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ--";
    sc_multipart mp;
    rec r = {0};
    r.stop_at_begin = 413;
    CHECK_EQ_INT(sc_multipart_init(&mp, SC_SLICE_LIT("XyZ"), NULL, &CB, &r), 0);
    CHECK_EQ_INT(sc_multipart_feed(&mp, body, sizeof(body) - 1), 413);
    CHECK_EQ_INT(sc_multipart_feed(&mp, "more", 4), 413);
    CHECK_EQ_INT(sc_multipart_finish(&mp), 413);
    CHECK_EQ_SLICE(r.out, "<a|(null)|(null)>");
    sc_buf_free(&r.out);
}

static void test_no_empty_data_calls(void)
{
    rec r = {0};
    static const char body[] = "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n--XyZ--";
    size_t cuts[64];
    for (size_t k = 0; k < sizeof(body) - 1 && k < 64; k++)
        cuts[k] = k;
    CHECK_EQ_INT(parse_cut("XyZ", body, sizeof(body) - 1, cuts, sizeof(body) - 1 < 64 ? sizeof(body) - 1 : 64,
                           NULL, &r),
                 0);
    CHECK_EQ_UINT(r.data_calls, 0);
    sc_buf_free(&r.out);
}

/* Random binary data full of CRs and boundary fragments, in random pieces, must come out unchanged. */
static void test_binary_random_pieces(void)
{
    const char *bnd = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    size_t n = 200000;
    char *data = malloc(n);
    unsigned seed = 12345;
    static const char *frags[] = {"\r",
                                  "\r\n",
                                  "\r\n-",
                                  "\r\n--",
                                  "\r\n------WebKit",
                                  "\r\n--",
                                  "\r\n------WebKitFormBoundary7MA4YWxkTrZu0g",
                                  "--"};
    for (size_t i = 0; i < n;) {
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 16) % 7 == 0) {
            const char *f = frags[(seed >> 8) % (sizeof(frags) / sizeof(frags[0]))];
            size_t fl = strlen(f);
            if (i + fl > n)
                fl = n - i;
            memcpy(data + i, f, fl);
            i += fl;
            if (i < n)
                data[i++] = 'x'; /* never the byte that would complete the real delimiter */
        } else {
            data[i++] = (char)(seed >> 16);
        }
    }
    sc_buf body = {0};
    sc_buf_printf(&body,
                  "--%s\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"x.bin\"\r\n"
                  "Content-Type: application/octet-stream\r\n\r\n",
                  bnd);
    sc_buf_append(&body, data, n);
    sc_buf_printf(&body, "\r\n--%s--\r\n", bnd);
    sc_buf want = {0};
    sc_buf_append_str(&want, "<audio|x.bin|application/octet-stream>");
    sc_buf_append(&want, data, n);
    sc_buf_append_str(&want, "</>");
    rec r = {0};
    for (int round = 0; round < 200; round++) {
        size_t cuts[40];
        size_t nc = 0, at = 0;
        while (nc < 40) {
            seed = seed * 1103515245u + 12345u;
            at += 1 + (seed >> 8) % (round < 100 ? 64 : 20000);
            if (at >= body.len)
                break;
            cuts[nc++] = at;
        }
        int rc = parse_cut(bnd, body.ptr, body.len, cuts, nc, NULL, &r);
        if (!CHECK_EQ_INT(rc, 0) || !CHECK_EQ_MEM(r.out.ptr, r.out.len, want.ptr, want.len))
            break;
    }
    free(data);
    sc_buf_free(&body);
    sc_buf_free(&want);
    sc_buf_free(&r.out);
}

static void test_boundary_param(void)
{
    sc_slice b;
    CHECK_EQ_INT(sc_multipart_boundary(SC_SLICE_LIT("multipart/form-data; boundary=abc"), &b), 0);
    CHECK_EQ_SLICE(b, "abc");
    CHECK_EQ_INT(sc_multipart_boundary(SC_SLICE_LIT("Multipart/Form-Data;charset=utf-8;BOUNDARY=\"a b:c\""), &b),
                 0);
    CHECK_EQ_SLICE(b, "a b:c");
    CHECK_EQ_INT(sc_multipart_boundary(SC_SLICE_LIT(" multipart/form-data ; boundary = ----x "), &b), 0);
    CHECK_EQ_SLICE(b, "----x");
    CHECK_EQ_INT(sc_multipart_boundary(SC_SLICE_LIT("multipart/form-data"), &b), SC_MP_E_BOUNDARY);
    CHECK_EQ_INT(sc_multipart_boundary(SC_SLICE_LIT("multipart/mixed; boundary=abc"), &b), SC_MP_E_BOUNDARY);
    CHECK_EQ_INT(sc_multipart_boundary(SC_SLICE_LIT("application/json"), &b), SC_MP_E_BOUNDARY);
    CHECK_EQ_INT(sc_multipart_boundary(SC_SLICE_NULL, &b), SC_MP_E_BOUNDARY);
    CHECK_EQ_INT(sc_multipart_boundary(SC_SLICE_LIT("multipart/form-data; boundary="), &b), SC_MP_E_BOUNDARY);
    CHECK_EQ_INT(sc_multipart_boundary(SC_SLICE_LIT("multipart/form-data; boundary=\"\""), &b), SC_MP_E_BOUNDARY);
    CHECK_EQ_INT(sc_multipart_boundary(SC_SLICE_LIT("multipart/form-data; boundary=\"ab \""), &b),
                 SC_MP_E_BOUNDARY);
    CHECK_EQ_INT(sc_multipart_boundary(SC_SLICE_LIT("multipart/form-data; boundary=\"a\\b\""), &b),
                 SC_MP_E_BOUNDARY);
    CHECK_EQ_INT(sc_multipart_boundary(SC_SLICE_LIT("multipart/form-data; boundary=\"abc"), &b), SC_MP_E_BOUNDARY);
    CHECK_EQ_INT(sc_multipart_boundary(SC_SLICE_LIT("multipart/form-data; boundary=abc x"), &b), SC_MP_E_BOUNDARY);
    CHECK_EQ_INT(sc_multipart_boundary(SC_SLICE_LIT("multipart/form-data; boundary=a; boundary=b"), &b),
                 SC_MP_E_BOUNDARY);
    CHECK_EQ_INT(sc_multipart_boundary(SC_SLICE_LIT("multipart/form-data; charset"), &b), SC_MP_E_BOUNDARY);
    char longb[128];
    int n = snprintf(longb, sizeof(longb), "multipart/form-data; boundary=%070d", 7);
    CHECK_EQ_INT(sc_multipart_boundary((sc_slice){longb, (size_t)n}, &b), 0);
    CHECK_EQ_UINT(b.len, 70);
    n = snprintf(longb, sizeof(longb), "multipart/form-data; boundary=%071d", 7);
    CHECK_EQ_INT(sc_multipart_boundary((sc_slice){longb, (size_t)n}, &b), SC_MP_E_BOUNDARY);
    sc_multipart mp;
    CHECK_EQ_INT(sc_multipart_init(&mp, SC_SLICE_LIT("a\r\nb"), NULL, &CB, NULL), SC_MP_E_BOUNDARY);
    CHECK_EQ_INT(sc_multipart_feed(&mp, "x", 1), SC_MP_E_BOUNDARY);
    CHECK(strcmp(sc_multipart_strerror(SC_MP_E_TRUNCATED), "multipart body ends before its closing boundary") ==
          0);
}

int main(void)
{
    test_basic();
    test_preamble_epilogue();
    test_data_that_looks_like_a_delimiter();
    test_delimiter_line();
    test_truncated();
    test_headers();
    test_header_limit();
    test_part_limit();
    test_callback_stop();
    test_no_empty_data_calls();
    test_binary_random_pieces();
    test_boundary_param();
    return check_report();
}
