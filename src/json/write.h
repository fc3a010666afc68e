/* A streaming JSON writer into an sc_buf: commas and nesting are tracked, strings are escaped, and invalid UTF-8
 * is replaced by U+FFFD so that the output is always valid JSON whatever bytes a string holds. */
#ifndef SC_JSON_WRITE_H
#define SC_JSON_WRITE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/slice.h"

#define SC_JW_MAX_DEPTH 32

typedef struct sc_jw {
    sc_buf *out;
    int depth;
    bool need_comma[SC_JW_MAX_DEPTH];
    bool after_key;
} sc_jw;

void sc_jw_init(sc_jw *w, sc_buf *out);
void sc_jw_obj_begin(sc_jw *w);
void sc_jw_obj_end(sc_jw *w);
void sc_jw_arr_begin(sc_jw *w);
void sc_jw_arr_end(sc_jw *w);
/* An object key; the next value call writes its value. */
void sc_jw_key(sc_jw *w, const char *key);
void sc_jw_str(sc_jw *w, sc_slice s);
void sc_jw_cstr(sc_jw *w, const char *s);
void sc_jw_int(sc_jw *w, int64_t v);
void sc_jw_uint(sc_jw *w, uint64_t v);
void sc_jw_double(sc_jw *w, double v);
void sc_jw_bool(sc_jw *w, bool v);
void sc_jw_null(sc_jw *w);
/* Inserts text that is already JSON (e.g. built by the database) as one value. */
void sc_jw_raw(sc_jw *w, sc_slice json);
/* Appends s escaped as the inside of a JSON string (no quotes). */
void sc_json_escape(sc_buf *out, sc_slice s);

#endif
