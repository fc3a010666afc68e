/* The streaming JSON writer: nesting and commas, escaping, UTF-8 repair, and round trips through jansson. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "json/write.h"

/* Escapes s as a JSON string value and returns the text (static storage). */
static const char *escaped(const char *s, size_t n)
{
    static char out[1024];
    sc_buf b = {0};
    sc_jw w;
    sc_jw_init(&w, &b);
    sc_jw_str(&w, (sc_slice){s, n});
    snprintf(out, sizeof(out), "%.*s", (int)b.len, b.ptr);
    sc_buf_free(&b);
    return out;
}
#define ESC(lit) escaped((lit), sizeof(lit) - 1)

/* Parses buf with jansson (any top-level value) and compares it with `want` (stolen). Prints both on mismatch. */
static bool round_trip_(const sc_buf *b, json_t *want, const char *file, int line)
{
    json_error_t e;
    json_t *got = json_loadb(b->ptr, b->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    bool ok = got && json_equal(got, want);
    if (!ok) {
        char *w = json_dumps(want, JSON_ENCODE_ANY | JSON_COMPACT);
        fprintf(stderr, "%s:%d: round trip of %.*s: %s; want %s\n", file, line, (int)b->len, b->ptr,
                got ? "different value" : e.text, w ? w : "?");
        free(w);
    }
    json_decref(got);
    json_decref(want);
    return check_result_(ok, file, line, "round trip");
}
#define ROUND_TRIP(b, want) round_trip_((b), (want), __FILE__, __LINE__)

static void test_nesting(void)
{
    sc_buf b = {0};
    sc_jw w;
    sc_jw_init(&w, &b);
    sc_jw_obj_begin(&w);
    sc_jw_key(&w, "status");
    sc_jw_cstr(&w, "success");
    sc_jw_key(&w, "data");
    sc_jw_obj_begin(&w);
    sc_jw_key(&w, "items");
    sc_jw_arr_begin(&w);
    for (int i = 0; i < 3; i++) {
        sc_jw_obj_begin(&w);
        sc_jw_key(&w, "id");
        sc_jw_int(&w, i);
        sc_jw_key(&w, "tags");
        sc_jw_arr_begin(&w);
        sc_jw_arr_end(&w);
        sc_jw_key(&w, "meta");
        sc_jw_obj_begin(&w);
        sc_jw_obj_end(&w);
        sc_jw_obj_end(&w);
    }
    sc_jw_arr_end(&w);
    sc_jw_key(&w, "count");
    sc_jw_uint(&w, 3);
    sc_jw_key(&w, "ok");
    sc_jw_bool(&w, true);
    sc_jw_key(&w, "no");
    sc_jw_bool(&w, false);
    sc_jw_key(&w, "nothing");
    sc_jw_null(&w);
    sc_jw_key(&w, "missing");
    sc_jw_cstr(&w, NULL);
    sc_jw_key(&w, "raw");
    sc_jw_raw(&w, SC_SLICE_LIT("[1,{\"a\":2}]"));
    sc_jw_key(&w, "nested");
    sc_jw_arr_begin(&w);
    sc_jw_arr_begin(&w);
    sc_jw_arr_begin(&w);
    sc_jw_int(&w, -1);
    sc_jw_arr_end(&w);
    sc_jw_arr_end(&w);
    sc_jw_int(&w, 2);
    sc_jw_arr_end(&w);
    sc_jw_obj_end(&w);
    sc_jw_obj_end(&w);

    static const char want_text[] =
        "{\"status\":\"success\",\"data\":{\"items\":[{\"id\":0,\"tags\":[],\"meta\":{}},{\"id\":1,\"tags\":[],"
        "\"meta\":{}},{\"id\":2,\"tags\":[],\"meta\":{}}],\"count\":3,\"ok\":true,\"no\":false,\"nothing\":null,"
        "\"missing\":null,\"raw\":[1,{\"a\":2}],\"nested\":[[[-1]],2]}}";
    CHECK_EQ_SLICE(b, want_text);
    CHECK_EQ_INT(w.depth, 0);

    json_t *want =
        json_pack("{s:s, s:{s:[{s:i,s:[],s:{}},{s:i,s:[],s:{}},{s:i,s:[],s:{}}], s:i, s:b, s:b, s:n, s:n, "
                  "s:[i,{s:i}], s:[[[i]],i]}}",
                  "status", "success", "data", "items", "id", 0, "tags", "meta", "id", 1, "tags", "meta", "id", 2,
                  "tags", "meta", "count", 3, "ok", 1, "no", 0, "nothing", "missing", "raw", 1, "a", 2, "nested",
                  -1, 2);
    CHECK(want != NULL);
    ROUND_TRIP(&b, want);
    sc_buf_free(&b);

    /* Top-level values after each other get commas too; empty containers at the top. */
    sc_buf t = {0};
    sc_jw_init(&w, &t);
    sc_jw_arr_begin(&w);
    sc_jw_arr_end(&w);
    CHECK_EQ_SLICE(t, "[]");
    t.len = 0;
    sc_jw_init(&w, &t);
    sc_jw_arr_begin(&w);
    sc_jw_int(&w, 1);
    sc_jw_obj_begin(&w);
    sc_jw_obj_end(&w);
    sc_jw_str(&w, SC_SLICE_LIT(""));
    sc_jw_arr_begin(&w);
    sc_jw_null(&w);
    sc_jw_arr_end(&w);
    sc_jw_arr_end(&w);
    CHECK_EQ_SLICE(t, "[1,{},\"\",[null]]");
    sc_buf_free(&t);

    /* The maximum depth the writer supports (SC_JW_MAX_DEPTH - 1 open containers). */
    sc_buf d = {0};
    sc_jw_init(&w, &d);
    for (int i = 0; i < SC_JW_MAX_DEPTH - 1; i++) {
        sc_jw_arr_begin(&w);
        sc_jw_int(&w, i);
    }
    for (int i = 0; i < SC_JW_MAX_DEPTH - 1; i++)
        sc_jw_arr_end(&w);
    CHECK_EQ_INT(w.depth, 0);
    json_error_t e;
    json_t *deep = json_loadb(d.ptr, d.len, 0, &e);
    CHECK(deep != NULL);
    json_t *cur = deep;
    int levels = 0;
    while (json_is_array(cur)) {
        levels++;
        if (json_array_size(cur) == 0)
            break;
        cur = json_array_get(cur, json_array_size(cur) - 1);
    }
    CHECK_EQ_INT(levels, SC_JW_MAX_DEPTH - 1);
    json_decref(deep);
    sc_buf_free(&d);
}

static void test_numbers(void)
{
    sc_buf b = {0};
    sc_jw w;
    sc_jw_init(&w, &b);
    sc_jw_arr_begin(&w);
    sc_jw_int(&w, INT64_MIN);
    sc_jw_int(&w, INT64_MAX);
    sc_jw_int(&w, 0);
    sc_jw_uint(&w, UINT64_MAX);
    sc_jw_double(&w, 0.5);
    sc_jw_double(&w, -1e300);
    sc_jw_double(&w, NAN);
    sc_jw_double(&w, INFINITY);
    sc_jw_double(&w, 3.0);
    sc_jw_arr_end(&w);
    CHECK_EQ_SLICE(b, "[-9223372036854775808,9223372036854775807,0,18446744073709551615,0.5,"
                      "-1.0000000000000001e+300,null,null,3]");

    /* jansson reads int64 but not UINT64_MAX: round-trip the rest. */
    sc_buf r = {0};
    sc_jw_init(&w, &r);
    sc_jw_arr_begin(&w);
    sc_jw_int(&w, INT64_MIN);
    sc_jw_int(&w, INT64_MAX);
    sc_jw_double(&w, 0.1);
    sc_jw_double(&w, 123456.789e-3);
    sc_jw_double(&w, NAN);
    sc_jw_arr_end(&w);
    ROUND_TRIP(&r, json_pack("[I,I,f,f,n]", (json_int_t)INT64_MIN, (json_int_t)INT64_MAX, 0.1, 123456.789e-3));
    sc_buf_free(&r);
    sc_buf_free(&b);
}

static void test_escaping(void)
{
    CHECK_EQ_STR(ESC("plain"), "\"plain\"");
    CHECK_EQ_STR(ESC(""), "\"\"");
    CHECK_EQ_STR(ESC("say \"hi\""), "\"say \\\"hi\\\"\"");
    CHECK_EQ_STR(ESC("back\\slash"), "\"back\\\\slash\"");
    CHECK_EQ_STR(ESC("a\nb\rc\td"), "\"a\\nb\\rc\\td\"");
    CHECK_EQ_STR(ESC("\x01\x1f\b\f"), "\"\\u0001\\u001f\\u0008\\u000c\"");
    CHECK_EQ_STR(ESC("nul\0byte"), "\"nul\\u0000byte\"");
    CHECK_EQ_STR(ESC("/slash is fine/"), "\"/slash is fine/\"");
    CHECK_EQ_STR(ESC("\x7f"), "\"\x7f\""); /* DEL is allowed raw in JSON */
    CHECK_EQ_STR(ESC("\"\\\"\\"), "\"\\\"\\\\\\\"\\\\\"");

    /* Keys are escaped as well. */
    sc_buf b = {0};
    sc_jw w;
    sc_jw_init(&w, &b);
    sc_jw_obj_begin(&w);
    sc_jw_key(&w, "k\"e\\y\n");
    sc_jw_cstr(&w, "v");
    sc_jw_obj_end(&w);
    CHECK_EQ_SLICE(b, "{\"k\\\"e\\\\y\\n\":\"v\"}");
    ROUND_TRIP(&b, json_pack("{s:s}", "k\"e\\y\n", "v"));
    sc_buf_free(&b);

    /* sc_json_escape alone writes no quotes. */
    sc_buf e = {0};
    sc_json_escape(&e, SC_SLICE_LIT("a\"b"));
    CHECK_EQ_SLICE(e, "a\\\"b");
    sc_buf_free(&e);

    /* Every byte 0..127 survives a round trip. */
    char all[128];
    for (int i = 0; i < 128; i++)
        all[i] = (char)i;
    sc_buf a = {0};
    sc_jw_init(&w, &a);
    sc_jw_str(&w, (sc_slice){all, sizeof(all)});
    ROUND_TRIP(&a, json_stringn(all, sizeof(all)));
    sc_buf_free(&a);
}

static void test_utf8(void)
{
    /* Valid multibyte sequences are kept as they are: 2, 3 and 4 bytes, and the edges of each range. */
    CHECK_EQ_STR(ESC("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
    CHECK_EQ_STR(ESC("\xe2\x82\xac"), "\"\xe2\x82\xac\"");         /* U+20AC */
    CHECK_EQ_STR(ESC("\xf0\x9f\x8e\xb5"), "\"\xf0\x9f\x8e\xb5\""); /* U+1F3B5 */
    CHECK_EQ_STR(ESC("\xc2\x80"), "\"\xc2\x80\"");                 /* U+0080 */
    CHECK_EQ_STR(ESC("\xdf\xbf"), "\"\xdf\xbf\"");                 /* U+07FF */
    CHECK_EQ_STR(ESC("\xe0\xa0\x80"), "\"\xe0\xa0\x80\"");         /* U+0800 */
    CHECK_EQ_STR(ESC("\xed\x9f\xbf"), "\"\xed\x9f\xbf\"");         /* U+D7FF */
    CHECK_EQ_STR(ESC("\xee\x80\x80"), "\"\xee\x80\x80\"");         /* U+E000 */
    CHECK_EQ_STR(ESC("\xef\xbf\xbf"), "\"\xef\xbf\xbf\"");         /* U+FFFF */
    CHECK_EQ_STR(ESC("\xf0\x90\x80\x80"), "\"\xf0\x90\x80\x80\""); /* U+10000 */
    CHECK_EQ_STR(ESC("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */

#define FFFD "\xef\xbf\xbd"
    /* Invalid bytes become U+FFFD, one per byte, and the text around them is kept. */
    CHECK_EQ_STR(ESC("a\xff"
                     "b"),
                 "\"a" FFFD "b\"");
    CHECK_EQ_STR(ESC("\x80"), "\"" FFFD "\"");          /* lone continuation */
    CHECK_EQ_STR(ESC("\xc3"), "\"" FFFD "\"");          /* truncated at the end */
    CHECK_EQ_STR(ESC("\xc3z"), "\"" FFFD "z\"");        /* truncated by ASCII */
    CHECK_EQ_STR(ESC("\xe2\x82"), "\"" FFFD FFFD "\""); /* truncated 3-byte */
    CHECK_EQ_STR(ESC("\xc0\xaf"), "\"" FFFD FFFD "\""); /* overlong '/' */
    CHECK_EQ_STR(ESC("\xc1\xbf"), "\"" FFFD FFFD "\"");
    CHECK_EQ_STR(ESC("\xe0\x80\xaf"), "\"" FFFD FFFD FFFD "\"");          /* overlong 3-byte */
    CHECK_EQ_STR(ESC("\xf0\x80\x80\xaf"), "\"" FFFD FFFD FFFD FFFD "\""); /* overlong 4-byte */
    CHECK_EQ_STR(ESC("\xed\xa0\x80"), "\"" FFFD FFFD FFFD "\"");          /* U+D800, a surrogate */
    CHECK_EQ_STR(ESC("\xed\xbf\xbf"), "\"" FFFD FFFD FFFD "\"");          /* U+DFFF */
    CHECK_EQ_STR(ESC("\xf4\x90\x80\x80"), "\"" FFFD FFFD FFFD FFFD "\""); /* above U+10FFFF */
    CHECK_EQ_STR(ESC("\xf5\x80\x80\x80"), "\"" FFFD FFFD FFFD FFFD "\"");
    CHECK_EQ_STR(ESC("\xfe\xff"), "\"" FFFD FFFD "\"");
    CHECK_EQ_STR(ESC("\xe2\x28\xa1"), "\"" FFFD "(" FFFD "\""); /* bad second byte */
    CHECK_EQ_STR(ESC("\xe2\x82\x28"), "\"" FFFD FFFD "(\"");    /* bad third byte */
    CHECK_EQ_STR(ESC("ok\xc3\xa9\xff\xe2\x82\xac\""), "\"ok\xc3\xa9" FFFD "\xe2\x82\xac\\\"\"");

    /* Round trip: mixed valid and invalid bytes parse back to the repaired string. */
    static const char mixed[] = "\xf0\x9f\x8e\xb5 \xff\"\x01\xed\xa0\x80x";
    sc_buf b = {0};
    sc_jw w;
    sc_jw_init(&w, &b);
    sc_jw_obj_begin(&w);
    sc_jw_key(&w, "\xc3\xa9t\xc3\xa9");
    sc_jw_str(&w, (sc_slice){mixed, sizeof(mixed) - 1});
    sc_jw_obj_end(&w);
    ROUND_TRIP(&b, json_pack("{s:s}", "\xc3\xa9t\xc3\xa9", "\xf0\x9f\x8e\xb5 " FFFD "\"\x01" FFFD FFFD FFFD "x"));
    sc_buf_free(&b);
#undef FFFD

    /* Every byte 128..255 alone: always valid JSON, always U+FFFD. */
    int bad = 0;
    for (int c = 0x80; c <= 0xff; c++) {
        char in = (char)c;
        bad += strcmp(escaped(&in, 1), "\"\xef\xbf\xbd\"") != 0;
    }
    CHECK_EQ_INT(bad, 0);

    /* Every 2-byte sequence: the output is valid JSON (jansson rejects invalid UTF-8). */
    bad = 0;
    for (int c1 = 0; c1 < 256; c1++) {
        for (int c2 = 0; c2 < 256; c2++) {
            char in[2] = {(char)c1, (char)c2};
            sc_buf o = {0};
            sc_jw_init(&w, &o);
            sc_jw_str(&w, (sc_slice){in, 2});
            json_error_t e;
            json_t *j = json_loadb(o.ptr, o.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
            bad += j == NULL;
            json_decref(j);
            sc_buf_free(&o);
        }
    }
    CHECK_EQ_INT(bad, 0);
}

/* An empty slice with a NULL pointer (what sc_slice_cstr(NULL), SC_SLICE_NULL and absent optional fields give) is
 * an empty string. Last, because pointer arithmetic on NULL would stop the program under UBSan. */
static void test_null_slice(void)
{
    sc_buf e = {0};
    sc_json_escape(&e, SC_SLICE_LIT("x"));
    sc_json_escape(&e, SC_SLICE_NULL);
    CHECK_EQ_SLICE(e, "x");
    sc_jw w;
    sc_jw_init(&w, &e);
    sc_jw_str(&w, SC_SLICE_NULL);
    CHECK_EQ_SLICE(e, "x\"\"");
    sc_buf_free(&e);
}

int main(void)
{
    test_nesting();
    test_numbers();
    test_escaping();
    test_utf8();
    test_null_slice();
    return check_report();
}
