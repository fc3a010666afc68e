/* Reading JSON request bodies: jansson parses, and a small typed accessor layer turns missing or mistyped fields
 * into one 400 whose message names the field.
 *
 *     sc_jr jr;
 *     sc_jr_begin(&jr, arena, body);
 *     sc_slice name = sc_jr_str(&jr, "name", SC_JR_REQUIRED);
 *     int64_t year = sc_jr_int(&jr, "year", SC_JR_REQUIRED, NULL);
 *     if (sc_jr_failed(&jr))
 *         ... answer 400 with jr.error ...
 *
 * After the first error the accessors return empty values and keep that first message. The reader works on bytes
 * and an arena and knows nothing of HTTP: the parsed document and the messages live until the arena is reset. The
 * API's sc_api_json_begin and sc_api_json_error tie it to a request. */
#ifndef SC_JSON_READ_H
#define SC_JSON_READ_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/slice.h"

typedef struct sc_jr {
    sc_arena *arena;
    json_t *root;      /* the body object, or NULL after an error */
    const char *error; /* the first error, NUL-terminated; NULL while there is none */
} sc_jr;

enum { SC_JR_OPTIONAL = 0, SC_JR_REQUIRED = 1 };

/* Parses body as a JSON object. An empty body counts as an empty object, so optional-only routes (and DELETE)
 * accept no body at all. The document is released when the arena is reset. */
void sc_jr_begin(sc_jr *jr, sc_arena *arena, sc_slice body);
bool sc_jr_failed(const sc_jr *jr);

/* A string field; absent optional fields give a slice with ptr NULL. */
sc_slice sc_jr_str(sc_jr *jr, const char *key, int required);
/* An integer field; *present tells whether it was there (may be NULL). */
int64_t sc_jr_int(sc_jr *jr, const char *key, int required, bool *present);
bool sc_jr_bool(sc_jr *jr, const char *key, int required, bool *present);
/* Any JSON value (borrowed), or NULL. */
json_t *sc_jr_value(sc_jr *jr, const char *key, int required);

#endif
