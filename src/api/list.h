/* Paged lists: GET /users, /songs, /playlists, /users/me/songs and /users/me/likes answer one shape,
 * {"status":"success","data":{<key>:[...]}} with X-Total-Count, from a statement whose one row is (the total,
 * the page as a JSON array) and whose parameters are the caller's (none, the id, or the id and the admin flag),
 * then the limit, the offset and the count's cap (sc_page: the total counts at most that many rows), then any
 * filters.
 *
 * Who may read a list is its route's access (api/auth.h): the caller comes from the gate (sc_api_who). A list is
 * described once, as a static sc_api_list; sc_api_list_page runs the whole endpoint from it. A list with
 * filters (GET /songs) opens with sc_api_list_begin, adds its filters with sc_api_list_param and runs with
 * sc_api_list_run. Everything lives on the handler's stack: the pool copies the parameters. */
#ifndef SC_API_LIST_H
#define SC_API_LIST_H

#include "api/auth.h"
#include "api/respond.h"
#include "http/request.h"

#define SC_API_LIST_MAX_PARAMS 10

/* The caller's parameters that open the statement's list. */
typedef enum {
    SC_API_LIST_NO_CALLER,    /* none */
    SC_API_LIST_CALLER,       /* the caller's id */
    SC_API_LIST_CALLER_ADMIN, /* the caller's id (NULL when anonymous) and sc_api_auth_admin_flag */
} sc_api_list_caller;

/* One paged list endpoint. */
typedef struct sc_api_list {
    const char *key; /* the list's name in data */
    int stmt;        /* its statement (SC_STMT_*) */
    sc_api_list_caller caller;
} sc_api_list;

/* A list request being put together. */
typedef struct sc_api_list_call {
    sc_api_principal *who; /* NULL for an anonymous caller */
    sc_page page;
    const char *params[SC_API_LIST_MAX_PARAMS];
    int nparams;
} sc_api_list_call;

/* Reads the page (400) and sets out the caller's parameters (the caller the route's gate found, sc_api_who), the
 * limit, the offset and the count's cap. Returns 0 to go on, or the status answered. */
int sc_api_list_begin(sc_req *req, const sc_api_list *list, sc_api_list_call *call);
/* Appends a parameter after the limit, the offset and the cap (a filter; at most SC_API_LIST_MAX_PARAMS in all).
 */
void sc_api_list_param(sc_api_list_call *call, const char *value);
/* Runs stmt (list->stmt, or a variant with the same columns for the filters given) with the call's parameters
 * and answers the list. Returns SC_ASYNC. */
int sc_api_list_run(sc_req *req, const sc_api_list *list, sc_api_list_call *call, int stmt);
/* The whole endpoint of a list without filters: begin, then run list->stmt. Returns a status or SC_ASYNC. */
int sc_api_list_page(sc_req *req, const sc_api_list *list);

#endif
