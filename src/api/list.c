/* Paged lists (api/list.h): the caller, the page, the statement and the list envelope, for every list endpoint. */
#include "api/list.h"

#include <stdlib.h>

#include "api/db.h"

int sc_api_list_begin(sc_req *req, const sc_api_list *list, sc_api_list_call *call)
{
    call->who = sc_api_who(req);
    call->nparams = 0;
    int st = sc_api_page(req, &call->page);
    if (st)
        return st;
    if (list->caller != SC_API_LIST_NO_CALLER)
        call->params[call->nparams++] = call->who ? call->who->id : NULL;
    if (list->caller == SC_API_LIST_CALLER_ADMIN)
        call->params[call->nparams++] = sc_api_auth_admin_flag(call->who);
    call->params[call->nparams++] = call->page.limit_str;
    call->params[call->nparams++] = call->page.offset_str;
    call->params[call->nparams++] = call->page.count_cap_str;
    return 0;
}

void sc_api_list_param(sc_api_list_call *call, const char *value)
{
    if (call->nparams >= SC_API_LIST_MAX_PARAMS)
        abort(); /* a list's filters are code, not input */
    call->params[call->nparams++] = value;
}

/* Row: (total, the page as a JSON array). The list is the request's state: a static description. */
static void on_page(sc_req *req, const char *err, PGresult *res)
{
    const sc_api_list *list = req->state;
    if (sc_api_db_failed(req, err, res))
        return;
    if (PQntuples(res) != 1) {
        sc_api_finish_error(req, 500, NULL);
        return;
    }
    sc_api_data_raw(req, 200, list->key, sc_api_db_col(res, 1));
    sc_api_total(req, sc_api_db_count(res, 0));
    sc_req_finish(req, 200);
}

int sc_api_list_run(sc_req *req, const sc_api_list *list, sc_api_list_call *call, int stmt)
{
    req->state = (void *)list;
    sc_api_db(req, stmt, call->nparams, call->params, on_page);
    return SC_ASYNC;
}

int sc_api_list_page(sc_req *req, const sc_api_list *list)
{
    sc_api_list_call call;
    int st = sc_api_list_begin(req, list, &call);
    if (st)
        return st;
    return sc_api_list_run(req, list, &call, list->stmt);
}
