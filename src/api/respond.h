/* The API's answers: the success envelope {"status":"success","message"?,"data"?}, the error envelope, reading a
 * JSON body, and what requests of every resource check the same way (ids, paging, the public base URL). */
#ifndef SC_API_RESPOND_H
#define SC_API_RESPOND_H

#include <stdint.h>

#include "http/request.h"
#include "json/read.h"
#include "json/write.h"

/* The API's error envelope, {"status": "fail" (4xx) | "error" (5xx), "message": ...}: the server's
 * sc_error_body_fn, so that errors the HTTP layer answers by itself (431, 413, 408...) look like the handlers'. */
const char *sc_api_error_body(sc_buf *out, int status, const char *message);

/* Reads the request body as a JSON object (json/read.h) and returns the reader, begun (a value of three pointers,
 * for the handler's stack); the document lives as long as the request. A non-empty body whose Content-Type is not
 * application/json (parameters allowed, any case) is not read: the reader fails with an error that
 * sc_api_json_error answers with 415. An empty body is an empty object, whatever its type. */
sc_jr sc_api_json_begin(sc_req *req);
/* Answers the reader's first error: 415 for a body that is not application/json, else 400; returns the status. */
int sc_api_json_error(sc_req *req, const sc_jr *jr);

/* Starts a success body; returns a writer positioned inside the top-level object (after "status"). */
sc_jw *sc_api_begin(sc_req *req);
/* Closes the top-level object; returns status. */
int sc_api_end(sc_jw *w, int status);
/* {"status":"success","message":msg} */
int sc_api_message(sc_req *req, int status, const char *msg);
/* {"status":"success","message":msg,"data":{key:value}} (msg may be NULL) */
int sc_api_data_str(sc_req *req, int status, const char *msg, const char *key, const char *value);
/* {"status":"success","data":{key:<json>}}, or {"status":"success","data":<json>} when key is NULL: json is
 * already JSON (the database built it) and goes in as it is. Returns status. */
int sc_api_data_raw(sc_req *req, int status, const char *key, sc_slice json);

/* Finishes an asynchronous request with the error envelope (message NULL: the status' default message). */
void sc_api_finish_error(sc_req *req, int status, const char *message);
/* Answers status (429 or 503) with Retry-After: seconds and the message, and returns status. */
int sc_api_retry_later(sc_req *req, int status, uint64_t seconds, const char *message);
/* Finishes a request whose password hash or verification could not be queued (sc_password_* returned NULL):
 * 503 with Retry-After. */
void sc_api_finish_password_busy(sc_req *req);

/* Zeroed per-request state of size bytes in the request's arena, made the request's state (req->state), with
 * on_gone (may be NULL) registered to run when the request ends, to stop whatever the state still waits for. */
void *sc_api_state_new(sc_req *req, size_t size, void (*on_gone)(void *state));

/* The base of the absolute URLs the server hands out (coverUrl, stream URLs): STACCATO_PUBLIC_URL without a
 * trailing slash, else http:// or https:// (as the request came) and the Host header with its port, or localhost
 * when the Host header is not a valid host (http/host.h) or not one of STACCATO_ALLOWED_HOSTS. Allocated in the
 * request's arena. */
const char *sc_api_base_url(sc_req *req);

/* Ids are made by sc_random_id: letters, digits, '-' and '_'. Anything else, or longer, names nothing, so it is
 * answered 404 without a query (and never reaches a SQL parameter or a cache key). */
#define SC_API_MAX_ID_LEN 128
bool sc_api_plausible_id(sc_slice id);
/* An id as a query parameter where the query itself decides "not found": the id copied into the arena, or NULL
 * (SQL NULL, which matches no row) when it holds a byte outside printable ASCII without space (a NUL libpq would
 * cut the value at, bytes PostgreSQL would refuse as text). A NULL slice gives NULL. */
const char *sc_api_id_or_null(sc_req *req, sc_slice id);
/* A copy of s in the request's arena, or NULL when s.ptr is NULL (an absent optional field). */
const char *sc_api_dup(sc_req *req, sc_slice s);

/* A page of a list: ?page= and ?limit=, and the limit, the offset and the count's cap as the text parameters of
 * its statement. The cap is the number of rows paging with this limit can reach, (STACCATO_MAX_LIST_OFFSET /
 * limit + 1) * limit: the statement counts at most that many, so a total is exact below it and, for a longer
 * list, says as many pages as can be asked for. */
typedef struct sc_page {
    uint64_t page, limit, offset, count_cap;
    char limit_str[24], offset_str[24], count_cap_str[24];
} sc_page;

/* Reads ?page= (from 1) and ?limit= (default 100, at most 1000); an offset past STACCATO_MAX_LIST_OFFSET is a 400
 * that says to narrow the search. Returns 0, or answers 400 and returns it. */
int sc_api_page(sc_req *req, sc_page *out);
/* Sets X-Total-Count: the length of the whole list, whatever the page. */
void sc_api_total(sc_req *req, uint64_t total);

#endif
