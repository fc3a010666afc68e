/* Origin lists of the CORS policy (http/cors.c, sc_origin_list_parse, sc_origin_list_contains): exact
 * scheme://host[:port] items without a path, compared without regard to case; "*" only alone and only where it is
 * allowed; a bad item is one message naming the setting and the item. */
#include "http/cors.h"

#include <stdio.h>
#include <string.h>

#include "check.h"

static bool contains(const sc_origin_list *l, const char *origin)
{
    return sc_origin_list_contains(l, sc_slice_cstr(origin));
}

static void test_valid(void)
{
    sc_origin_list l;
    char err[256] = "";
    CHECK_EQ_INT(sc_origin_list_parse(" https://app.example , http://127.0.0.1:3000,,http://[::1]:8080 ", false,
                                      "X", &l, err, sizeof(err)),
                 0);
    CHECK_EQ_UINT(l.n, 3);
    CHECK(!l.any);
    CHECK(contains(&l, "https://app.example"));
    CHECK(contains(&l, "HTTPS://APP.EXAMPLE"));
    CHECK(contains(&l, "http://127.0.0.1:3000"));
    CHECK(contains(&l, "http://[::1]:8080"));
    CHECK(!contains(&l, "http://app.example"));
    CHECK(!contains(&l, "https://app.example:443"));
    CHECK(!contains(&l, "https://app.example/"));
    CHECK(!contains(&l, "http://127.0.0.1:300"));
    CHECK(!contains(&l, "null"));
    CHECK(!contains(&l, ""));
    sc_origin_list_free(&l);

    CHECK_EQ_INT(sc_origin_list_parse("", true, "X", &l, err, sizeof(err)), 0);
    CHECK_EQ_UINT(l.n, 0);
    CHECK(!l.any);
    CHECK(!contains(&l, "https://app.example"));
    sc_origin_list_free(&l);
}

static void test_star(void)
{
    sc_origin_list l;
    char err[256] = "";
    CHECK_EQ_INT(sc_origin_list_parse(" * ", true, "X", &l, err, sizeof(err)), 0);
    CHECK(l.any);
    CHECK(contains(&l, "https://anything.example"));
    sc_origin_list_free(&l);
    CHECK_EQ_INT(sc_origin_list_parse("*", false, "COOKIES", &l, err, sizeof(err)), -1);
    CHECK(strstr(err, "COOKIES") != NULL);
    CHECK_EQ_INT(sc_origin_list_parse("*,https://app.example", true, "X", &l, err, sizeof(err)), -1);
    CHECK(strstr(err, "alone") != NULL);
    CHECK(l.items == NULL && l.text == NULL);
}

static void test_rejected(void)
{
    static const char *const bad[] = {"app.example",
                                      "https://app.example/",
                                      "https://app.example/path",
                                      "https://app.example?x=1",
                                      "https://user@app.example",
                                      "https://app.example:",
                                      "https://app.example:65536",
                                      "https://",
                                      "://app.example",
                                      "1http://app.example",
                                      "https:/app.example",
                                      "https://app example",
                                      "null"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sc_origin_list l;
        char err[256] = "";
        if (!CHECK_EQ_INT(sc_origin_list_parse(bad[i], true, "STACCATO_CORS_ORIGINS", &l, err, sizeof(err)), -1))
            fprintf(stderr, "  origin: \"%s\"\n", bad[i]);
        CHECK(strstr(err, "STACCATO_CORS_ORIGINS") != NULL);
        CHECK(strstr(err, bad[i]) != NULL);
        CHECK(strchr(err, '\n') == NULL);
        CHECK(l.items == NULL && l.text == NULL);
    }
}

int main(void)
{
    test_valid();
    test_star();
    test_rejected();
    return check_report();
}
