/* The JSON body reader (json/read.c): an empty body as an empty object, bodies that are not JSON or not an object,
 * required and optional fields of each type, JSON null as absent, mistyped fields, the first error kept, and the
 * parsed document released when the arena is reset. jansson allocates through counting functions here, so that a
 * document the arena does not release shows up as live allocations. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/arena.h"
#include "json/read.h"

static long live_allocations;

static void *counting_malloc(size_t n)
{
    void *p = malloc(n);
    if (p)
        live_allocations++;
    return p;
}

static void counting_free(void *p)
{
    if (p)
        live_allocations--;
    free(p);
}

static sc_arena arena;

/* Starts a reader on text (a C string; NULL for an empty body) in the test's arena. */
static void begin(sc_jr *jr, const char *text)
{
    sc_jr_begin(jr, &arena, text ? sc_slice_cstr(text) : SC_SLICE_NULL);
}

static void test_empty_body_is_an_empty_object(void)
{
    sc_jr jr;
    begin(&jr, NULL);
    CHECK(!sc_jr_failed(&jr));
    CHECK(jr.error == NULL);
    CHECK(json_is_object(jr.root));
    CHECK_EQ_UINT(json_object_size(jr.root), 0);
    /* Optional fields are simply absent; a required one is the error. */
    sc_slice s = sc_jr_str(&jr, "name", SC_JR_OPTIONAL);
    CHECK(s.ptr == NULL);
    CHECK_EQ_UINT(s.len, 0);
    CHECK(!sc_jr_failed(&jr));
    sc_jr_int(&jr, "year", SC_JR_REQUIRED, NULL);
    CHECK(sc_jr_failed(&jr));
    CHECK_EQ_STR(jr.error, "year is required");

    /* An empty slice with a pointer is empty too. */
    sc_jr_begin(&jr, &arena, (sc_slice){"", 0});
    CHECK(!sc_jr_failed(&jr));
    CHECK(json_is_object(jr.root));
    sc_arena_reset(&arena);
}

static void test_not_json(void)
{
    static const char *const bodies[] = {"{", "{\"a\":1", "nope", "{\"a\":1} trailing", "{'a':1}", "{\"a\":}", " ",
                                         "\xff\xfe", "{\"a\":\"\xc3\"}",
                                         /* \u0000 in a string is refused (jansson without JSON_ALLOW_NUL) */
                                         "{\"a\":\"x\\u0000y\"}"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        sc_jr jr;
        begin(&jr, bodies[i]);
        CHECK(sc_jr_failed(&jr));
        CHECK_EQ_STR(jr.error, "request body is not valid JSON");
        CHECK(jr.root == NULL);
        /* Accessors after the error give empty values and keep the message. */
        sc_slice s = sc_jr_str(&jr, "a", SC_JR_REQUIRED);
        CHECK(s.ptr == NULL);
        bool present = true;
        CHECK_EQ_INT(sc_jr_int(&jr, "a", SC_JR_REQUIRED, &present), 0);
        CHECK(!present);
        CHECK_EQ_STR(jr.error, "request body is not valid JSON");
    }
    /* A NUL inside the body is not JSON either (the body is bytes, not a C string). */
    sc_jr jr;
    sc_jr_begin(&jr, &arena, (sc_slice){"{}\0{}", 5});
    CHECK_EQ_STR(jr.error, "request body is not valid JSON");
    sc_arena_reset(&arena);
}

static void test_not_an_object(void)
{
    static const char *const bodies[] = {"[]", "[{\"a\":1}]", "1", "\"text\"", "true", "null"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        sc_jr jr;
        begin(&jr, bodies[i]);
        CHECK(sc_jr_failed(&jr));
        CHECK_EQ_STR(jr.error, "request body must be a JSON object");
        CHECK(jr.root == NULL);
        CHECK(sc_jr_value(&jr, "a", SC_JR_OPTIONAL) == NULL);
        CHECK_EQ_STR(jr.error, "request body must be a JSON object");
    }
    sc_arena_reset(&arena);
}

static void test_fields(void)
{
    sc_jr jr;
    begin(&jr, "{\"name\":\"Blue \\u00e9\",\"year\":2024,\"neg\":-9007199254740993,\"on\":true,\"off\":false,"
               "\"tags\":[1,2],\"nothing\":null,\"empty\":\"\"}");
    CHECK(!sc_jr_failed(&jr));

    CHECK_EQ_SLICE(sc_jr_str(&jr, "name", SC_JR_REQUIRED), "Blue \xc3\xa9");
    sc_slice empty = sc_jr_str(&jr, "empty", SC_JR_REQUIRED);
    CHECK(empty.ptr != NULL); /* present but empty, unlike an absent field */
    CHECK_EQ_UINT(empty.len, 0);

    bool present = false;
    CHECK_EQ_INT(sc_jr_int(&jr, "year", SC_JR_REQUIRED, &present), 2024);
    CHECK(present);
    CHECK_EQ_INT(sc_jr_int(&jr, "neg", SC_JR_OPTIONAL, NULL), INT64_C(-9007199254740993));
    CHECK_EQ_INT(sc_jr_int(&jr, "absent", SC_JR_OPTIONAL, &present), 0);
    CHECK(!present);

    CHECK(sc_jr_bool(&jr, "on", SC_JR_REQUIRED, &present));
    CHECK(present);
    CHECK(!sc_jr_bool(&jr, "off", SC_JR_REQUIRED, &present));
    CHECK(present);
    CHECK(!sc_jr_bool(&jr, "absent", SC_JR_OPTIONAL, &present));
    CHECK(!present);

    json_t *tags = sc_jr_value(&jr, "tags", SC_JR_REQUIRED);
    CHECK(json_is_array(tags));
    CHECK_EQ_UINT(json_array_size(tags), 2);
    CHECK(sc_jr_value(&jr, "absent", SC_JR_OPTIONAL) == NULL);

    /* JSON null counts as absent: fine when optional, for every accessor. */
    sc_slice s = sc_jr_str(&jr, "nothing", SC_JR_OPTIONAL);
    CHECK(s.ptr == NULL);
    CHECK_EQ_INT(sc_jr_int(&jr, "nothing", SC_JR_OPTIONAL, &present), 0);
    CHECK(!present);
    CHECK(!sc_jr_bool(&jr, "nothing", SC_JR_OPTIONAL, &present));
    CHECK(!present);
    CHECK(sc_jr_value(&jr, "nothing", SC_JR_OPTIONAL) == NULL);
    CHECK(!sc_jr_failed(&jr));

    /* ... and missing when required. */
    sc_jr_str(&jr, "nothing", SC_JR_REQUIRED);
    CHECK_EQ_STR(jr.error, "nothing is required");
    sc_arena_reset(&arena);

    /* Keys are matched exactly. */
    begin(&jr, "{\"Name\":\"x\"}");
    sc_jr_str(&jr, "name", SC_JR_REQUIRED);
    CHECK_EQ_STR(jr.error, "name is required");
    sc_arena_reset(&arena);
}

static void test_wrong_types(void)
{
    static const struct {
        const char *body;
        char accessor; /* s(tring), i(nteger), b(oolean) */
        const char *error;
    } cases[] = {
        {"{\"f\":1}", 's', "f must be a string"},        {"{\"f\":true}", 's', "f must be a string"},
        {"{\"f\":[\"x\"]}", 's', "f must be a string"},  {"{\"f\":{}}", 's', "f must be a string"},
        {"{\"f\":\"1\"}", 'i', "f must be an integer"},  {"{\"f\":1.5}", 'i', "f must be an integer"},
        {"{\"f\":2024.0}", 'i', "f must be an integer"}, {"{\"f\":1e3}", 'i', "f must be an integer"},
        {"{\"f\":false}", 'i', "f must be an integer"},  {"{\"f\":\"true\"}", 'b', "f must be a boolean"},
        {"{\"f\":1}", 'b', "f must be a boolean"},       {"{\"f\":0}", 'b', "f must be a boolean"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int required = SC_JR_OPTIONAL; required <= SC_JR_REQUIRED; required++) {
            sc_jr jr;
            begin(&jr, cases[i].body);
            CHECK(!sc_jr_failed(&jr));
            bool present = true;
            if (cases[i].accessor == 's') {
                sc_slice s = sc_jr_str(&jr, "f", required);
                CHECK(s.ptr == NULL);
            } else if (cases[i].accessor == 'i') {
                CHECK_EQ_INT(sc_jr_int(&jr, "f", required, &present), 0);
                CHECK(!present);
            } else {
                CHECK(!sc_jr_bool(&jr, "f", required, &present));
                CHECK(!present);
            }
            if (!CHECK(sc_jr_failed(&jr)))
                fprintf(stderr, "  body %s, accessor %c\n", cases[i].body, cases[i].accessor);
            CHECK_EQ_STR(jr.error, cases[i].error);
        }
    }
    sc_arena_reset(&arena);
}

static void test_first_error_is_kept(void)
{
    sc_jr jr;
    begin(&jr, "{\"name\":5,\"year\":\"x\",\"ok\":\"fine\"}");
    sc_jr_str(&jr, "name", SC_JR_REQUIRED);
    sc_jr_int(&jr, "year", SC_JR_REQUIRED, NULL);
    sc_jr_str(&jr, "missing", SC_JR_REQUIRED);
    CHECK_EQ_STR(jr.error, "name must be a string");
    /* After the error even valid fields read as empty. */
    sc_slice ok = sc_jr_str(&jr, "ok", SC_JR_REQUIRED);
    CHECK(ok.ptr == NULL);
    CHECK(sc_jr_value(&jr, "ok", SC_JR_REQUIRED) == NULL);
    CHECK_EQ_STR(jr.error, "name must be a string");
    sc_arena_reset(&arena);

    /* A missing required field first, then a mistyped one. */
    begin(&jr, "{\"year\":\"x\"}");
    sc_jr_str(&jr, "title", SC_JR_REQUIRED);
    sc_jr_int(&jr, "year", SC_JR_REQUIRED, NULL);
    CHECK_EQ_STR(jr.error, "title is required");
    sc_arena_reset(&arena);

    /* A long key is cut in the message, not overflowing it. */
    char body[600], key[400];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    snprintf(body, sizeof(body), "{\"%s\":1}", key);
    begin(&jr, body);
    sc_jr_str(&jr, key, SC_JR_REQUIRED);
    CHECK(jr.error != NULL && strlen(jr.error) < 160);
    CHECK(jr.error != NULL && strncmp(jr.error, "kkkk", 4) == 0);
    sc_arena_reset(&arena);
}

static void test_document_released_on_reset(void)
{
    long before = live_allocations;
    sc_jr jr;
    begin(&jr, "{\"name\":\"a string long enough to be allocated on its own\",\"list\":[1,2,3,{\"x\":[]}]}");
    CHECK(!sc_jr_failed(&jr));
    CHECK(live_allocations > before);
    /* The strings it hands out stay valid until the reset. */
    sc_slice name = sc_jr_str(&jr, "name", SC_JR_REQUIRED);
    CHECK_EQ_SLICE(name, "a string long enough to be allocated on its own");
    sc_arena_reset(&arena);
    CHECK_EQ_INT(live_allocations, before);

    /* A document that is JSON but not an object is released too, and so is the empty body's object. */
    begin(&jr, "[1,2,{\"a\":\"b\"}]");
    CHECK(sc_jr_failed(&jr));
    CHECK(live_allocations > before);
    sc_arena_reset(&arena);
    CHECK_EQ_INT(live_allocations, before);
    begin(&jr, NULL);
    sc_arena_reset(&arena);
    CHECK_EQ_INT(live_allocations, before);

    /* Several readers on one arena: all released by the one reset. */
    for (int i = 0; i < 5; i++)
        begin(&jr, "{\"a\":{\"b\":{\"c\":[true,false,null]}}}");
    CHECK(live_allocations > before);
    sc_arena_reset(&arena);
    CHECK_EQ_INT(live_allocations, before);

    /* The document is held only by the arena: one more reference outlives the reset. */
    begin(&jr, "{\"k\":\"v\"}");
    json_t *root = json_incref(jr.root);
    sc_arena_reset(&arena);
    CHECK_EQ_UINT(root->refcount, 1);
    CHECK_EQ_STR(json_string_value(json_object_get(root, "k")), "v");
    json_decref(root);
    CHECK_EQ_INT(live_allocations, before);
}

int main(void)
{
    json_set_alloc_funcs(counting_malloc, counting_free);
    test_empty_body_is_an_empty_object();
    test_not_json();
    test_not_an_object();
    test_fields();
    test_wrong_types();
    test_first_error_is_kept();
    test_document_released_on_reset();
    sc_arena_reset(&arena);
    sc_arena_pool_drain();
    return check_report();
}
