/* The Host validator (http/host.c, sc_host_parse) shared by the links in answers and the redirect to HTTPS: a
 * reg-name of letters, digits, '-' and '.' of at most 255 bytes (IPv4 addresses among them), or a bracketed IPv6
 * literal of hex digits, ':' and '.' that is an IPv6 address, then an optional ':' and 1 to 5 digits up to 65535;
 * nothing else, nothing around it. And STACCATO_ALLOWED_HOSTS (sc_host_list_parse, sc_host_list_allows). */
#include "http/host.h"

#include <stdio.h>
#include <string.h>

#include "check.h"

/* Parses the n bytes at value; on success checks the name and the port's text and number. */
static bool parse_n(const char *value, size_t n, const char *name, const char *port, int port_num)
{
    sc_host h;
    memset(&h, 0x5a, sizeof(h));
    if (sc_host_parse((sc_slice){value, n}, &h) != 0)
        return false;
    char got_name[300], got_port[16];
    snprintf(got_name, sizeof(got_name), "%.*s", (int)h.name.len, h.name.ptr);
    snprintf(got_port, sizeof(got_port), "%.*s", (int)h.port.len, h.port.ptr ? h.port.ptr : "");
    bool ok = CHECK_EQ_STR(got_name, name);
    ok = CHECK_EQ_STR(got_port, port) && ok;
    ok = CHECK_EQ_INT(h.port_num, port_num) && ok;
    if (!ok)
        fprintf(stderr, "  host: \"%.*s\"\n", (int)n, value);
    return true;
}

static void valid(const char *value, const char *name, const char *port, int port_num)
{
    if (!CHECK(parse_n(value, strlen(value), name, port, port_num)))
        fprintf(stderr, "  host: \"%s\" refused\n", value);
}

static void invalid_n(const char *value, size_t n)
{
    sc_host h;
    if (!CHECK(sc_host_parse((sc_slice){value, n}, &h) != 0))
        fprintf(stderr, "  host: \"%.*s\" accepted\n", (int)n, value);
}

static void invalid(const char *value) { invalid_n(value, strlen(value)); }

static void test_names(void)
{
    valid("music.example.com", "music.example.com", "", -1);
    valid("Music.Example.COM", "Music.Example.COM", "", -1);
    valid("localhost", "localhost", "", -1);
    valid("a", "a", "", -1);
    valid("my-host-1.lan", "my-host-1.lan", "", -1);
    valid("example.com.", "example.com.", "", -1); /* the root's dot */
    valid("127.0.0.1", "127.0.0.1", "", -1);       /* IPv4: a reg-name as far as URLs go */
    valid("10.0.0.1:8080", "10.0.0.1", "8080", 8080);
    invalid("my_host.lan");
    invalid("");
    invalid("caf\xc3\xa9.example");
    invalid("xn--caf-dma.example:"); /* the A-label passes, the empty port does not */
    valid("xn--caf-dma.example", "xn--caf-dma.example", "", -1);
}

static void test_ports(void)
{
    valid("h:0", "h", "0", 0);
    valid("h:1", "h", "1", 1);
    valid("h:80", "h", "80", 80);
    valid("h:65535", "h", "65535", 65535);
    valid("h:00080", "h", "00080", 80); /* five digits, leading zeros and all */
    invalid("h:65536");
    invalid("h:99999");
    invalid("h:000080"); /* six digits */
    invalid("h:");
    invalid(":80");
    invalid(":");
    invalid("h:8o");
    invalid("h:-1");
    invalid("h:+1");
    invalid("h:80:80");
    invalid("h:80 ");
    invalid("h: 80");
    invalid("h:0x50");
}

static void test_ipv6(void)
{
    valid("[::1]", "[::1]", "", -1);
    valid("[::1]:5000", "[::1]", "5000", 5000);
    valid("[2001:DB8::a:1]", "[2001:DB8::a:1]", "", -1);
    valid("[::ffff:127.0.0.1]:80", "[::ffff:127.0.0.1]", "80", 80);
    valid("[1:2:3:4:5:6:7:8]", "[1:2:3:4:5:6:7:8]", "", -1);
    valid("[0000:0000:0000:0000:0000:ffff:255.255.255.255]", "[0000:0000:0000:0000:0000:ffff:255.255.255.255]", "",
          -1);
    /* The disagreement of the two filters this validator replaced: each passed one of these. */
    invalid("]a[:b:c");
    invalid("[evil.com]");
    /* Names, zone ids, IPvFuture, nothing or too much inside. */
    invalid("[localhost]");
    invalid("[fe80::1%25eth0]");
    invalid("[fe80::1%eth0]");
    invalid("[v1.x]");
    invalid("[]");
    invalid("[:]");
    invalid("[1]");
    invalid("[::1::2]");
    invalid("[1:2:3:4:5:6:7:8:9]");
    invalid("[12345::1]");
    invalid("[::1.2.3]");
    invalid("[ ::1]");
    /* Brackets: one pair, first; then only a port. */
    invalid("[::1");
    invalid("::1]");
    invalid("::1");
    invalid("[::1]]");
    invalid("[[::1]]");
    invalid("a[::1]");
    invalid("[::1]a");
    invalid("[::1]:");
    invalid("[::1]@evil.example");
    invalid("[::1]/x");
    invalid("[::1]:80]");
}

static void test_rejected(void)
{
    static const char *const bad[] = {
        "evil.example/x",
        "evil.example/",
        "user@evil.example",
        "user:pass@evil.example",
        "good.example:80@evil.example",
        "evil.example\\x",
        "evil.example?x",
        "evil.example#x",
        "evil%2eexample",
        "music.example.com\r\nSet-Cookie: a=b",
        "music.example.com\r",
        "music example",
        " music.example",
        "music.example ",
        "\tmusic.example",
        "music.example.com,evil.example",
        "\"evil.example\"",
        "evil.example;x",
        "evil.example]",
        "evil.example[",
        "*",
        "~user.example",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        invalid(bad[i]);
    invalid_n("music.example.com\0evil", 21);
    invalid_n("\0", 1);
    invalid_n("h:8\0", 4);
}

/* 255 bytes of name, the most RFC 3986 has producers use: valid, with or without a port; 256 and more: not. */
static void test_length(void)
{
    char host[320], want[300];
    memset(host, 'a', sizeof(host));
    snprintf(want, sizeof(want), "%.255s", host);
    CHECK(parse_n(host, 255, want, "", -1));
    memcpy(host + 255, ":5000", 5);
    CHECK(parse_n(host, 260, want, "5000", 5000));
    memset(host, 'a', sizeof(host));
    invalid_n(host, 256);
    invalid_n(host, sizeof(host));
    memcpy(host + 256, ":5000", 5);
    invalid_n(host, 261);
    /* Dots count like any other byte. */
    for (size_t i = 1; i < 255; i += 2)
        host[i] = '.';
    snprintf(want, sizeof(want), "%.255s", host);
    CHECK(parse_n(host, 255, want, "", -1));
    invalid_n(host, 256);
    /* Brackets around a long name are not a literal. */
    memset(host, 'a', sizeof(host));
    host[0] = '[';
    host[254] = ']';
    invalid_n(host, 255);
}

/* Every byte in a name, and inside a literal: only letters, digits, '-' and '.' in the one, hex digits in the
 * other ("[::<byte>1]"). */
static void test_every_byte(void)
{
    for (int c = 0; c < 256; c++) {
        char host[4] = {'a', (char)c, 'b', '\0'};
        bool name = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '-';
        sc_host h;
        if (!CHECK_EQ_INT(sc_host_parse((sc_slice){host, 3}, &h), name ? 0 : -1))
            fprintf(stderr, "  byte 0x%02x\n", c);
        char v6[6] = {'[', ':', ':', (char)c, '1', ']'};
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!CHECK_EQ_INT(sc_host_parse((sc_slice){v6, 6}, &h), hex ? 0 : -1))
            fprintf(stderr, "  byte 0x%02x in brackets\n", c);
        char port[4] = {'h', ':', (char)c, '\0'};
        bool digit = c >= '0' && c <= '9';
        if (!CHECK_EQ_INT(sc_host_parse((sc_slice){port, 3}, &h), digit ? 0 : -1))
            fprintf(stderr, "  byte 0x%02x in the port\n", c);
    }
}

static bool allows(const sc_host_list *l, const char *value)
{
    sc_host h;
    return sc_host_parse(sc_slice_cstr(value), &h) == 0 && sc_host_list_allows(l, &h);
}

static void test_allowed_hosts(void)
{
    sc_host_list l;
    char err[512];
    CHECK_EQ_INT(sc_host_list_parse(" music.example.com ,api.example.com:8443,, [2001:db8::1] ,", &l, err,
                                    sizeof(err)),
                 0);
    CHECK_EQ_UINT(l.n, 3);
    CHECK(allows(&l, "music.example.com"));
    CHECK(allows(&l, "MUSIC.EXAMPLE.COM:5000")); /* no port in the entry: any */
    CHECK(allows(&l, "api.example.com:8443"));
    CHECK(allows(&l, "api.example.com:08443"));
    CHECK(!allows(&l, "api.example.com"));
    CHECK(!allows(&l, "api.example.com:443"));
    CHECK(allows(&l, "[2001:DB8::1]:80"));
    CHECK(!allows(&l, "[2001:db8::0:1]")); /* the same address written otherwise: names are compared as text */
    CHECK(!allows(&l, "evil.example"));
    CHECK(!allows(&l, "music.example.com.evil.example"));
    CHECK(!allows(&l, "evil-music.example.com"));
    CHECK(!allows(&l, "music.example.co"));
    sc_host_list_free(&l);
    CHECK(l.items == NULL && l.n == 0);

    CHECK_EQ_INT(sc_host_list_parse("", &l, err, sizeof(err)), 0);
    CHECK_EQ_UINT(l.n, 0);
    CHECK(allows(&l, "anything.example"));
    CHECK(allows(NULL, "anything.example"));
    sc_host_list_free(&l);
    CHECK_EQ_INT(sc_host_list_parse(" , ", &l, err, sizeof(err)), 0);
    CHECK_EQ_UINT(l.n, 0);
    sc_host_list_free(&l);

    static const char *const bad[] = {"http://music.example.com",
                                      "music.example.com/",
                                      "a b",
                                      "[evil.com]",
                                      "music.example.com:",
                                      "h:65536",
                                      "user@h",
                                      "*.example.com"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (!CHECK_EQ_INT(sc_host_list_parse(bad[i], &l, err, sizeof(err)), -1))
            fprintf(stderr, "  list: \"%s\"\n", bad[i]);
        CHECK(strstr(err, "STACCATO_ALLOWED_HOSTS") != NULL);
        CHECK(l.items == NULL && l.text == NULL);
    }
    CHECK_EQ_INT(sc_host_list_parse("good.example, bad example", &l, err, sizeof(err)), -1);
    CHECK(strstr(err, "'bad example'") != NULL);
}

int main(void)
{
    test_names();
    test_ports();
    test_ipv6();
    test_rejected();
    test_length();
    test_every_byte();
    test_allowed_hosts();
    return check_report();
}
