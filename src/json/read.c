#include "json/read.h"

#include <stdio.h>
#include <string.h>

static void release(void *data) { json_decref(data); }

static void fail(sc_jr *jr, const char *fmt, const char *key)
{
    if (jr->error)
        return;
    char msg[160];
    snprintf(msg, sizeof(msg), fmt, key);
    jr->error = sc_arena_strndup(jr->arena, msg, strlen(msg));
}

void sc_jr_begin(sc_jr *jr, sc_arena *arena, sc_slice body)
{
    jr->arena = arena;
    jr->root = NULL;
    jr->error = NULL;
    json_error_t err;
    json_t *root;
    if (body.len == 0)
        root = json_object();
    else
        root = json_loadb(body.ptr, body.len, JSON_DECODE_ANY, &err);
    if (!root) {
        jr->error = "request body is not valid JSON";
        return;
    }
    sc_arena_defer(arena, release, root);
    if (!json_is_object(root)) {
        jr->error = "request body must be a JSON object";
        return;
    }
    jr->root = root;
}

bool sc_jr_failed(const sc_jr *jr) { return jr->error != NULL; }

static json_t *field(sc_jr *jr, const char *key, int required)
{
    if (jr->error || !jr->root)
        return NULL;
    json_t *v = json_object_get(jr->root, key);
    if (json_is_null(v))
        v = NULL;
    if (!v && required)
        fail(jr, "%s is required", key);
    return v;
}

sc_slice sc_jr_str(sc_jr *jr, const char *key, int required)
{
    json_t *v = field(jr, key, required);
    if (!v)
        return SC_SLICE_NULL;
    if (!json_is_string(v)) {
        fail(jr, "%s must be a string", key);
        return SC_SLICE_NULL;
    }
    return (sc_slice){json_string_value(v), json_string_length(v)};
}

int64_t sc_jr_int(sc_jr *jr, const char *key, int required, bool *present)
{
    json_t *v = field(jr, key, required);
    if (present)
        *present = false;
    if (!v)
        return 0;
    if (!json_is_integer(v)) {
        fail(jr, "%s must be an integer", key);
        return 0;
    }
    if (present)
        *present = true;
    return (int64_t)json_integer_value(v);
}

bool sc_jr_bool(sc_jr *jr, const char *key, int required, bool *present)
{
    json_t *v = field(jr, key, required);
    if (present)
        *present = false;
    if (!v)
        return false;
    if (!json_is_boolean(v)) {
        fail(jr, "%s must be a boolean", key);
        return false;
    }
    if (present)
        *present = true;
    return json_is_true(v);
}

json_t *sc_jr_value(sc_jr *jr, const char *key, int required) { return field(jr, key, required); }
