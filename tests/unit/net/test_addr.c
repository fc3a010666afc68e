/* Addresses and CIDR lists: parsing, errors, and prefix matching for IPv4, IPv6 and IPv4-mapped addresses. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "check.h"
#include "net/addr.h"

static char err[256];

/* True when text parses as an address and the list contains it. */
static bool contains(const sc_cidr_list *l, const char *text)
{
    uint8_t a[16];
    if (sc_addr_parse(sc_slice_cstr(text), a) != 0) {
        fprintf(stderr, "test bug: cannot parse %s\n", text);
        return false;
    }
    return sc_cidr_list_contains(l, a);
}

static int parse(const char *text, sc_cidr_list *l)
{
    err[0] = '\0';
    return sc_cidr_list_parse(text, l, err, sizeof(err));
}

static void test_addr_parse(void)
{
    uint8_t a[16];
    static const uint8_t v4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 20};
    CHECK_EQ_INT(sc_addr_parse(SC_SLICE_LIT("192.168.1.20"), a), 0);
    CHECK(memcmp(a, v4, 16) == 0);
    static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    CHECK_EQ_INT(sc_addr_parse(SC_SLICE_LIT("2001:db8::1"), a), 0);
    CHECK(memcmp(a, v6, 16) == 0);
    /* IPv4-mapped IPv6 text gives the same bytes as the IPv4 text. */
    CHECK_EQ_INT(sc_addr_parse(SC_SLICE_LIT("::ffff:192.168.1.20"), a), 0);
    CHECK(memcmp(a, v4, 16) == 0);
    /* Only the slice's bytes are read. */
    CHECK_EQ_INT(sc_addr_parse((sc_slice){"10.0.0.1junk", 8}, a), 0);
    CHECK(a[12] == 10 && a[13] == 0 && a[14] == 0 && a[15] == 1);

    static const char *const bad[] = {"",         "1.2.3", "1.2.3.4.5", "256.1.1.1",   "1.2.3.4 ",
                                      " 1.2.3.4", "::g",   "1::2::3",   "example.com", "1.2.3.4/8"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (!CHECK_EQ_INT(sc_addr_parse(sc_slice_cstr(bad[i]), a), -1))
            fprintf(stderr, "  '%s' was accepted\n", bad[i]);
    }
    /* Longer than any address text. */
    char longtext[200];
    memset(longtext, '1', sizeof(longtext));
    CHECK_EQ_INT(sc_addr_parse((sc_slice){longtext, sizeof(longtext)}, a), -1);
}

static void test_parse_lists(void)
{
    sc_cidr_list l;
    CHECK_EQ_INT(parse("", &l), 0);
    CHECK_EQ_UINT(l.n, 0);
    sc_cidr_list_free(&l);
    CHECK_EQ_INT(parse(" , ,", &l), 0);
    CHECK_EQ_UINT(l.n, 0);
    sc_cidr_list_free(&l);

    CHECK_EQ_INT(parse("10.0.0.0/8, 127.0.0.1,::1 ,  fd00::/8,,192.168.0.0/16", &l), 0);
    if (CHECK_EQ_UINT(l.n, 5)) {
        CHECK_EQ_UINT(l.items[0].prefix, 96 + 8); /* IPv4 prefixes count within the mapped address */
        CHECK_EQ_UINT(l.items[1].prefix, 128);    /* a single IPv4 address */
        CHECK_EQ_UINT(l.items[2].prefix, 128);
        CHECK_EQ_UINT(l.items[3].prefix, 8);
        CHECK_EQ_UINT(l.items[4].prefix, 96 + 16);
        CHECK(l.items[0].addr[10] == 0xff && l.items[0].addr[11] == 0xff && l.items[0].addr[12] == 10);
        CHECK(l.items[2].addr[15] == 1 && l.items[2].addr[10] == 0);
    }
    sc_cidr_list_free(&l);
    CHECK(l.items == NULL && l.n == 0);

    /* Prefix edges. */
    CHECK_EQ_INT(parse("0.0.0.0/0,1.2.3.4/32,::/0,::1/128", &l), 0);
    if (CHECK_EQ_UINT(l.n, 4)) {
        CHECK_EQ_UINT(l.items[0].prefix, 96);
        CHECK_EQ_UINT(l.items[1].prefix, 128);
        CHECK_EQ_UINT(l.items[2].prefix, 0);
        CHECK_EQ_UINT(l.items[3].prefix, 128);
    }
    sc_cidr_list_free(&l);
}

static void test_parse_errors(void)
{
    static const struct {
        const char *text;
        const char *in_err;
    } cases[] = {
        {"10.0.0.0/33", "invalid prefix in '10.0.0.0/33'"},
        {"::1/129", "invalid prefix in '::1/129'"},
        {"10.0.0.0/", "invalid prefix"},
        {"10.0.0.0/-1", "invalid prefix"},
        {"10.0.0.0/8x", "invalid prefix"},
        {"10.0.0.0/ 8", "invalid prefix"},
        {"10.0.0.0/99999999999999999999999", "invalid prefix"},
        {"10.0.0.0/8/8", "invalid prefix"},
        {"10.0.0.256", "invalid address '10.0.0.256'"},
        {"127.0.0.1, nonsense , ::1", "invalid address 'nonsense'"},
        {"localhost", "invalid address 'localhost'"},
        {"/8", "invalid address '/8'"},
        {"10.0.0.1 10.0.0.2", "invalid address"},
        {"10.0.0.1;10.0.0.2", "invalid address"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sc_cidr_list l = {(sc_cidr *)&l, 99}; /* garbage in: parse must initialise */
        int rc = parse(cases[i].text, &l);
        if (!CHECK_EQ_INT(rc, -1))
            fprintf(stderr, "  '%s' was accepted\n", cases[i].text);
        if (!CHECK(strstr(err, cases[i].in_err) != NULL))
            fprintf(stderr, "  '%s': error was '%s'\n", cases[i].text, err);
        CHECK(l.items == NULL && l.n == 0); /* freed on error, also after earlier good items */
    }
}

static void test_contains(void)
{
    sc_cidr_list l;
    CHECK_EQ_INT(parse("10.0.0.0/8", &l), 0);
    CHECK(contains(&l, "10.0.0.0"));
    CHECK(contains(&l, "10.255.255.255"));
    CHECK(contains(&l, "10.1.2.3"));
    CHECK(contains(&l, "::ffff:10.9.9.9")); /* IPv4-mapped form of the same address */
    CHECK(!contains(&l, "11.0.0.0"));
    CHECK(!contains(&l, "9.255.255.255"));
    CHECK(!contains(&l, "::a01:203")); /* IPv4-compatible (not mapped) 10.1.2.3 is an IPv6 address */
    CHECK(!contains(&l, "a01:203::"));
    sc_cidr_list_free(&l);

    /* /32 and a bare IPv4 address: exactly one address. */
    CHECK_EQ_INT(parse("192.168.1.7/32, 172.16.0.1", &l), 0);
    CHECK(contains(&l, "192.168.1.7"));
    CHECK(!contains(&l, "192.168.1.6"));
    CHECK(!contains(&l, "192.168.1.8"));
    CHECK(contains(&l, "172.16.0.1"));
    CHECK(!contains(&l, "172.16.0.0"));
    sc_cidr_list_free(&l);

    /* IPv4 /0: every IPv4 address, no IPv6 address. */
    CHECK_EQ_INT(parse("0.0.0.0/0", &l), 0);
    CHECK(contains(&l, "1.2.3.4"));
    CHECK(contains(&l, "255.255.255.255"));
    CHECK(contains(&l, "0.0.0.0"));
    CHECK(!contains(&l, "::1"));
    CHECK(!contains(&l, "2001:db8::1"));
    sc_cidr_list_free(&l);

    /* IPv6 /0: everything, IPv4 included. */
    CHECK_EQ_INT(parse("::/0", &l), 0);
    CHECK(contains(&l, "::1"));
    CHECK(contains(&l, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    CHECK(contains(&l, "8.8.8.8"));
    sc_cidr_list_free(&l);

    /* IPv6 /128 and a bare IPv6 address. */
    CHECK_EQ_INT(parse("2001:db8::1/128, ::1", &l), 0);
    CHECK(contains(&l, "2001:db8::1"));
    CHECK(contains(&l, "2001:0db8:0000:0000:0000:0000:0000:0001"));
    CHECK(!contains(&l, "2001:db8::2"));
    CHECK(!contains(&l, "2001:db8::"));
    CHECK(contains(&l, "::1"));
    CHECK(!contains(&l, "::"));
    CHECK(!contains(&l, "127.0.0.1"));
    sc_cidr_list_free(&l);

    /* Prefixes that are not a multiple of 8. */
    CHECK_EQ_INT(parse("fd00::/7, 192.168.0.0/23", &l), 0);
    CHECK(contains(&l, "fc00::1"));
    CHECK(contains(&l, "fdff:ffff::1"));
    CHECK(!contains(&l, "fe00::"));
    CHECK(!contains(&l, "fb00::"));
    CHECK(contains(&l, "192.168.0.1"));
    CHECK(contains(&l, "192.168.1.255"));
    CHECK(!contains(&l, "192.168.2.0"));
    CHECK(!contains(&l, "192.169.0.0"));
    sc_cidr_list_free(&l);

    /* Host bits set in the network address are ignored beyond the prefix. */
    CHECK_EQ_INT(parse("10.1.2.3/8", &l), 0);
    CHECK(contains(&l, "10.200.0.1"));
    sc_cidr_list_free(&l);

    /* An empty list contains nothing. */
    sc_cidr_list empty = {0};
    CHECK(!contains(&empty, "127.0.0.1"));
    CHECK(!contains(&empty, "::"));

    /* Several entries: any one matching is enough. */
    CHECK_EQ_INT(parse("127.0.0.1, 10.0.0.0/8, ::1, fd12::/16", &l), 0);
    CHECK(contains(&l, "127.0.0.1"));
    CHECK(contains(&l, "10.20.30.40"));
    CHECK(contains(&l, "::1"));
    CHECK(contains(&l, "fd12:3456::9"));
    CHECK(!contains(&l, "127.0.0.2"));
    CHECK(!contains(&l, "fd13::"));
    sc_cidr_list_free(&l);
}

static void test_format(void)
{
    char out[64];
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "203.0.113.9", &s4.sin_addr);
    CHECK_EQ_INT(sc_addr_format((struct sockaddr *)&s4, out, sizeof(out)), 11);
    CHECK_EQ_STR(out, "203.0.113.9");

    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "2001:db8::42", &s6.sin6_addr);
    sc_addr_format((struct sockaddr *)&s6, out, sizeof(out));
    CHECK_EQ_STR(out, "2001:db8::42");

    inet_pton(AF_INET6, "::ffff:198.51.100.3", &s6.sin6_addr);
    sc_addr_format((struct sockaddr *)&s6, out, sizeof(out));
    CHECK_EQ_STR(out, "198.51.100.3");

    struct sockaddr un = {.sa_family = AF_UNIX};
    CHECK_EQ_INT(sc_addr_format(&un, out, sizeof(out)), 0);
    CHECK_EQ_STR(out, "");
}

int main(void)
{
    test_addr_parse();
    test_parse_lists();
    test_parse_errors();
    test_contains();
    test_format();
    return check_report();
}
