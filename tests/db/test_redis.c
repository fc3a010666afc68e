/* The Redis client against a real server (REDIS_URL): commands and replies, binary-safe arguments, our own
 * deadlines, cancellation, an unreachable server failing fast, and a clean close. Skipped (77) without REDIS_URL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cache/redis.h"
#include "check.h"

static uv_loop_t *loop;
static int pending;

typedef struct outcome {
    const char *err;
    char value[64];
    long long integer;
    int calls;
} outcome;

static void on_reply(void *data, const char *err, redisReply *r)
{
    outcome *o = data;
    o->err = err;
    o->calls++;
    if (r && r->type == REDIS_REPLY_STRING)
        memcpy(o->value, r->str, r->len < sizeof(o->value) ? r->len : sizeof(o->value));
    if (r && r->type == REDIS_REPLY_INTEGER)
        o->integer = r->integer;
    pending--;
}

static void on_guard(uv_timer_t *t) { (void)t; }

/* Runs the loop until done() or ms have passed; a guard timer makes sure the loop wakes up to notice. */
static void run_until(int (*done)(void *), void *arg, uint64_t ms)
{
    uv_timer_t guard;
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, on_guard, 10, 10);
    uint64_t until = uv_now(loop) + ms;
    while (!done(arg) && uv_now(loop) < until)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static int no_pending(void *arg) { return pending == 0; }
static int connected(void *arg) { return sc_redis_connected(arg); }

static sc_redis *client(const char *host, int port, uint64_t timeout)
{
    sc_redis_config cfg = {host, port, timeout, 1000};
    return sc_redis_new(loop, &cfg);
}

static void cmd(sc_redis *r, outcome *o, int argc, const char **argv, const size_t *lens)
{
    pending++;
    sc_redis_command(r, on_reply, o, argc, argv, lens);
}

int main(void)
{
    const char *url = getenv("REDIS_URL");
    if (!url || !*url) {
        printf("REDIS_URL not set: skipped\n");
        return 77;
    }
    char host[128], err[128];
    int port;
    CHECK(sc_redis_parse_url(url, host, sizeof(host), &port, err, sizeof(err)) == 0);
    CHECK(sc_redis_parse_url("redis://:secret@h:1", host, sizeof(host), &port, err, sizeof(err)) == -1);
    CHECK(sc_redis_parse_url(url, host, sizeof(host), &port, err, sizeof(err)) == 0);
    loop = uv_default_loop();

    sc_redis *r = client(host, port, 200);
    run_until(connected, r, 3000);
    CHECK(sc_redis_connected(r));

    char key[64];
    snprintf(key, sizeof(key), "staccato-test-%d", (int)getpid());
    const char value[] = "a\0b\r\nc";
    const char *set[] = {"SET", key, value, "EX", "60"};
    size_t set_lens[] = {3, strlen(key), sizeof(value) - 1, 2, 2};
    const char *get[] = {"GET", key};
    size_t get_lens[] = {3, strlen(key)};
    outcome s = {0}, g = {0};
    cmd(r, &s, 5, set, set_lens);
    cmd(r, &g, 2, get, get_lens);
    CHECK(s.calls == 0 && g.calls == 0);
    run_until(no_pending, NULL, 3000);
    CHECK(s.err == NULL && g.err == NULL && memcmp(g.value, value, sizeof(value) - 1) == 0);

    /* Many commands at once, replies matched in order. */
    enum { N = 500 };
    static outcome inc[N];
    const char *incr[] = {"INCR", key};
    size_t incr_lens[] = {4, strlen(key)};
    const char *del[] = {"DEL", key};
    outcome d = {0};
    cmd(r, &d, 2, del, get_lens);
    for (int i = 0; i < N; i++)
        cmd(r, &inc[i], 2, incr, incr_lens);
    run_until(no_pending, NULL, 5000);
    int ordered = 0;
    for (int i = 0; i < N; i++)
        ordered += inc[i].err == NULL && inc[i].integer == i + 1;
    CHECK(ordered == N);

    /* An error reply. */
    outcome e = {0};
    const char *bad[] = {"LPUSH", key, "x"};
    size_t bad_lens[] = {5, strlen(key), 1};
    cmd(r, &e, 3, bad, bad_lens);
    run_until(no_pending, NULL, 3000);
    CHECK(e.err == SC_REDIS_ERR_REPLY);

    /* Our deadline: BLPOP blocks for a second on the server, the command times out after 200 ms. */
    outcome t = {0}, after = {0};
    char list[80];
    snprintf(list, sizeof(list), "%s-list", key);
    const char *blpop[] = {"BLPOP", list, "1"};
    size_t blpop_lens[] = {5, strlen(list), 1};
    uint64_t start = uv_now(loop);
    cmd(r, &t, 3, blpop, blpop_lens);
    run_until(no_pending, NULL, 3000);
    CHECK(t.err == SC_REDIS_ERR_TIMEOUT && uv_now(loop) - start < 900);
    /* The late reply (after the server's one second) is dropped; the connection goes on serving. */
    pending = 1;
    run_until(no_pending, NULL, 1200);
    pending = 0;
    cmd(r, &after, 2, get, get_lens);
    run_until(no_pending, NULL, 3000);
    CHECK(after.err == NULL && t.calls == 1);

    /* Cancelled commands never call back. */
    outcome c = {0};
    sc_redis_cmd *q = sc_redis_command(r, on_reply, &c, 2, get, get_lens);
    sc_redis_cancel(q);
    outcome last = {0};
    cmd(r, &last, 2, del, get_lens);
    run_until(no_pending, NULL, 3000);
    CHECK(c.calls == 0 && last.err == NULL);
    sc_redis_close(r, NULL, NULL);

    /* Nothing listens on port 1: commands fail at once rather than at their deadline. */
    sc_redis *down = client("127.0.0.1", 1, 5000);
    uv_run(loop, UV_RUN_NOWAIT);
    usleep(10000);
    uv_run(loop, UV_RUN_NOWAIT);
    outcome u = {0};
    start = uv_now(loop);
    cmd(down, &u, 2, get, get_lens);
    run_until(no_pending, NULL, 3000);
    CHECK(u.err == SC_REDIS_ERR_UNAVAILABLE && uv_now(loop) - start < 500);
    sc_redis_close(down, NULL, NULL);

    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(loop) == 0);
    return check_report();
}
