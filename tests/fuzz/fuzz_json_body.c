/* libFuzzer driver: a request body through the JSON reader (sc_jr_*) and the same bytes through the JSON string
 * escaper (sc_jw_str / sc_json_escape).
 *
 * Invariants checked (abort on violation):
 *  - the reader agrees with jansson about the body: not JSON, not an object, and the type and value of each
 *    field it is asked for;
 *  - the API's error envelope (sc_api_error_body) carries the reader's error as its message, with status "fail";
 *  - sc_jw_str output is always valid JSON, and when the input is valid UTF-8 it decodes back to exactly the
 * input.
 *
 * The reader needs only the bytes and an arena: no request. The document it parses is released when the arena is
 * reset; jansson allocates through a tracking allocator so that anything left behind is caught. */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/respond.h"
#include "core/arena.h"
#include "core/buf.h"
#include "json/read.h"
#include "json/write.h"

#define FAIL(...)                                                                                                 \
    do {                                                                                                          \
        fprintf(stderr, "fuzz_json_body: " __VA_ARGS__);                                                          \
        fputc('\n', stderr);                                                                                      \
        abort();                                                                                                  \
    } while (0)

/* ---- jansson allocations, tracked so that a document nobody can decref can still be released -------------- */

typedef union tracked {
    struct {
        union tracked *prev, *next;
    } link;
    max_align_t align;
} tracked;

static tracked live = {.link = {&live, &live}};

static void *track_malloc(size_t n)
{
    tracked *t = malloc(sizeof(*t) + n);
    if (!t)
        return NULL;
    t->link.next = live.link.next;
    t->link.prev = &live;
    live.link.next->link.prev = t;
    live.link.next = t;
    return t + 1;
}

static void track_free(void *p)
{
    if (!p)
        return;
    tracked *t = (tracked *)p - 1;
    t->link.prev->link.next = t->link.next;
    t->link.next->link.prev = t->link.prev;
    free(t);
}

static bool jansson_holds_memory(void) { return live.link.next != &live; }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    json_set_alloc_funcs(track_malloc, track_free);
    return 0;
}

/* ---- the reader ------------------------------------------------------------------------------------------- */

static const char msg_not_json[] = "request body is not valid JSON";
static const char msg_not_object[] = "request body must be a JSON object";

/* What the reader should say about key in doc (an object): NULL when fine, else the expected message. */
static const char *expect_field(json_t *doc, const char *key, int required, int (*is_type)(const json_t *),
                                const char *type_msg, char *buf, size_t buflen)
{
    json_t *v = json_object_get(doc, key);
    if (!v || json_is_null(v)) {
        if (!required)
            return NULL;
        snprintf(buf, buflen, "%s is required", key);
        return buf;
    }
    if (is_type(v))
        return NULL;
    snprintf(buf, buflen, "%s must be %s", key, type_msg);
    return buf;
}

static int is_string(const json_t *v) { return json_is_string(v); }
static int is_integer(const json_t *v) { return json_is_integer(v); }
static int is_boolean(const json_t *v) { return json_is_boolean(v); }
static int is_any(const json_t *v) { return v != NULL; }

static void check_reader(const uint8_t *data, size_t size)
{
    sc_arena arena = {0};
    sc_buf res_body = {0};

    /* jansson's own view of the body, for comparison. */
    json_error_t jerr;
    json_t *doc = size ? json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr) : json_object();

    sc_jr jr;
    sc_jr_begin(&jr, &arena, (sc_slice){(const char *)data, size});
    /* Optional fields first, then required ones, so both kinds of miss are reached. */
    bool year_present, public_present;
    int64_t year = sc_jr_int(&jr, "year", SC_JR_OPTIONAL, &year_present);
    bool is_public = sc_jr_bool(&jr, "public", SC_JR_OPTIONAL, &public_present);
    json_t *tags = sc_jr_value(&jr, "tags", SC_JR_OPTIONAL);
    sc_slice subtitle = sc_jr_str(&jr, "subtitle", SC_JR_OPTIONAL);
    sc_slice name = sc_jr_str(&jr, "name", SC_JR_REQUIRED);
    json_t *artist = sc_jr_value(&jr, "artist", SC_JR_REQUIRED);

    /* The expected first error, walking the same calls in the same order. */
    char buf[160];
    const char *want = NULL;
    if (!doc)
        want = msg_not_json;
    else if (!json_is_object(doc))
        want = msg_not_object;
    else if ((want = expect_field(doc, "year", 0, is_integer, "an integer", buf, sizeof(buf))) ||
             (want = expect_field(doc, "public", 0, is_boolean, "a boolean", buf, sizeof(buf))) ||
             (want = expect_field(doc, "tags", 0, is_any, "", buf, sizeof(buf))) ||
             (want = expect_field(doc, "subtitle", 0, is_string, "a string", buf, sizeof(buf))) ||
             (want = expect_field(doc, "name", 1, is_string, "a string", buf, sizeof(buf))) ||
             (want = expect_field(doc, "artist", 1, is_any, "", buf, sizeof(buf)))) {
    }
    if (sc_jr_failed(&jr) != (want != NULL))
        FAIL("reader %s, jansson says %s", jr.error ? jr.error : "succeeded", want ? want : "fine");
    if (want && strcmp(jr.error, want) != 0)
        FAIL("reader error '%s', expected '%s'", jr.error, want);

    if (!want) {
        /* Every value the reader returned is the document's. */
        json_t *y = json_object_get(doc, "year");
        if (year_present != json_is_integer(y) || (year_present && year != (int64_t)json_integer_value(y)))
            FAIL("year differs");
        json_t *p = json_object_get(doc, "public");
        if (public_present != json_is_boolean(p) || (public_present && is_public != json_is_true(p)))
            FAIL("public differs");
        json_t *t = json_object_get(doc, "tags");
        if (json_is_null(t))
            t = NULL;
        if ((tags == NULL) != (t == NULL) || (tags && !json_equal(tags, t)))
            FAIL("tags differs");
        json_t *s = json_object_get(doc, "subtitle");
        if (json_is_string(s) ? !(subtitle.ptr && subtitle.len == json_string_length(s) &&
                                  memcmp(subtitle.ptr, json_string_value(s), subtitle.len) == 0)
                              : subtitle.ptr != NULL)
            FAIL("subtitle differs");
        json_t *nm = json_object_get(doc, "name");
        if (!name.ptr || name.len != json_string_length(nm) ||
            memcmp(name.ptr, json_string_value(nm), name.len) != 0)
            FAIL("name differs");
        if (!artist || !json_equal(artist, json_object_get(doc, "artist")))
            FAIL("artist differs");
    } else {
        /* After an error every accessor returns its empty value. */
        if (sc_jr_str(&jr, "name", SC_JR_REQUIRED).ptr || sc_jr_value(&jr, "artist", SC_JR_OPTIONAL) ||
            sc_jr_int(&jr, "year", SC_JR_OPTIONAL, NULL) || sc_jr_bool(&jr, "public", SC_JR_OPTIONAL, NULL))
            FAIL("accessor returned a value after an error");
        if (strcmp(jr.error, want) != 0)
            FAIL("the first error was replaced by '%s'", jr.error);
        const char *content_type = sc_api_error_body(&res_body, 400, jr.error);
        json_t *res = json_loadb(res_body.ptr, res_body.len, 0, &jerr);
        json_t *msg = json_object_get(res, "message");
        if (!res || !json_is_string(msg) || strcmp(json_string_value(msg), want) != 0 ||
            !json_is_string(json_object_get(res, "status")) ||
            strcmp(json_string_value(json_object_get(res, "status")), "fail") != 0)
            FAIL("error response %.*s", (int)res_body.len, res_body.ptr);
        if (!content_type || strncmp(content_type, "application/json", 16) != 0)
            FAIL("error response without a JSON content type");
        json_decref(res);
    }
    json_decref(doc);

    /* The arena's reset releases the document; the tracking allocator checks nothing was left behind. */
    sc_arena_reset(&arena);
    if (jansson_holds_memory())
        FAIL("jansson memory still allocated after the arena was reset");
    sc_buf_free(&res_body);
}

/* ---- the escaper ------------------------------------------------------------------------------------------ */

static void check_escape(const uint8_t *data, size_t size)
{
    sc_buf out = {0};
    sc_jw w;
    sc_jw_init(&w, &out);
    sc_jw_arr_begin(&w);
    sc_jw_str(&w, (sc_slice){(const char *)data, size});
    sc_jw_str(&w, (sc_slice){(const char *)data, size / 2}); /* a cut that may fall inside a sequence */
    sc_jw_arr_end(&w);

    json_error_t jerr;
    json_t *arr = json_loadb(out.ptr, out.len, JSON_ALLOW_NUL, &jerr);
    if (!arr || json_array_size(arr) != 2 || !json_is_string(json_array_get(arr, 0)))
        FAIL("sc_jw_str wrote invalid JSON (%s at %d): %.*s", arr ? "wrong shape" : jerr.text, jerr.position,
             (int)(out.len > 200 ? 200 : out.len), out.ptr);
    /* Valid UTF-8 comes back byte for byte (jansson's json_stringn refuses invalid UTF-8). */
    json_t *orig = json_stringn((const char *)data, size);
    if (orig && !json_equal(orig, json_array_get(arr, 0)))
        FAIL("valid UTF-8 input did not round-trip");
    /* Repair never drops bytes: each invalid byte becomes U+FFFD (three bytes), valid sequences stay. */
    if (json_string_length(json_array_get(arr, 0)) < size)
        FAIL("decoded string shorter than the input");
    json_decref(orig);
    json_decref(arr);
    sc_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_reader(data, size);
    check_escape(data, size);
    if (jansson_holds_memory())
        FAIL("jansson memory still allocated after the input");
    return 0;
}
