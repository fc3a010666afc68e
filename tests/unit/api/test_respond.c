/* The API's shared request checks (api/respond.c): list paging (?page= and ?limit=: defaults, bounds, junk,
 * overflow, the offset and its text, the offset's cap and the count's, the 400 answer) and X-Total-Count; the
 * base URL of absolute links (STACCATO_PUBLIC_URL, else the scheme and the Host header when http/host.h finds it
 * a valid host and STACCATO_ALLOWED_HOSTS allows it).
 *
 * The requests are built by hand inside a connection object that no socket stands behind: what these functions
 * reach is the query, the headers, the arena, the response buffers, the transport's `secure` and the server's
 * error body. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/respond.h"
#include "check.h"
#include "http/host.h"
#include "http/http1.h"
#include "net/transport.h"

static sc_server server;
static sc_http_conn conn;
static sc_settings settings;
static sc_app app = {.settings = &settings};
static sc_header headers[4];
/* Only `secure` is read: the requests here never touch a socket. */
static const sc_transport fake_tls = {.name = "tls", .secure = true};

/* A fresh request on the connection, with the query (after '?') and a Host header (NULL: none) of host_len
 * bytes (so that a NUL may be in it). */
static sc_req *request(const char *query, const char *host, size_t host_len, bool secure)
{
    sc_http_req_dispose(&conn); /* the previous request's memory goes, as between two requests */
    sc_req *r = &conn.req;
    conn.super.transport = secure ? &fake_tls : &sc_transport_plain;
    r->query = sc_slice_cstr(query);
    r->target = r->path = SC_SLICE_LIT("/songs");
    r->headers = headers;
    r->nheaders = 0;
    headers[r->nheaders++] = (sc_header){SC_SLICE_LIT("Accept"), SC_SLICE_LIT("*/*")};
    if (host)
        headers[r->nheaders++] = (sc_header){SC_SLICE_LIT("Host"), (sc_slice){host, host_len}};
    return r;
}

static void setup(void)
{
    server.cfg.error_body = sc_api_error_body;
    /* The page parser's own checks run with the largest offset cap; test_list_offset_unbounded sets others. */
    settings.max_list_offset = 1000000000;
    server.cfg.app = &app;
    conn.server = &server;
    conn.super.transport = &sc_transport_plain;
    sc_http_req_reset(&conn);
}

/* ---- paging ------------------------------------------------------------------------------------------------ */

typedef struct paged {
    int status;
    sc_page p;
    char body[256];
} paged;

static paged page_of(const char *query)
{
    paged out;
    memset(&out, 0, sizeof(out));
    memset(&out.p, 0x5a, sizeof(out.p)); /* garbage in: sc_api_page must set what it reports */
    sc_req *r = request(query, "localhost", 9, false);
    out.status = sc_api_page(r, &out.p);
    snprintf(out.body, sizeof(out.body), "%.*s", (int)r->res.body->len, r->res.body->ptr ? r->res.body->ptr : "");
    return out;
}

/* Expects the query to be accepted as this page, limit and offset (and the statement's text of both). */
static void expect_page(const char *query, uint64_t page, uint64_t limit, uint64_t offset)
{
    paged got = page_of(query);
    char limit_str[24], offset_str[24];
    snprintf(limit_str, sizeof(limit_str), "%llu", (unsigned long long)limit);
    snprintf(offset_str, sizeof(offset_str), "%llu", (unsigned long long)offset);
    if (!CHECK_EQ_INT(got.status, 0)) {
        fprintf(stderr, "  query: \"%s\"\n", query);
        return;
    }
    CHECK_EQ_UINT(got.p.page, page);
    CHECK_EQ_UINT(got.p.limit, limit);
    CHECK_EQ_UINT(got.p.offset, offset);
    CHECK_EQ_STR(got.p.limit_str, limit_str);
    CHECK_EQ_STR(got.p.offset_str, offset_str);
    CHECK_EQ_STR(got.body, ""); /* nothing answered */
}

#define PAGE_400 "{\"status\":\"fail\",\"message\":\"page must be a whole number from 1 to 1000000\"}"
#define LIMIT_400 "{\"status\":\"fail\",\"message\":\"limit must be a whole number from 1 to 1000\"}"

/* Expects the query to be answered 400 with this body. */
static void expect_400(const char *query, const char *body)
{
    paged got = page_of(query);
    if (!CHECK_EQ_INT(got.status, 400))
        fprintf(stderr, "  query: \"%s\"\n", query);
    CHECK_EQ_STR(got.body, body);
    CHECK_EQ_STR(conn.req.res.content_type, "application/json; charset=utf-8");
}

static void test_page_defaults(void)
{
    expect_page("", 1, 100, 0);
    expect_page("page=1&limit=100", 1, 100, 0);
    expect_page("title=x&genre=pop", 1, 100, 0); /* other parameters are not paging */
    /* Names are matched exactly: neither a prefix, nor a longer name, nor another case. */
    expect_page("pages=5&limits=5&Page=5&LIMIT=5&xpage=5", 1, 100, 0);
    expect_page("&&", 1, 100, 0);
}

static void test_page_offset(void)
{
    expect_page("page=2", 2, 100, 100);
    expect_page("page=3&limit=25", 3, 25, 50);
    expect_page("limit=25&page=3", 3, 25, 50); /* in either order */
    expect_page("limit=7", 1, 7, 0);
    expect_page("page=11&limit=10", 11, 10, 100);
    expect_page("title=x&page=4&genre=y&limit=3", 4, 3, 9);
    expect_page("&page=2&&limit=5&", 2, 5, 5);
}

static void test_page_bounds(void)
{
    /* The smallest and largest accepted values; the largest offset, page 1000000 of 1000. */
    expect_page("page=1&limit=1", 1, 1, 0);
    expect_page("limit=1000", 1, 1000, 0);
    expect_page("page=1000000", 1000000, 100, 99999900);
    expect_page("page=1000000&limit=1000", 1000000, 1000, 999999000);
    expect_400("limit=1001", LIMIT_400);
    expect_400("page=1000001", PAGE_400);
    expect_400("page=1000001&limit=1000", PAGE_400);
}

static void test_page_zero_and_negative(void)
{
    expect_400("page=0", PAGE_400);
    expect_400("limit=0", LIMIT_400);
    expect_400("page=00", PAGE_400);
    expect_400("page=-1", PAGE_400);
    expect_400("limit=-1", LIMIT_400);
    expect_400("page=-0", PAGE_400);
    expect_400("limit=%2D5", LIMIT_400); /* a minus sign percent-encoded */
}

static void test_page_not_numbers(void)
{
    expect_400("page=abc", PAGE_400);
    expect_400("limit=ten", LIMIT_400);
    expect_400("page=", PAGE_400); /* present but empty */
    expect_400("page", PAGE_400);  /* present without '=' */
    expect_400("limit=", LIMIT_400);
    expect_400("page=1.5", PAGE_400);
    expect_400("page=1e3", PAGE_400);
    expect_400("page=0x10", PAGE_400);
    expect_400("page=%2B1", PAGE_400); /* "+1" */
    expect_400("page=+1", PAGE_400);   /* '+' is a space: " 1" */
    expect_400("page=1+", PAGE_400);
    expect_400("page=%201", PAGE_400);
    expect_400("page=1%20", PAGE_400);
    expect_400("page=1%00", PAGE_400); /* a NUL after the digits */
    expect_400("page=%00", PAGE_400);
    expect_400("page=%", PAGE_400); /* a broken escape stays as it is */
    expect_400("page=%3", PAGE_400);
    expect_400("page=\xd9\xa1", PAGE_400); /* ARABIC-INDIC DIGIT ONE */
    expect_400("limit=1,2", LIMIT_400);
}

static void test_page_overflow(void)
{
    expect_400("page=4294967297", PAGE_400);                    /* 2^32 + 1 */
    expect_400("page=18446744073709551615", PAGE_400);          /* 2^64 - 1 */
    expect_400("page=18446744073709551616", PAGE_400);          /* 2^64: wraps to 0 */
    expect_400("page=18446744073709551617", PAGE_400);          /* 2^64 + 1: wraps to 1 */
    expect_400("limit=18446744073709551716", LIMIT_400);        /* 2^64 + 100: wraps to 100 */
    expect_400("page=99999999999999999999999999999", PAGE_400); /* far past every width */
    expect_400("limit=10000000000000000000000001", LIMIT_400);
}

static void test_page_text_forms(void)
{
    /* Leading zeros are digits like any other. */
    expect_page("page=007", 7, 100, 600);
    expect_page("limit=0001000", 1, 1000, 0);
    expect_page("page=00000000000000000000000000002", 2, 100, 100);
    /* Values and names are percent-decoded. */
    expect_page("page=%32&limit=%31%30", 2, 10, 10);
    expect_page("p%61ge=3", 3, 100, 200);
    /* The first of a repeated parameter counts; the later ones are not read at all. */
    expect_page("page=2&page=3", 2, 100, 100);
    expect_page("page=2&page=junk", 2, 100, 100);
    expect_400("page=junk&page=2", PAGE_400);
}

static void test_page_which_error(void)
{
    /* page is read first: with both wrong, its message is the answer. */
    expect_400("page=x&limit=x", PAGE_400);
    expect_400("limit=x&page=x", PAGE_400);
    expect_400("page=2&limit=x", LIMIT_400);
    expect_400("page=0&limit=5000", PAGE_400);
    /* An error replaces whatever the response held. */
    sc_req *r = request("limit=0", "localhost", 9, false);
    sc_buf_append_str(r->res.body, "{\"partial\":");
    sc_page p;
    CHECK_EQ_INT(sc_api_page(r, &p), 400);
    CHECK_EQ_SLICE(*r->res.body, LIMIT_400);
    /* A good page after a bad one, on the same connection: nothing left over. */
    expect_page("page=5&limit=2", 5, 2, 8);
}

/* Regression: ?page= reached offsets up to 10^9 (page 1000000 of 1000), each a scan of every row before it, and
 * the total was an exact count(*) of the whole list on every request. The offset is capped by
 * STACCATO_MAX_LIST_OFFSET and the count by the rows paging can reach. */
static void test_list_offset_unbounded(void)
{
#define OFFSET_400                                                                                                \
    "{\"status\":\"fail\",\"message\":\"(page - 1) * limit must be at most 10000: narrow the search with "        \
    "filters "                                                                                                    \
    "instead of paging further\"}"
    settings.max_list_offset = 10000; /* the default */
    expect_page("page=101", 101, 100, 10000);
    expect_page("page=11&limit=1000", 11, 1000, 10000);
    expect_page("page=10001&limit=1", 10001, 1, 10000);
    expect_page("page=1251&limit=8", 1251, 8, 10000);
    expect_400("page=102", OFFSET_400);
    expect_400("page=12&limit=1000", OFFSET_400);
    expect_400("page=10002&limit=1", OFFSET_400);
    expect_400("page=1000000", OFFSET_400);
    expect_400("page=1000000&limit=1000", OFFSET_400);
    /* The page's own bounds are checked first. */
    expect_400("page=1000001", PAGE_400);
    expect_400("page=200&limit=1001", LIMIT_400);
    /* The count stops at the rows paging with this limit reaches: (10000 / limit + 1) * limit, so that the pages a
     * total says there are can all be asked for. */
    static const struct {
        const char *query;
        uint64_t cap;
    } caps[] = {
        {"", 10100}, {"limit=1", 10001}, {"limit=1000", 11000}, {"limit=300", 10200}, {"limit=7&page=3", 10003},
    };
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        paged got = page_of(caps[i].query);
        char want[24];
        snprintf(want, sizeof(want), "%llu", (unsigned long long)caps[i].cap);
        CHECK_EQ_INT(got.status, 0);
        CHECK_EQ_UINT(got.p.count_cap, caps[i].cap);
        if (!CHECK_EQ_STR(got.p.count_cap_str, want))
            fprintf(stderr, "  query: \"%s\"\n", caps[i].query);
        CHECK(got.p.count_cap > 10000 && (got.p.count_cap - 1) / got.p.limit * got.p.limit <= 10000);
    }
    /* 0: the first page only. */
    settings.max_list_offset = 0;
    expect_page("limit=5", 1, 5, 0);
    CHECK_EQ_UINT(page_of("limit=5").p.count_cap, 5);
    CHECK_EQ_INT(page_of("page=2&limit=5").status, 400);
    settings.max_list_offset = 1000000000;
#undef OFFSET_400
}

static void test_total(void)
{
    sc_req *r = request("", "localhost", 9, false);
    sc_api_total(r, 0);
    CHECK_EQ_SLICE(*r->res.headers, "X-Total-Count: 0\r\n");
    r = request("", "localhost", 9, false);
    sc_api_total(r, 1234);
    sc_api_total(r, UINT64_MAX);
    CHECK_EQ_SLICE(*r->res.headers, "X-Total-Count: 1234\r\nX-Total-Count: 18446744073709551615\r\n");
}

/* ---- the base URL ------------------------------------------------------------------------------------------ */

static const char *base_url_n(const char *host, size_t host_len, bool secure)
{
    return sc_api_base_url(request("", host, host_len, secure));
}

static const char *base_url(const char *host, bool secure)
{
    return base_url_n(host, host ? strlen(host) : 0, secure);
}

static void test_base_url_public(void)
{
    char pub[64];
    settings.public_url = pub;
    snprintf(pub, sizeof(pub), "https://music.example.com");
    CHECK_EQ_STR(base_url("evil.example", false), "https://music.example.com"); /* the Host does not count */
    CHECK_EQ_STR(base_url(NULL, true), "https://music.example.com");
    snprintf(pub, sizeof(pub), "https://music.example.com/");
    CHECK_EQ_STR(base_url("localhost", false), "https://music.example.com");
    snprintf(pub, sizeof(pub), "http://10.0.0.1:8080///");
    CHECK_EQ_STR(base_url("localhost", false), "http://10.0.0.1:8080");
    snprintf(pub, sizeof(pub), "https://example.com/music/");
    CHECK_EQ_STR(base_url("localhost", false), "https://example.com/music");
    /* Taken as configured otherwise: the scheme is not switched, nothing is filtered. */
    snprintf(pub, sizeof(pub), "http://Example.COM");
    CHECK_EQ_STR(base_url("localhost", true), "http://Example.COM");
    /* Nothing but slashes: an empty base (links become absolute paths). */
    snprintf(pub, sizeof(pub), "/");
    CHECK_EQ_STR(base_url("localhost", false), "");
    settings.public_url = NULL;
}

static void test_base_url_host(void)
{
    char empty[1] = "";
    settings.public_url = empty; /* empty counts as unset */
    CHECK_EQ_STR(base_url("music.example.com", false), "http://music.example.com");
    CHECK_EQ_STR(base_url("music.example.com", true), "https://music.example.com");
    settings.public_url = NULL;
    CHECK_EQ_STR(base_url("music.example.com", false), "http://music.example.com");
    /* The port stays, as the client sent it. */
    CHECK_EQ_STR(base_url("localhost:5000", false), "http://localhost:5000");
    CHECK_EQ_STR(base_url("127.0.0.1:8443", true), "https://127.0.0.1:8443");
    CHECK_EQ_STR(base_url("[::1]:5000", false), "http://[::1]:5000");
    CHECK_EQ_STR(base_url("[2001:db8::1]", true), "https://[2001:db8::1]");
    /* Case is kept; hyphens pass, underscores do not (http/host.h: letters, digits, '-' and '.'). */
    CHECK_EQ_STR(base_url("Music.Example.COM", false), "http://Music.Example.COM");
    CHECK_EQ_STR(base_url("my-host-1.lan", false), "http://my-host-1.lan");
    CHECK_EQ_STR(base_url("my_host-1.lan", false), "http://localhost");
    /* Spaces and tabs around the value are not part of it. */
    CHECK_EQ_STR(base_url(" \tmusic.example.com \t", false), "http://music.example.com");
}

static void test_base_url_rejected(void)
{
    /* Anything that could end the authority, add userinfo, or break the header line: localhost instead. */
    static const char *const bad[] = {
        "evil.example/x",
        "evil.example/",
        "user@evil.example",
        "good.example@evil.example",
        "evil.example\\x",
        "evil.example?x",
        "evil.example#x",
        "evil%2eexample",
        "evil.example%0d%0a",
        "music.example.com\r\nSet-Cookie: a=b",
        "music.example.com\nX-Injected: 1",
        "music.example.com\r",
        "music example",
        "music\texample",
        "caf\xc3\xa9.example",
        "music.example.com,evil.example",
        "\"evil.example\"",
        "evil.example;x",
        /* Brackets are for IPv6 literals, whole; ports are digits. */
        "[evil.com]",
        "]a[:b:c",
        "[::1]]",
        "[::1]@evil.example",
        "[::1]:",
        "[fe80::1%25eth0]",
        "evil.example:",
        "evil.example:80:80",
        "evil.example:65536",
        "evil.example:123456",
        "evil.example:8o",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (!CHECK_EQ_STR(base_url(bad[i], false), "http://localhost"))
            fprintf(stderr, "  host: \"%s\"\n", bad[i]);
    }
    CHECK_EQ_STR(base_url("evil.example/x", true), "https://localhost");
    CHECK_EQ_STR(base_url_n("music.example.com\0evil", 21, false), "http://localhost"); /* a NUL inside */
    /* No Host, an empty one, one of only blanks. */
    CHECK_EQ_STR(base_url(NULL, false), "http://localhost");
    CHECK_EQ_STR(base_url("", false), "http://localhost");
    CHECK_EQ_STR(base_url(" \t ", true), "https://localhost");
}

static void test_base_url_length(void)
{
    char host[300], want[320];
    memset(host, 'a', sizeof(host));
    /* 255 bytes, the longest host name: kept (the port counts, the blanks around it do not). */
    snprintf(want, sizeof(want), "http://%.255s", host);
    CHECK_EQ_STR(base_url_n(host, 255, false), want);
    memcpy(host + 250, ":5000", 5);
    snprintf(want, sizeof(want), "http://%.255s", host);
    CHECK_EQ_STR(base_url_n(host, 255, false), want);
    memset(host, 'a', sizeof(host));
    host[0] = ' ';
    host[256] = '\t';
    snprintf(want, sizeof(want), "http://%.255s", host + 1);
    CHECK_EQ_STR(base_url_n(host, 257, false), want);
    /* 256 and beyond: localhost. */
    memset(host, 'a', sizeof(host));
    CHECK_EQ_STR(base_url_n(host, 256, false), "http://localhost");
    CHECK_EQ_STR(base_url_n(host, sizeof(host), true), "https://localhost");
}

/* Every byte, between two letters: it passes only when it is a host-name character (letters, digits, '.', '-'):
 * the Host is validated as a whole (http/host.h), so ':' needs a port of digits after it ("a:b" is not a host)
 * and '[' ']' a whole IPv6 literal. */
static void test_base_url_every_byte(void)
{
    for (int c = 0; c < 256; c++) {
        char host[4] = {'a', (char)c, 'b', '\0'}, want[32];
        bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                       c == '-';
        snprintf(want, sizeof(want), "http://%s", allowed ? host : "localhost");
        if (!CHECK_EQ_STR(base_url_n(host, 3, false), want))
            fprintf(stderr, "  byte 0x%02x\n", c);
    }
    CHECK_EQ_STR(base_url("a:1", false), "http://a:1");
}

/* Regression: links were built from any Host made of host-name characters. With STACCATO_ALLOWED_HOSTS set, only
 * a Host of the list (in any case; a port only where the entry names one) goes into them; any other gives
 * localhost, as an invalid Host does. */
static void test_links_from_host_header(void)
{
    sc_host_list allowed;
    char err[256];
    CHECK_EQ_INT(sc_host_list_parse("music.example.com, api.example.com:8443, [2001:db8::1]", &allowed, err,
                                    sizeof(err)),
                 0);
    server.cfg.allowed_hosts = &allowed;
    CHECK_EQ_STR(base_url("music.example.com", true), "https://music.example.com");
    CHECK_EQ_STR(base_url("MUSIC.example.com:5000", false), "http://MUSIC.example.com:5000");
    CHECK_EQ_STR(base_url("api.example.com:8443", true), "https://api.example.com:8443");
    CHECK_EQ_STR(base_url("[2001:DB8::1]:80", false), "http://[2001:DB8::1]:80");
    CHECK_EQ_STR(base_url("api.example.com", true), "https://localhost");
    CHECK_EQ_STR(base_url("api.example.com:443", true), "https://localhost");
    CHECK_EQ_STR(base_url("evil.example", false), "http://localhost");
    CHECK_EQ_STR(base_url("music.example.com.evil.example", false), "http://localhost");
    CHECK_EQ_STR(base_url("evil.music.example.com", false), "http://localhost");
    CHECK_EQ_STR(base_url("[evil.com]", false), "http://localhost");
    CHECK_EQ_STR(base_url(NULL, false), "http://localhost");
    /* STACCATO_PUBLIC_URL still wins. */
    char pub[] = "https://cdn.example.net";
    settings.public_url = pub;
    CHECK_EQ_STR(base_url("evil.example", false), "https://cdn.example.net");
    settings.public_url = NULL;
    server.cfg.allowed_hosts = NULL;
    sc_host_list_free(&allowed);
    /* An empty list allows every valid host. */
    CHECK_EQ_INT(sc_host_list_parse("", &allowed, err, sizeof(err)), 0);
    server.cfg.allowed_hosts = &allowed;
    CHECK_EQ_STR(base_url("evil.example", false), "http://evil.example");
    CHECK_EQ_STR(base_url("[evil.com]", false), "http://localhost");
    server.cfg.allowed_hosts = NULL;
    sc_host_list_free(&allowed);
}

int main(void)
{
    setup();
    test_page_defaults();
    test_page_offset();
    test_page_bounds();
    test_page_zero_and_negative();
    test_page_not_numbers();
    test_page_overflow();
    test_page_text_forms();
    test_page_which_error();
    test_list_offset_unbounded();
    test_total();
    test_base_url_public();
    test_base_url_host();
    test_base_url_rejected();
    test_base_url_length();
    test_base_url_every_byte();
    test_links_from_host_header();
    sc_http_req_dispose(&conn);
    sc_buf_free(&conn.res_body);
    sc_buf_free(&conn.res_headers);
    sc_buf_free(&conn.body);
    sc_buf_free(&conn.raw);
    sc_arena_pool_drain();
    return check_report();
}
