/* The PostgreSQL pool against a real database (DATABASE_URL): concurrency, error isolation inside a pipeline,
 * cancellation, deadlines, transactions, the bounded queue, an unreachable server, and a clean close. Skipped (77)
 * when DATABASE_URL is not set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "check.h"
#include "db/pg.h"

static uv_loop_t *loop;
static const char *url;

static const sc_pg_stmt stmts[] = {
    {"echo", "SELECT $1::text"},
    {"sleep", "SELECT $1::text, pg_sleep($2::float8 / 1000)"},
};

static sc_pg_pool *pool_new(const char *conninfo, unsigned size, unsigned depth, unsigned queue, uint64_t timeout)
{
    sc_pg_config cfg = {conninfo, size, queue, depth, timeout, 2000, 0};
    return sc_pg_pool_new(loop, &cfg, stmts, 2);
}

/* Runs the loop until the pool has a ready connection (or a second has passed). */
/* Waits (3 s at most) until every connection of the pool is up, so that what a test counts does not depend on
 * which connection came first. */
static bool all_ready(const sc_pg_pool *p)
{
    sc_pg_stats st;
    sc_pg_pool_stats(p, &st);
    return sc_pg_pool_ready(p) && st.connections_ready == st.connections_total;
}

static void wait_ready(sc_pg_pool *p)
{
    uint64_t until = uv_now(loop) + 3000;
    while (!all_ready(p) && uv_now(loop) < until)
        uv_run(loop, UV_RUN_ONCE); /* connection attempts keep a timer armed, so this wakes */
}

static int pending;
static void on_guard(uv_timer_t *t) { (void)t; }

/* Runs the loop until every submitted query has called back (or 10 s); a guard timer keeps the loop waking. */
static void run_until_done(void)
{
    uv_timer_t guard;
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, on_guard, 10, 10);
    uint64_t until = uv_now(loop) + 10000;
    while (pending > 0 && uv_now(loop) < until)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

typedef struct outcome {
    const char *err;
    char value[64];
    char sqlstate[8];
    int calls;
} outcome;

static void on_result(void *data, const char *err, PGresult *res)
{
    outcome *o = data;
    o->err = err;
    o->calls++;
    if (!err && res && PQntuples(res) > 0)
        snprintf(o->value, sizeof(o->value), "%s", PQgetvalue(res, 0, 0));
    if (err == SC_PG_ERR_QUERY)
        snprintf(o->sqlstate, sizeof(o->sqlstate), "%s", sc_pg_sqlstate(res));
    pending--;
}

static void test_concurrency(void)
{
    sc_pg_pool *p = pool_new(url, 2, 64, 10000, 5000);
    wait_ready(p);
    enum { N = 2000 };
    static outcome out[N];
    memset(out, 0, sizeof(out));
    for (int i = 0; i < N; i++) {
        char tag[32];
        snprintf(tag, sizeof(tag), "tag-%d", i);
        const char *params[] = {tag};
        pending++;
        sc_pg_exec(p, 0, 1, params, on_result, &out[i]);
    }
    run_until_done();
    int matched = 0;
    for (int i = 0; i < N; i++) {
        char tag[32];
        snprintf(tag, sizeof(tag), "tag-%d", i);
        matched += out[i].err == NULL && out[i].calls == 1 && strcmp(out[i].value, tag) == 0;
    }
    CHECK(matched == N);
    sc_pg_stats st;
    sc_pg_pool_stats(p, &st);
    CHECK(st.connections_ready == 2);
    CHECK(st.in_flight == 0 && st.queued == 0);
    sc_pg_pool_close(p, NULL, NULL);
}

static void test_error_isolation_and_cancel(void)
{
    sc_pg_pool *p = pool_new(url, 1, 64, 100, 5000);
    wait_ready(p);
    outcome a = {0}, b = {0}, c = {0}, d = {0};
    const char *pa[] = {"before"}, *pc[] = {"after"}, *pd[] = {"cancelled"};
    pending += 3;
    sc_pg_exec(p, 0, 1, pa, on_result, &a);
    sc_pg_exec_sql(p, "SELECT 1/0", 0, NULL, on_result, &b);
    sc_pg_exec(p, 0, 1, pc, on_result, &c);
    sc_pg_query *q = sc_pg_exec(p, 0, 1, pd, on_result, &d);
    sc_pg_cancel(q);
    CHECK(a.calls == 0); /* never called from inside the submitting call */
    run_until_done();
    CHECK(a.err == NULL && strcmp(a.value, "before") == 0);
    CHECK(b.err == SC_PG_ERR_QUERY && strcmp(b.sqlstate, "22012") == 0);
    CHECK(c.err == NULL && strcmp(c.value, "after") == 0); /* aborted by b's error, sent again */
    CHECK(d.calls == 0);
    sc_pg_pool_close(p, NULL, NULL);
}

static void test_timeout_and_queue(void)
{
    sc_pg_pool *p = pool_new(url, 1, 1, 2, 200);
    wait_ready(p);
    outcome slow = {0}, o[6];
    memset(o, 0, sizeof(o));
    const char *ps[] = {"slow", "2000"};
    pending++;
    sc_pg_exec(p, 1, 2, ps, on_result, &slow);
    for (int i = 0; i < 6; i++) {
        const char *pe[] = {"x"};
        pending++;
        sc_pg_exec(p, 0, 1, pe, on_result, &o[i]);
    }
    run_until_done();
    CHECK(slow.err == SC_PG_ERR_TIMEOUT || (slow.err == SC_PG_ERR_QUERY && strcmp(slow.sqlstate, "57014") == 0));
    int busy = 0;
    for (int i = 0; i < 6; i++)
        busy += o[i].err == SC_PG_ERR_BUSY;
    CHECK(busy == 4); /* one connection of depth 1 is busy; two fit in the queue */
    sc_pg_pool_close(p, NULL, NULL);
}

typedef struct tx_state {
    sc_pg_tx *tx;
    const char *err;
} tx_state;

static void on_begin(void *data, const char *err, sc_pg_tx *tx)
{
    tx_state *t = data;
    t->tx = tx;
    t->err = err;
    pending--;
}

static void test_transactions(void)
{
    sc_pg_pool *p = pool_new(url, 2, 8, 100, 5000);
    wait_ready(p);
    char table[64], sql[256];
    snprintf(table, sizeof(table), "pool_test_%d", (int)getpid());
    outcome o = {0};
    snprintf(sql, sizeof(sql), "CREATE TABLE %s (v int)", table);
    pending++;
    sc_pg_exec_sql(p, sql, 0, NULL, on_result, &o);
    run_until_done();
    CHECK(o.err == NULL);

    for (int commit = 0; commit <= 1; commit++) {
        tx_state t = {0};
        pending++;
        sc_pg_tx_begin(p, on_begin, &t);
        run_until_done();
        CHECK(t.err == NULL && t.tx != NULL);
        if (!t.tx)
            continue;
        outcome ins = {0}, cnt = {0};
        snprintf(sql, sizeof(sql), "INSERT INTO %s VALUES (1)", table);
        pending++;
        sc_pg_tx_exec_sql(t.tx, sql, 0, NULL, on_result, &ins);
        snprintf(sql, sizeof(sql), "SELECT count(*)::text FROM %s", table);
        pending++;
        sc_pg_tx_exec_sql(t.tx, sql, 0, NULL, on_result, &cnt);
        run_until_done();
        CHECK(ins.err == NULL && cnt.err == NULL && strcmp(cnt.value, "1") == 0);
        outcome end = {0};
        pending++;
        sc_pg_tx_end(t.tx, commit, on_result, &end);
        run_until_done();
        CHECK(end.err == NULL);
        outcome after = {0};
        pending++;
        sc_pg_exec_sql(p, sql, 0, NULL, on_result, &after);
        run_until_done();
        CHECK(after.err == NULL && strcmp(after.value, commit ? "1" : "0") == 0);
    }

    /* A failed statement makes the commit a rollback, reported as an error. */
    tx_state t = {0};
    pending++;
    sc_pg_tx_begin(p, on_begin, &t);
    run_until_done();
    if (t.tx) {
        outcome bad = {0}, end = {0};
        pending++;
        sc_pg_tx_exec_sql(t.tx, "SELECT 1/0", 0, NULL, on_result, &bad);
        run_until_done();
        CHECK(bad.err == SC_PG_ERR_QUERY);
        pending++;
        sc_pg_tx_end(t.tx, true, on_result, &end);
        run_until_done();
        CHECK(end.err == SC_PG_ERR_QUERY);
    }
    /* The connection is clean for the next user. */
    outcome ok = {0};
    const char *pe[] = {"clean"};
    pending++;
    sc_pg_exec(p, 0, 1, pe, on_result, &ok);
    run_until_done();
    CHECK(ok.err == NULL && strcmp(ok.value, "clean") == 0);
    snprintf(sql, sizeof(sql), "DROP TABLE %s", table);
    pending++;
    sc_pg_exec_sql(p, sql, 0, NULL, on_result, &o);
    run_until_done();
    sc_pg_pool_close(p, NULL, NULL);
}

/* Regression: queries of one pipeline batch share an implicit transaction, so an error rolls back the writes
 * before it. Those writes were once reported as done although they never committed. */
static void test_error_rolls_back_batch(void)
{
    sc_pg_pool *p = pool_new(url, 1, 64, 100, 5000);
    wait_ready(p);
    char sql[256];
    outcome o = {0};
    snprintf(sql, sizeof(sql), "CREATE TABLE batch_test_%d (v int UNIQUE)", (int)getpid());
    pending++;
    sc_pg_exec_sql(p, sql, 0, NULL, on_result, &o);
    run_until_done();
    CHECK(o.err == NULL);
    outcome first = {0}, dup = {0}, last = {0}, count = {0};
    snprintf(sql, sizeof(sql), "INSERT INTO batch_test_%d VALUES ($1::int)", (int)getpid());
    const char *one[] = {"1"}, *two[] = {"2"};
    pending += 3;
    sc_pg_exec_sql(p, sql, 1, one, on_result, &first);
    sc_pg_exec_sql(p, sql, 1, one, on_result, &dup);
    sc_pg_exec_sql(p, sql, 1, two, on_result, &last);
    run_until_done();
    CHECK(first.err == NULL);
    CHECK(dup.err == SC_PG_ERR_QUERY && strcmp(dup.sqlstate, "23505") == 0);
    CHECK(last.err == NULL);
    snprintf(sql, sizeof(sql), "SELECT string_agg(v::text, ',' ORDER BY v) FROM batch_test_%d", (int)getpid());
    pending++;
    sc_pg_exec_sql(p, sql, 0, NULL, on_result, &count);
    run_until_done();
    CHECK(count.err == NULL && strcmp(count.value, "1,2") == 0); /* what was reported done is really there */
    snprintf(sql, sizeof(sql), "DROP TABLE batch_test_%d", (int)getpid());
    pending++;
    sc_pg_exec_sql(p, sql, 0, NULL, on_result, &o);
    run_until_done();
    sc_pg_pool_close(p, NULL, NULL);
}

static void test_unreachable(void)
{
    /* Port 1 on loopback: nothing listens, the connect is refused at once. */
    sc_pg_pool *p = pool_new("postgresql://nobody@127.0.0.1:1/none", 2, 8, 100, 1000);
    for (int i = 0; i < 20; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    usleep(20000);
    uv_run(loop, UV_RUN_NOWAIT);
    outcome o = {0};
    const char *pe[] = {"x"};
    uint64_t start = uv_now(loop);
    pending++;
    sc_pg_exec(p, 0, 1, pe, on_result, &o);
    run_until_done();
    CHECK(o.err == SC_PG_ERR_UNAVAILABLE);
    CHECK(uv_now(loop) - start < 500); /* fails fast rather than waiting for a deadline */
    sc_pg_pool_close(p, NULL, NULL);
}

static int closed;
static void on_closed(void *data) { closed = 1; }

static void test_close_with_work_pending(void)
{
    sc_pg_pool *p = pool_new(url, 1, 4, 100, 5000);
    wait_ready(p);
    outcome o[8];
    memset(o, 0, sizeof(o));
    const char *ps[] = {"s", "200"};
    for (int i = 0; i < 8; i++)
        sc_pg_exec(p, 1, 2, ps, on_result, &o[i]);
    pending += 8;
    uv_run(loop, UV_RUN_NOWAIT);
    sc_pg_pool_close(p, on_closed, NULL);
    run_until_done();
    int shut = 0;
    for (int i = 0; i < 8; i++)
        shut += o[i].err == SC_PG_ERR_SHUTDOWN && o[i].calls == 1;
    CHECK(shut == 8);
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(closed == 1);
}

int main(void)
{
    url = getenv("DATABASE_URL");
    if (!url || !*url) {
        printf("DATABASE_URL not set: skipped\n");
        return 77;
    }
    loop = uv_default_loop();
    test_concurrency();
    test_error_isolation_and_cancel();
    test_timeout_and_queue();
    test_transactions();
    test_error_rolls_back_batch();
    test_unreachable();
    test_close_with_work_pending();
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(loop) == 0);
    return check_report();
}
