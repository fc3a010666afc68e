/* The redirect to HTTPS (http/request.c, redirect_to_https): the Location is https://, the Host header's name
 * (its port replaced by the TLS port, none for 443) and the request target; the Host header counts only when
 * http/host.h finds the whole of it valid (a name of letters, digits, '-' and '.', or a bracketed IPv6 literal,
 * with an optional port of digits) and STACCATO_ALLOWED_HOSTS allows it. Otherwise (no Host, an empty or
 * over-long name, bytes that could break the header line or move the URL's authority) the first allowed host, or
 * without a list the address the client reached the server at.
 *
 * The file under test is included, to reach the static function. The requests are built by hand inside a
 * connection object; its socket is only asked for its local address (getsockname), so it is a socket bound to a
 * loopback address, or -1 when a test wants the fallback of the fallback, "localhost". */
#include "http/request.c"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"

static sc_server server;
static sc_http_conn conn;
static sc_header headers[4];

typedef struct redirected {
    int status;
    char headers[512]; /* the response's header lines */
    char body[64];
} redirected;

/* Runs the redirect for a request with this target and Host header (NULL: none; host_len bytes, so that a NUL may
 * be in it), on a connection whose socket is fd. */
static redirected redirect_n(int fd, const char *target, const char *host, size_t host_len)
{
    redirected out;
    sc_http_req_dispose(&conn);
    conn.super.fd = fd;
    sc_req *r = &conn.req;
    r->target = sc_slice_cstr(target);
    r->headers = headers;
    r->nheaders = 0;
    headers[r->nheaders++] = (sc_header){SC_SLICE_LIT("User-Agent"), SC_SLICE_LIT("test")};
    if (host)
        headers[r->nheaders++] = (sc_header){SC_SLICE_LIT("host"), (sc_slice){host, host_len}};
    out.status = redirect_to_https(&conn);
    snprintf(out.headers, sizeof(out.headers), "%.*s", (int)r->res.headers->len,
             r->res.headers->ptr ? r->res.headers->ptr : "");
    snprintf(out.body, sizeof(out.body), "%.*s", (int)r->res.body->len, r->res.body->ptr ? r->res.body->ptr : "");
    return out;
}

/* The Location for this Host header (NULL: none) and target "/", on a socket without an address (fd -1). */
static const char *location_n(const char *host, size_t host_len)
{
    static char loc[512];
    redirected got = redirect_n(-1, "/", host, host_len);
    size_t n = strlen(got.headers);
    if (strncmp(got.headers, "Location: ", 10) != 0 || n < 12 || strcmp(got.headers + n - 2, "\r\n") != 0 ||
        got.status != 308) {
        fprintf(stderr, "not a redirect: %d \"%s\"\n", got.status, got.headers);
        return "";
    }
    snprintf(loc, sizeof(loc), "%.*s", (int)(n - 12), got.headers + 10);
    return loc;
}

static const char *location(const char *host) { return location_n(host, host ? strlen(host) : 0); }

static void test_response(void)
{
    server.cfg.tls_port = 8443;
    redirected got = redirect_n(-1, "/albums/a1?x=1&y=%20", "music.example.com", 17);
    CHECK_EQ_INT(got.status, 308);
    CHECK_EQ_STR(got.headers, "Location: https://music.example.com:8443/albums/a1?x=1&y=%20\r\n");
    CHECK_EQ_STR(got.body, "use HTTPS");
    CHECK_EQ_STR(conn.req.res.content_type, "text/plain; charset=utf-8");
    /* The target goes as it was sent (http1.c lets only origin-form targets, starting with '/', this far),
     * whatever its path looks like: the authority is already over. */
    got = redirect_n(-1, "//evil.example/x", "music.example.com", 17);
    CHECK_EQ_STR(got.headers, "Location: https://music.example.com:8443//evil.example/x\r\n");
}

static void test_ports(void)
{
    server.cfg.tls_port = 8443;
    CHECK_EQ_STR(location("music.example.com"), "https://music.example.com:8443/");
    /* The client's port is replaced by the TLS port. */
    CHECK_EQ_STR(location("music.example.com:5000"), "https://music.example.com:8443/");
    CHECK_EQ_STR(location("music.example.com:"), "https://localhost:8443/"); /* a port has digits */
    CHECK_EQ_STR(location("music.example.com:8443"), "https://music.example.com:8443/");
    CHECK_EQ_STR(location("127.0.0.1:80"), "https://127.0.0.1:8443/");
    /* The whole Host must be valid: what follows the ':' is a port or nothing at all. */
    CHECK_EQ_STR(location("music.example.com:5000@evil.example"), "https://localhost:8443/");
    CHECK_EQ_STR(location("user:pass@evil.example"), "https://localhost:8443/");
    CHECK_EQ_STR(location("music.example.com:80/evil"), "https://localhost:8443/");
    CHECK_EQ_STR(location("music.example.com:65535"), "https://music.example.com:8443/");
    CHECK_EQ_STR(location("music.example.com:65536"), "https://localhost:8443/");
    CHECK_EQ_STR(location("music.example.com:000080"), "https://localhost:8443/");
    /* 443 is not written. */
    server.cfg.tls_port = 443;
    CHECK_EQ_STR(location("music.example.com:80"), "https://music.example.com/");
    CHECK_EQ_STR(location("[::1]:80"), "https://[::1]/");
    server.cfg.tls_port = 1;
    CHECK_EQ_STR(location("h"), "https://h:1/");
    server.cfg.tls_port = 65535;
    CHECK_EQ_STR(location("h"), "https://h:65535/");
    server.cfg.tls_port = 8443;
}

static void test_names(void)
{
    server.cfg.tls_port = 8443;
    /* Case is kept; digits, '.' and '-' pass, '_' does not. */
    CHECK_EQ_STR(location("Music.Example.COM"), "https://Music.Example.COM:8443/");
    CHECK_EQ_STR(location("my-host-1.lan"), "https://my-host-1.lan:8443/");
    CHECK_EQ_STR(location("my_host-1.lan"), "https://localhost:8443/");
    CHECK_EQ_STR(location("localhost"), "https://localhost:8443/");
    /* Spaces and tabs around the value are not part of it. */
    CHECK_EQ_STR(location(" \tmusic.example.com:5000 \t"), "https://music.example.com:8443/");
}

static void test_ipv6(void)
{
    server.cfg.tls_port = 8443;
    CHECK_EQ_STR(location("[::1]:5000"), "https://[::1]:8443/");
    CHECK_EQ_STR(location("[::1]"), "https://[::1]:8443/");
    CHECK_EQ_STR(location("[2001:DB8::a:1]:443"), "https://[2001:DB8::a:1]:8443/");
    CHECK_EQ_STR(location("[::ffff:127.0.0.1]:80"), "https://[::ffff:127.0.0.1]:8443/");
    /* The literal ends at the first ']', and only a port may follow it. */
    CHECK_EQ_STR(location("[::1]@evil.example"), "https://localhost:8443/");
    CHECK_EQ_STR(location("[::1]/evil"), "https://localhost:8443/");
    CHECK_EQ_STR(location("[::1]]"), "https://localhost:8443/");
    /* Inside the brackets an IPv6 address: hex digits, ':' and '.'; no names, zone ids or IPvFuture. */
    CHECK_EQ_STR(location("[evil.com]"), "https://localhost:8443/");
    CHECK_EQ_STR(location("[v1.x]"), "https://localhost:8443/");
    CHECK_EQ_STR(location("[:]"), "https://localhost:8443/");
    CHECK_EQ_STR(location("[1:2:3:4:5:6:7:8:9]"), "https://localhost:8443/");
    CHECK_EQ_STR(location("[::1/x]"), "https://localhost:8443/");
    CHECK_EQ_STR(location("[::1@x]"), "https://localhost:8443/");
    CHECK_EQ_STR(location("[fe80::1%25eth0]"), "https://localhost:8443/"); /* a zone id */
    CHECK_EQ_STR(location("[::1\r\nX: y]"), "https://localhost:8443/");
    /* No closing bracket, or nothing between the brackets: not a literal. */
    CHECK_EQ_STR(location("[::1"), "https://localhost:8443/");
    CHECK_EQ_STR(location("[::1:5000"), "https://localhost:8443/");
    CHECK_EQ_STR(location("[]"), "https://localhost:8443/");
    CHECK_EQ_STR(location("[]:5000"), "https://localhost:8443/");
    CHECK_EQ_STR(location("["), "https://localhost:8443/");
    /* Brackets and ':' are for literals only. */
    CHECK_EQ_STR(location("a]b"), "https://localhost:8443/");
    CHECK_EQ_STR(location("a[::1]"), "https://localhost:8443/");
    CHECK_EQ_STR(location("::1"), "https://localhost:8443/"); /* an empty name before the first ':' */
}

static void test_rejected(void)
{
    server.cfg.tls_port = 8443;
    /* Anything that could end the authority, add userinfo, or break the header line: the fallback instead. */
    static const char *const bad[] = {
        "evil.example/x",
        "evil.example/",
        "user@evil.example",
        "music.example.com@evil.example",
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
        "evil.example]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (!CHECK_EQ_STR(location(bad[i]), "https://localhost:8443/"))
            fprintf(stderr, "  host: \"%s\"\n", bad[i]);
    }
    CHECK_EQ_STR(location_n("music.example.com\0evil", 21), "https://localhost:8443/"); /* a NUL inside */
    CHECK_EQ_STR(location_n("\0", 1), "https://localhost:8443/");
    /* No Host, an empty one, one of only blanks, a port without a name. */
    CHECK_EQ_STR(location(NULL), "https://localhost:8443/");
    CHECK_EQ_STR(location(""), "https://localhost:8443/");
    CHECK_EQ_STR(location(" \t "), "https://localhost:8443/");
    CHECK_EQ_STR(location(":5000"), "https://localhost:8443/");
    CHECK_EQ_STR(location(":"), "https://localhost:8443/");
}

static void test_length(void)
{
    char host[320], want[340];
    server.cfg.tls_port = 8443;
    memset(host, 'a', sizeof(host));
    /* A name of 255 bytes, the longest: kept; the port does not count. */
    snprintf(want, sizeof(want), "https://%.255s:8443/", host);
    CHECK_EQ_STR(location_n(host, 255), want);
    memcpy(host + 255, ":5000", 5);
    CHECK_EQ_STR(location_n(host, 260), want);
    /* Brackets around a name are not an IPv6 literal, however long. */
    memset(host, 'a', sizeof(host));
    host[0] = '[';
    host[254] = ']';
    CHECK_EQ_STR(location_n(host, 255), "https://localhost:8443/");
    /* 256 and beyond: the fallback. */
    memset(host, 'a', sizeof(host));
    CHECK_EQ_STR(location_n(host, 256), "https://localhost:8443/");
    CHECK_EQ_STR(location_n(host, sizeof(host)), "https://localhost:8443/");
    memcpy(host + 256, ":5000", 5);
    CHECK_EQ_STR(location_n(host, 261), "https://localhost:8443/");
    host[0] = '[';
    host[255] = ']';
    CHECK_EQ_STR(location_n(host, 256), "https://localhost:8443/");
}

/* Every byte, between two letters: it passes only when it is a host-name character (letters, digits, '.', '-');
 * "a:b" is not a host (a port is digits). Inside brackets, "[::<byte>1]" is an IPv6 literal for hex digits only.
 */
static void test_every_byte(void)
{
    server.cfg.tls_port = 8443;
    for (int c = 0; c < 256; c++) {
        char host[4] = {'a', (char)c, 'b', '\0'}, want[64];
        bool name = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '-';
        snprintf(want, sizeof(want), "https://%s:8443/", name ? host : "localhost");
        if (!CHECK_EQ_STR(location_n(host, 3), want))
            fprintf(stderr, "  byte 0x%02x\n", c);

        char v6[7] = {'[', ':', ':', (char)c, '1', ']', '\0'};
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        snprintf(want, sizeof(want), "https://%s:8443/", hex ? v6 : "localhost");
        if (!CHECK_EQ_STR(location_n(v6, 6), want))
            fprintf(stderr, "  byte 0x%02x in brackets\n", c);
    }
}

/* Regression: with the Host header outside STACCATO_ALLOWED_HOSTS (or invalid), the redirect goes to the first
 * allowed host, never to the name the client sent. */
static void test_redirect_allowed_hosts(void)
{
    sc_host_list allowed;
    char err[256];
    server.cfg.tls_port = 8443;
    CHECK_EQ_INT(sc_host_list_parse("music.example.com:443,alt.example.com", &allowed, err, sizeof(err)), 0);
    server.cfg.allowed_hosts = &allowed;
    CHECK_EQ_STR(location("alt.example.com:80"), "https://alt.example.com:8443/");
    CHECK_EQ_STR(location("ALT.example.com"), "https://ALT.example.com:8443/");
    CHECK_EQ_STR(location("evil.example"), "https://music.example.com:8443/");
    CHECK_EQ_STR(location("music.example.com:80"), "https://music.example.com:8443/"); /* the entry names 443 */
    CHECK_EQ_STR(location("[evil.com]"), "https://music.example.com:8443/");
    CHECK_EQ_STR(location(NULL), "https://music.example.com:8443/");
    server.cfg.allowed_hosts = NULL;
    sc_host_list_free(&allowed);
}

/* Without a usable Host: the address the client reached, from the socket, bracketed when IPv6. */
static void test_fallback_address(void)
{
    server.cfg.tls_port = 8443;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (CHECK(fd >= 0) && CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)) {
        redirected got = redirect_n(fd, "/a?b", "evil.example/x", 14);
        CHECK_EQ_STR(got.headers, "Location: https://127.0.0.1:8443/a?b\r\n");
        got = redirect_n(fd, "/", NULL, 0);
        CHECK_EQ_STR(got.headers, "Location: https://127.0.0.1:8443/\r\n");
        /* A good Host still wins over the socket. */
        got = redirect_n(fd, "/", "music.example.com", 17);
        CHECK_EQ_STR(got.headers, "Location: https://music.example.com:8443/\r\n");
    }
    if (fd >= 0)
        close(fd);

    fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0) {
        redirected got = redirect_n(fd, "/", "a b", 3);
        CHECK_EQ_STR(got.headers, "Location: https://[::1]:8443/\r\n");
    } else {
        fprintf(stderr, "note: no IPv6 loopback here; the bracketed fallback is not checked\n");
    }
    if (fd >= 0)
        close(fd);

    /* A socket without an IP address (a socketpair): no client byte goes in either way. */
    int sv[2];
    if (CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0)) {
        redirected got = redirect_n(sv[0], "/", "evil.example/x", 14);
        CHECK(strncmp(got.headers, "Location: https://", 18) == 0);
        CHECK(strstr(got.headers, "evil") == NULL);
        close(sv[0]);
        close(sv[1]);
    }
}

int main(void)
{
    conn.server = &server;
    conn.super.transport = &sc_transport_plain;
    sc_http_req_reset(&conn);
    test_response();
    test_ports();
    test_names();
    test_ipv6();
    test_rejected();
    test_length();
    test_every_byte();
    test_redirect_allowed_hosts();
    test_fallback_address();
    sc_http_req_dispose(&conn);
    sc_buf_free(&conn.res_body);
    sc_buf_free(&conn.res_headers);
    sc_buf_free(&conn.body);
    sc_buf_free(&conn.raw);
    sc_arena_pool_drain();
    return check_report();
}
