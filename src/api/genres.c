/* Genres: the list and its management (routes and SQL in api/genres.h).
 *
 * GET /genres is cached in Redis (cache-aside, 10 minutes). A generation counter closes the race between a reader
 * that filled the cache from the database and a writer that committed and invalidated in between: the reader
 * notes the generation before it reads the database and stores its result only if the generation is unchanged,
 * and writers bump the generation when they delete the cached copy (sc_api_invalidate_genres_then_finish).
 * Without Redis every read goes to the database. */
#include "api/genres.h"

#include <string.h>

#include "api/api.h"
#include "api/cache_keys.h"
#include "api/catalog.h"
#include "api/db.h"
#include "api/respond.h"
#include "core/random.h"
#include "json/read.h"

#define GENRES_TTL_S "600"

/* KEYS[1] cache, KEYS[2] generation; ARGV[1] value, ARGV[2] generation seen before the read, ARGV[3] ttl. */
static const char genres_fill_script[] = "if (redis.call('GET', KEYS[2]) or '') == ARGV[2] then "
                                         "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3]) end return 0";

/* State of GET /genres across the cache read and the database (req->state). */
typedef struct genres_read {
    sc_req *req;
    sc_redis_cmd *cmd;      /* the cache read, until it answers */
    const char *generation; /* seen before reading the database; NULL: do not fill */
} genres_read;

static void on_request_gone(void *data)
{
    genres_read *ctx = data;
    sc_redis_cancel(ctx->cmd);
    ctx->cmd = NULL;
}

static void on_genres_read(sc_req *req, const char *err, PGresult *res)
{
    genres_read *ctx = req->state;
    if (sc_api_db_failed(req, err, res))
        return;
    const char *json = PQgetvalue(res, 0, 0);
    if (ctx->generation) {
        const char *argv[] = {"EVAL", genres_fill_script, "2",         SC_API_KEY_GENRES, SC_API_KEY_GENRES_GEN,
                              json,   ctx->generation,    GENRES_TTL_S};
        size_t lens[8];
        for (int i = 0; i < 8; i++)
            lens[i] = strlen(argv[i]);
        sc_redis_command(sc_api_app(req)->redis, NULL, NULL, 8, argv, lens); /* best effort */
    }
    sc_req_finish(req, sc_api_data_raw(req, 200, "genres", sc_slice_cstr(json)));
}

static void on_genres_cached(void *data, const char *err, redisReply *r)
{
    genres_read *ctx = data;
    sc_req *req = ctx->req;
    ctx->cmd = NULL;
    if (!err && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        redisReply *v = r->element[0], *gen = r->element[1];
        if (v->type == REDIS_REPLY_STRING && v->len > 0 && v->str[0] == '[') {
            sc_res_header(req, "X-Data-Source", SC_SLICE_LIT("cache"));
            sc_req_finish(req, sc_api_data_raw(req, 200, "genres", (sc_slice){v->str, v->len}));
            return;
        }
        ctx->generation = gen->type == REDIS_REPLY_STRING ? sc_api_dup(req, (sc_slice){gen->str, gen->len}) : "";
    }
    sc_api_db(req, SC_STMT_GENRE_LIST, 0, NULL, on_genres_read);
}

int sc_api_genres_list(sc_req *req)
{
    genres_read *ctx = sc_api_state_new(req, sizeof(*ctx), on_request_gone);
    ctx->req = req;
    const char *argv[] = {"MGET", SC_API_KEY_GENRES, SC_API_KEY_GENRES_GEN};
    size_t lens[] = {4, sizeof(SC_API_KEY_GENRES) - 1, sizeof(SC_API_KEY_GENRES_GEN) - 1};
    ctx->cmd = sc_redis_command(sc_api_app(req)->redis, on_genres_cached, ctx, 3, argv, lens);
    return SC_ASYNC;
}

static void on_genre_inserted(sc_req *req, const char *err, PGresult *res)
{
    if (sc_api_db_sqlstate(err, res, "23505"))
        sc_api_finish_error(req, 400, "a genre with this name already exists");
    else if (err)
        sc_api_db_finish_error(req, err, res);
    else
        sc_api_invalidate_genres_then_finish(req, sc_api_data_str(req, 201, "genre added", "genreId", req->state));
}

int sc_api_genres_create(sc_req *req)
{
    sc_jr jr = sc_api_json_begin(req);
    sc_slice name = sc_jr_str(&jr, "name", SC_JR_REQUIRED);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    const char *problem = sc_api_catalog_text_problem(req, "name", name);
    if (problem)
        return sc_res_error(req, 400, problem);
    char id[48];
    sc_random_id("genre", id, sizeof(id));
    req->state = sc_arena_strndup(req->arena, id, strlen(id)); /* the new genre's id, for the answer */
    SC_API_DB(req, SC_STMT_GENRE_INSERT, on_genre_inserted, req->state, sc_api_dup(req, name));
    return SC_ASYNC;
}

static void on_genre_deleted(sc_req *req, const char *err, PGresult *res)
{
    int st = sc_api_db_changed(req, err, res, "genre not found");
    if (st)
        sc_req_finish(req, st);
    else
        sc_api_invalidate_genres_then_finish(req, sc_api_message(req, 200, "genre deleted"));
}

int sc_api_genres_delete(sc_req *req)
{
    int st = sc_api_catalog_empty_body(req);
    if (st)
        return st;
    sc_slice id = sc_req_param(req, "id");
    if (!sc_api_plausible_id(id))
        return sc_res_error(req, 404, "genre not found");
    SC_API_DB(req, SC_STMT_GENRE_DELETE, on_genre_deleted, sc_api_dup(req, id));
    return SC_ASYNC;
}
