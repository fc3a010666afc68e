/* The outbound client against real peers on loopback (tests/outbound/peers.py, started and stopped here): HTTP
 * GET/POST/PUT/DELETE/HEAD, error statuses, the deadline, the body cap, refused connections, a peer that hangs up,
 * 200 transfers through 16 slots while the loop keeps running, the bounded queue, cancellation, deadlines of
 * waiting transfers, e-mail with an attachment (parsed back by Python's email package), SMTP rejections, an SMTP
 * deadline and an absent SMTP server, and a close with work pending followed by uv_loop_close() == 0. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "check.h"
#include "outbound/outbound.h"

#ifndef SC_TEST_PEERS
#define SC_TEST_PEERS "tests/outbound/peers.py"
#endif
#ifndef SC_TEST_PYTHON
#define SC_TEST_PYTHON "python3"
#endif

static uv_loop_t *loop;
static int http_port, smtp_port;
static char maildir[64];
static pid_t peers_pid;
static int peers_stdin = -1;

/* ---- the peers -----------------------------------------------------------------------------------------------
 */

static int start_peers(void)
{
    snprintf(maildir, sizeof(maildir), "/tmp/sc-outbound-XXXXXX");
    if (!mkdtemp(maildir)) {
        perror("mkdtemp");
        return -1;
    }
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0)
        return -1;
    peers_pid = fork();
    if (peers_pid < 0)
        return -1;
    if (peers_pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execlp(SC_TEST_PYTHON, SC_TEST_PYTHON, SC_TEST_PEERS, "--maildir", maildir, "--max-seconds", "240",
               (char *)NULL);
        perror("exec " SC_TEST_PYTHON);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    peers_stdin = in[1];
    fcntl(peers_stdin, F_SETFD, FD_CLOEXEC);
    /* Read the READY line, for at most 15 seconds. */
    char line[256];
    size_t len = 0;
    uint64_t until = uv_hrtime() / 1000000 + 15000;
    while (len < sizeof(line) - 1 && !memchr(line, '\n', len)) {
        int64_t left = (int64_t)(until - uv_hrtime() / 1000000);
        struct pollfd pfd = {out[0], POLLIN, 0};
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        ssize_t n = read(out[0], line + len, sizeof(line) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    line[len] = '\0';
    close(out[0]);
    if (sscanf(line, "READY http=%d smtp=%d", &http_port, &smtp_port) != 2 || http_port <= 0) {
        fprintf(stderr, "peers did not start (got \"%s\")\n", line);
        return -1;
    }
    if (smtp_port <= 0) {
        fprintf(stderr, "the SMTP peer needs aiosmtpd: install python3-aiosmtpd (deps/install.sh test)\n");
        return -1;
    }
    return 0;
}

static void stop_peers(void)
{
    if (peers_stdin >= 0)
        close(peers_stdin); /* the peers exit at end of file */
    if (peers_pid > 0) {
        int status;
        for (int i = 0; i < 100 && waitpid(peers_pid, &status, WNOHANG) == 0; i++)
            usleep(20000);
        if (waitpid(peers_pid, &status, WNOHANG) == 0) {
            kill(peers_pid, SIGKILL);
            waitpid(peers_pid, &status, 0);
        }
    }
    if (maildir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", maildir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", maildir);
    }
}

/* A loopback port nobody listens on: bound, then closed. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &alen);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- running the loop ----------------------------------------------------------------------------------------
 */

static int pending;
static void on_guard(uv_timer_t *t) { (void)t; }

/* Runs the loop until every submitted transfer has called back (or limit_ms passed); a guard timer keeps it
 * waking so that a missing callback shows up as a failed check rather than a hang. */
static void run_until_done(uint64_t limit_ms)
{
    uv_timer_t guard;
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, on_guard, 10, 10);
    uint64_t until = uv_now(loop) + limit_ms;
    while (pending > 0 && uv_now(loop) < until)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* Runs the loop for ms milliseconds. */
static void run_for(uint64_t ms)
{
    int saved = pending;
    pending = 1;
    run_until_done(ms);
    pending = saved;
}

static void on_closed(void *data) { *(int *)data = 1; }

static void client_close(sc_outbound *o)
{
    int closed = 0;
    sc_outbound_close(o, on_closed, &closed);
    uint64_t until = uv_now(loop) + 5000;
    while (!closed && uv_now(loop) < until)
        uv_run(loop, UV_RUN_ONCE);
    CHECK(closed == 1);
}

static sc_outbound *client(unsigned max_transfers, unsigned max_queue, size_t max_body)
{
    sc_outbound_config cfg = {max_transfers, max_queue, 5000, max_body};
    return sc_outbound_new(loop, &cfg);
}

/* ---- outcomes ------------------------------------------------------------------------------------------------
 */

typedef struct outcome {
    const char *err;
    long status;
    char content_type[64];
    char *body;
    size_t body_len;
    int calls;
    uint64_t at; /* loop time of the callback */
} outcome;

static void on_http(void *data, const char *err, const sc_http_response *res)
{
    outcome *o = data;
    o->err = err;
    o->calls++;
    o->at = uv_now(loop);
    if (res) {
        o->status = res->status;
        snprintf(o->content_type, sizeof(o->content_type), "%s", res->content_type ? res->content_type : "");
        free(o->body);
        o->body = malloc(res->body_len + 1);
        memcpy(o->body, res->body, res->body_len + 1);
        o->body_len = res->body_len;
        CHECK(res->body[res->body_len] == '\0');
    }
    pending--;
}

static void on_done(void *data, const char *err)
{
    outcome *o = data;
    o->err = err;
    o->calls++;
    o->at = uv_now(loop);
    pending--;
}

static void outcome_free(outcome *o)
{
    free(o->body);
    o->body = NULL;
}

static char *url(const char *path)
{
    static char buf[8][256];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, 256, "http://127.0.0.1:%d%s", http_port, path);
    return b;
}

static json_t *body_json(const outcome *o) { return o->body ? json_loadb(o->body, o->body_len, 0, NULL) : NULL; }

static json_t *get_stats(sc_outbound *c, bool reset)
{
    outcome o = {0};
    pending++;
    sc_outbound_http(c, "GET", url(reset ? "/stats?reset=1" : "/stats"), NULL, NULL, 0, 0, on_http, &o);
    run_until_done(3000);
    json_t *j = body_json(&o);
    outcome_free(&o);
    return j;
}

/* ---- HTTP ----------------------------------------------------------------------------------------------------
 */

static void test_http_basics(void)
{
    sc_outbound *c = client(4, 16, 1 << 20);
    outcome get = {0}, post = {0}, put = {0}, del = {0}, head = {0}, missing = {0};
    pending += 6;
    sc_outbound_http(c, "GET", url("/json?i=7"), NULL, NULL, 0, 0, on_http, &get);
    const char *hdrs[] = {"Content-Type: application/json", "X-Test: abc", NULL};
    const char *payload = "{\"hello\": \"w\\u00f6rld\"}";
    sc_outbound_http(c, "POST", url("/echo?x=1"), hdrs, payload, strlen(payload), 0, on_http, &post);
    sc_outbound_http(c, "PUT", url("/echo"), hdrs, "[1,2]", 5, 0, on_http, &put);
    sc_outbound_http(c, "DELETE", url("/echo"), NULL, NULL, 0, 0, on_http, &del);
    sc_outbound_http(c, "HEAD", url("/json?i=1"), NULL, NULL, 0, 0, on_http, &head);
    sc_outbound_http(c, "GET", url("/status?code=404"), NULL, NULL, 0, 0, on_http, &missing);
    CHECK(get.calls == 0 && post.calls == 0); /* never from inside the submitting call */
    run_until_done(5000);

    CHECK(get.calls == 1 && get.err == NULL && get.status == 200);
    CHECK(strcmp(get.content_type, "application/json") == 0);
    json_t *j = body_json(&get);
    CHECK(j && json_integer_value(json_object_get(j, "i")) == 7);
    json_decref(j);

    CHECK(post.calls == 1 && post.err == NULL && post.status == 200);
    j = body_json(&post);
    CHECK(j != NULL);
    if (j) {
        CHECK(strcmp(json_string_value(json_object_get(j, "method")), "POST") == 0);
        CHECK(strcmp(json_string_value(json_object_get(j, "path")), "/echo?x=1") == 0);
        json_t *h = json_object_get(j, "headers");
        CHECK(strcmp(json_string_value(json_object_get(h, "x-test")), "abc") == 0);
        CHECK(strcmp(json_string_value(json_object_get(h, "content-type")), "application/json") == 0);
        CHECK(json_object_get(h, "expect") == NULL);
        CHECK(strcmp(json_string_value(json_object_get(j, "body")), payload) == 0);
    }
    json_decref(j);

    j = body_json(&put);
    CHECK(put.err == NULL && j && strcmp(json_string_value(json_object_get(j, "method")), "PUT") == 0 &&
          strcmp(json_string_value(json_object_get(j, "body")), "[1,2]") == 0);
    json_decref(j);
    j = body_json(&del);
    CHECK(del.err == NULL && j && strcmp(json_string_value(json_object_get(j, "method")), "DELETE") == 0 &&
          strcmp(json_string_value(json_object_get(j, "body")), "") == 0);
    json_decref(j);
    CHECK(head.calls == 1 && head.err == NULL && head.status == 200 && head.body_len == 0);
    CHECK(missing.calls == 1 && missing.err == NULL && missing.status == 404); /* a status is not an err */

    outcome_free(&get);
    outcome_free(&post);
    outcome_free(&put);
    outcome_free(&del);
    outcome_free(&head);
    outcome_free(&missing);
    client_close(c);
}

static void test_http_failures(void)
{
    sc_outbound *c = client(4, 16, 65536);
    outcome slow = {0}, big = {0}, big_chunked = {0}, exact = {0}, refused = {0}, hangup = {0};
    char refused_url[64];
    snprintf(refused_url, sizeof(refused_url), "http://127.0.0.1:%d/", closed_port());
    uint64_t start = uv_now(loop);
    pending += 5;
    sc_outbound_http(c, "GET", url("/slow?ms=3000"), NULL, NULL, 0, 300, on_http, &slow);
    sc_outbound_http(c, "GET", url("/large?bytes=100000"), NULL, NULL, 0, 0, on_http, &big);
    sc_outbound_http(c, "GET", url("/large?bytes=100000&chunked=1"), NULL, NULL, 0, 0, on_http, &big_chunked);
    sc_outbound_http(c, "GET", url("/large?bytes=65536&chunked=1"), NULL, NULL, 0, 0, on_http, &exact);
    sc_outbound_http(c, "GET", refused_url, NULL, NULL, 0, 0, on_http, &refused);
    run_until_done(5000);
    pending++;
    sc_outbound_http(c, "GET", url("/close"), NULL, NULL, 0, 0, on_http, &hangup);
    run_until_done(5000);

    CHECK(slow.calls == 1 && slow.err == SC_OUT_ERR_TIMEOUT);
    CHECK(slow.at - start >= 290 && slow.at - start < 1500);
    fprintf(stderr, "timeout after %llu ms (deadline 300)\n", (unsigned long long)(slow.at - start));
    CHECK(big.calls == 1 && big.err == SC_OUT_ERR_TOO_LARGE);                 /* Content-Length over the cap */
    CHECK(big_chunked.calls == 1 && big_chunked.err == SC_OUT_ERR_TOO_LARGE); /* stopped while reading */
    CHECK(exact.calls == 1 && exact.err == NULL && exact.body_len == 65536);  /* at the cap is fine */
    CHECK(refused.calls == 1 && refused.err == SC_OUT_ERR_CONNECT);
    CHECK(refused.at - start < 2000);
    CHECK(hangup.calls == 1 && hangup.err == SC_OUT_ERR_PROTOCOL);

    /* HEAD: the Content-Length describes a body that is not sent, so the cap does not apply. "localhost" is
     * tried over IPv6 and IPv4, so refused attempts and their sockets come and go on the way. A name in .invalid
     * goes through the threaded resolver (its wake-up socket is polled too) and cannot resolve. */
    outcome head = {0}, local = {0}, unresolvable = {0};
    char local_url[64];
    snprintf(local_url, sizeof(local_url), "http://localhost:%d/json?i=3", http_port);
    pending += 3;
    sc_outbound_http(c, "HEAD", url("/large?bytes=100000"), NULL, NULL, 0, 0, on_http, &head);
    sc_outbound_http(c, "GET", local_url, NULL, NULL, 0, 0, on_http, &local);
    sc_outbound_http(c, "GET", "http://staccato-test.invalid/", NULL, NULL, 0, 3000, on_http, &unresolvable);
    run_until_done(5000);
    CHECK(head.calls == 1 && head.err == NULL && head.status == 200 && head.body_len == 0);
    CHECK(local.calls == 1 && local.err == NULL && local.status == 200);
    /* CONNECT when the resolver answers "no such name"; TIMEOUT where DNS does not answer at all. */
    CHECK(unresolvable.calls == 1 &&
          (unresolvable.err == SC_OUT_ERR_CONNECT || unresolvable.err == SC_OUT_ERR_TIMEOUT));
    outcome_free(&head);
    outcome_free(&local);

    /* Bad input fails with INVALID, delivered later like every other outcome. */
    outcome scheme = {0}, injected = {0}, method = {0};
    const char *bad_hdrs[] = {"X-A: b\r\nX-Injected: 1", NULL};
    pending += 3;
    sc_outbound_http(c, "GET", "ftp://127.0.0.1/x", NULL, NULL, 0, 0, on_http, &scheme);
    sc_outbound_http(c, "GET", url("/echo"), bad_hdrs, NULL, 0, 0, on_http, &injected);
    sc_outbound_http(c, "GE T", url("/echo"), NULL, NULL, 0, 0, on_http, &method);
    CHECK(scheme.calls == 0 && injected.calls == 0 && method.calls == 0);
    run_until_done(2000);
    CHECK(scheme.err == SC_OUT_ERR_INVALID && injected.err == SC_OUT_ERR_INVALID &&
          method.err == SC_OUT_ERR_INVALID);

    outcome_free(&exact);
    outcome_free(&big);
    outcome_free(&big_chunked);
    client_close(c);
}

static int ticks;
static void on_tick(uv_timer_t *t) { ticks++; }

static void test_parallel(void)
{
    enum { N = 200 };
    sc_outbound *c = client(16, N, 1 << 20);
    json_t *before = get_stats(c, true);
    static outcome out[N];
    memset(out, 0, sizeof(out));
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    ticks = 0;
    uv_timer_start(&tick, on_tick, 10, 10);
    uint64_t start = uv_now(loop);
    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/json?i=%d&delay=20", i);
        pending++;
        sc_outbound_http(c, "GET", url(path), NULL, NULL, 0, 20000, on_http, &out[i]);
    }
    run_until_done(30000);
    uint64_t elapsed = uv_now(loop) - start;
    uv_close((uv_handle_t *)&tick, NULL);

    int matched = 0;
    for (int i = 0; i < N; i++) {
        json_t *j = body_json(&out[i]);
        matched += out[i].calls == 1 && out[i].err == NULL && j &&
                   json_integer_value(json_object_get(j, "i")) == i;
        json_decref(j);
        outcome_free(&out[i]);
    }
    CHECK(matched == N);
    /* The loop kept running: the 10 ms timer fired at least half as often as it should have. */
    uint64_t expected = elapsed / 10;
    fprintf(stderr, "parallel: %d transfers in %llu ms, timer fired %d of %llu times\n", N,
            (unsigned long long)elapsed, ticks, (unsigned long long)expected);
    CHECK(expected > 0 && (uint64_t)ticks * 2 >= expected);

    json_t *after = get_stats(c, false);
    long long conns = json_integer_value(json_object_get(after, "connections")) -
                      json_integer_value(json_object_get(before, "connections"));
    long long max_inflight = json_integer_value(json_object_get(after, "max_inflight"));
    fprintf(stderr, "parallel: %lld new connections, at most %lld requests at once\n", conns, max_inflight);
    CHECK(max_inflight >= 2 && max_inflight <= 16); /* in parallel, never beyond the cap */
    CHECK(conns >= 1 && conns <= 32);               /* connections were reused */
    json_decref(before);
    json_decref(after);
    client_close(c);
}

static void test_queue_full(void)
{
    sc_outbound *c = client(1, 2, 1 << 20);
    outcome o[4];
    memset(o, 0, sizeof(o));
    for (int i = 0; i < 4; i++) {
        pending++;
        sc_outbound_http(c, "GET", url("/slow?ms=100"), NULL, NULL, 0, 0, on_http, &o[i]);
    }
    CHECK(o[3].calls == 0); /* BUSY, too, is delivered later */
    run_until_done(5000);
    CHECK(o[0].err == NULL && o[1].err == NULL && o[2].err == NULL);
    CHECK(o[3].calls == 1 && o[3].err == SC_OUT_ERR_BUSY);
    CHECK(o[3].at <= o[0].at); /* and without waiting for the others */
    for (int i = 0; i < 4; i++)
        outcome_free(&o[i]);
    client_close(c);
}

static void test_queue_deadline(void)
{
    sc_outbound *c = client(1, 4, 1 << 20);
    outcome busy = {0}, waiting = {0};
    uint64_t start = uv_now(loop);
    pending += 2;
    sc_outbound_http(c, "GET", url("/slow?ms=1000"), NULL, NULL, 0, 0, on_http, &busy);
    sc_outbound_http(c, "GET", url("/json?i=1"), NULL, NULL, 0, 200, on_http, &waiting);
    run_until_done(5000);
    /* The deadline counts from submission, so a transfer that never got a slot times out in the queue. */
    CHECK(waiting.err == SC_OUT_ERR_TIMEOUT && waiting.at - start >= 190 && waiting.at - start < 800);
    CHECK(busy.err == NULL);
    outcome_free(&busy);
    outcome_free(&waiting);
    client_close(c);
}

static void test_cancel(void)
{
    sc_outbound *c = client(1, 8, 1 << 20);
    outcome at_once = {0}, started = {0}, queued = {0}, next = {0}, failed = {0};
    /* Cancelled right after submission: it was handed to curl already (a free slot). */
    sc_out_req *r = sc_outbound_http(c, "GET", url("/slow?ms=2000"), NULL, NULL, 0, 0, on_http, &at_once);
    sc_outbound_cancel(r);
    /* Cancelled while it runs: the slot goes to the next transfer at once. */
    sc_out_req *s = sc_outbound_http(c, "GET", url("/slow?ms=2000"), NULL, NULL, 0, 0, on_http, &started);
    sc_out_req *q = sc_outbound_http(c, "GET", url("/slow?ms=2000"), NULL, NULL, 0, 0, on_http, &queued);
    pending++;
    sc_outbound_http(c, "GET", url("/json?i=5"), NULL, NULL, 0, 0, on_http, &next);
    sc_out_req *f = sc_outbound_http(c, "GET", "nonsense", NULL, NULL, 0, 0, on_http, &failed);
    sc_outbound_cancel(f); /* failed, not yet delivered */
    run_for(100);
    uint64_t start = uv_now(loop);
    sc_outbound_cancel(q); /* waiting in the queue */
    sc_outbound_cancel(s); /* running */
    sc_outbound_cancel(NULL);
    run_until_done(3000);
    CHECK(next.calls == 1 && next.err == NULL && next.at - start < 1000);
    run_for(300);
    CHECK(at_once.calls == 0 && started.calls == 0 && queued.calls == 0 && failed.calls == 0);
    outcome_free(&next);
    client_close(c);
}

/* A callback may submit again; the new transfer's callback comes later, not from inside the submitting call. */
typedef struct chain {
    sc_outbound *c;
    int round;
    outcome out;
} chain;

static void on_chain(void *data, const char *err, const sc_http_response *res)
{
    chain *ch = data;
    CHECK(err == NULL && res && res->status == 200);
    if (++ch->round < 3) {
        int before = ch->round;
        sc_outbound_http(ch->c, "GET", url("/json?i=2"), NULL, NULL, 0, 0, on_chain, ch);
        CHECK(ch->round == before);
        return;
    }
    pending--;
}

static void test_resubmit_from_callback(void)
{
    sc_outbound *c = client(2, 2, 1 << 20);
    chain ch = {c, 0, {0}};
    pending++;
    sc_outbound_http(c, "GET", url("/json?i=1"), NULL, NULL, 0, 0, on_chain, &ch);
    run_until_done(5000);
    CHECK(ch.round == 3);
    client_close(c);
}

/* ---- SMTP ----------------------------------------------------------------------------------------------------
 */

static json_t *mail_summary(const char *rcpt)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s.json", maildir, rcpt);
    return json_load_file(path, 0, NULL);
}

static void hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
    out[2 * n] = '\0';
}

static void test_mail(void)
{
    sc_outbound *c = client(4, 8, 1 << 20);
    sc_smtp_config smtp = {"127.0.0.1", (unsigned)smtp_port, NULL, NULL, false};
    static const char attachment[] =
        "{\"playlist\": \"Caf\xc3\xa9 del Mar\", \"tracks\": [1, 2, 3], \"note\": \"a line long enough to need "
        "more than one line of base64 in the message body, to check the wrapping\"}\n";
    const char *subject = "Your weekly report \xe2\x80\x94 caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
                          "with a subject long enough to need several encoded words \xe2\x9c\x93";
    const char *text = "Hello,\n\nyour report is attached.\n.\nA line with a lone dot above.\n";
    sc_mail mail = {"Staccato <noreply@staccato.test>",
                    "listener@example.org",
                    subject,
                    text,
                    "report.json",
                    "application/json",
                    attachment,
                    sizeof(attachment) - 1,
                    NULL};
    outcome sent = {0}, authed = {0}, plain = {0};
    pending += 3;
    sc_outbound_smtp(c, &smtp, &mail, 0, on_done, &sent);
    CHECK(sent.calls == 0);

    sc_smtp_config with_auth = smtp;
    with_auth.user = "user";
    with_auth.password = "secret";
    sc_mail second = {"noreply@staccato.test",
                      "authed@example.org",
                      "Plain subject",
                      "Caf\xc3\xa9 \xe2\x98\x95",
                      "d\xc3\xa9tails.json",
                      "application/json",
                      "{}",
                      2,
                      NULL};
    sc_outbound_smtp(c, &with_auth, &second, 0, on_done, &authed);
    sc_mail third = {"noreply@staccato.test", "plain@example.org", "", NULL, NULL, NULL, NULL, 0, NULL};
    sc_outbound_smtp(c, &smtp, &third, 0, on_done, &plain);
    run_until_done(10000);
    CHECK(sent.calls == 1 && sent.err == NULL);
    CHECK(authed.calls == 1 && authed.err == NULL);
    CHECK(plain.calls == 1 && plain.err == NULL);

    json_t *j = mail_summary("listener@example.org");
    CHECK(j != NULL);
    if (j) {
        CHECK(strcmp(json_string_value(json_object_get(j, "subject")), subject) == 0);
        CHECK(strcmp(json_string_value(json_object_get(j, "to")), "listener@example.org") == 0);
        CHECK(strcmp(json_string_value(json_object_get(j, "from")), "Staccato <noreply@staccato.test>") == 0);
        CHECK(strcmp(json_string_value(json_object_get(j, "envelope_from")), "noreply@staccato.test") == 0);
        CHECK(strcmp(json_string_value(json_array_get(json_object_get(j, "envelope_rcpt"), 0)),
                     "listener@example.org") == 0);
        CHECK(strcmp(json_string_value(json_object_get(j, "text")), text) == 0);
        CHECK(json_is_true(json_object_get(j, "has_date")));
        CHECK(strcmp(json_string_value(json_object_get(j, "mime_version")), "1.0") == 0);
        CHECK(strstr(json_string_value(json_object_get(j, "message_id")), "@staccato.test>") != NULL);
        CHECK(strcmp(json_string_value(json_object_get(j, "content_type")), "multipart/mixed") == 0);
        CHECK(json_integer_value(json_object_get(j, "max_line_len")) <= 78);
        CHECK(json_is_false(json_object_get(j, "bare_lf")));
        CHECK(json_is_null(json_object_get(j, "auth_login")));
        json_t *atts = json_object_get(j, "attachments");
        CHECK(json_array_size(atts) == 1);
        json_t *a = json_array_get(atts, 0);
        char want[2 * sizeof(attachment) + 1];
        hex((const unsigned char *)attachment, sizeof(attachment) - 1, want);
        CHECK(a && strcmp(json_string_value(json_object_get(a, "data_hex")), want) == 0);
        CHECK(a && strcmp(json_string_value(json_object_get(a, "filename")), "report.json") == 0);
        CHECK(a && strcmp(json_string_value(json_object_get(a, "content_type")), "application/json") == 0);
    }
    json_decref(j);

    j = mail_summary("authed@example.org");
    CHECK(j != NULL);
    if (j) {
        CHECK(strcmp(json_string_value(json_object_get(j, "auth_login")), "user") == 0);
        CHECK(strcmp(json_string_value(json_object_get(j, "subject")), "Plain subject") == 0);
        CHECK(strcmp(json_string_value(json_object_get(j, "text")), "Caf\xc3\xa9 \xe2\x98\x95") == 0);
        json_t *a = json_array_get(json_object_get(j, "attachments"), 0);
        CHECK(a && strcmp(json_string_value(json_object_get(a, "filename")), "d\xc3\xa9tails.json") == 0);
        CHECK(a && strcmp(json_string_value(json_object_get(a, "data_hex")), "7b7d") == 0);
    }
    json_decref(j);
    j = mail_summary("plain@example.org");
    CHECK(j && strcmp(json_string_value(json_object_get(j, "content_type")), "text/plain") == 0 &&
          json_array_size(json_object_get(j, "attachments")) == 0);
    json_decref(j);
    client_close(c);
}

static void test_mail_failures(void)
{
    sc_outbound *c = client(4, 8, 1 << 20);
    sc_smtp_config smtp = {"127.0.0.1", (unsigned)smtp_port, NULL, NULL, false};
    sc_mail mail = {"noreply@staccato.test", "reject-me@example.org", "Hi", "text", NULL, NULL, NULL, 0, NULL};
    outcome rejected = {0}, bad_password = {0}, no_tls = {0}, down = {0}, injected = {0}, bad_addr = {0};
    pending += 6;
    uint64_t start = uv_now(loop);
    sc_outbound_smtp(c, &smtp, &mail, 0, on_done, &rejected);
    outcome deferred = {0};
    pending++;
    sc_mail later = mail;
    later.to = "defer-me@example.org";
    sc_outbound_smtp(c, &smtp, &later, 0, on_done, &deferred);

    sc_smtp_config wrong = smtp;
    wrong.user = "user";
    wrong.password = "wrong";
    mail.to = "someone@example.org";
    sc_outbound_smtp(c, &wrong, &mail, 0, on_done, &bad_password);

    sc_smtp_config tls = smtp;
    tls.require_tls = true; /* the peer offers no STARTTLS */
    sc_outbound_smtp(c, &tls, &mail, 0, on_done, &no_tls);

    sc_smtp_config absent = smtp;
    absent.port = (unsigned)closed_port();
    sc_outbound_smtp(c, &absent, &mail, 0, on_done, &down);

    outcome slow = {0};
    sc_mail slow_mail = mail;
    slow_mail.to = "slow@example.org"; /* the peer takes 3 s to accept this recipient */
    pending++;
    sc_outbound_smtp(c, &smtp, &slow_mail, 300, on_done, &slow);

    sc_mail bad = mail;
    bad.subject = "Hi\r\nBcc: victim@example.org";
    sc_outbound_smtp(c, &smtp, &bad, 0, on_done, &injected);
    sc_mail bad_to = mail;
    bad_to.to = "a@b.c, d@e.f";
    sc_outbound_smtp(c, &smtp, &bad_to, 0, on_done, &bad_addr);
    run_until_done(10000);

    /* 5xx replies are refusals for good (an unknown mailbox, a failed AUTH), a 4xx one is for now. */
    CHECK(rejected.calls == 1 && rejected.err == SC_OUT_ERR_REFUSED);
    CHECK(bad_password.calls == 1 && bad_password.err == SC_OUT_ERR_REFUSED);
    CHECK(deferred.calls == 1 && deferred.err == SC_OUT_ERR_PROTOCOL);
    CHECK(no_tls.calls == 1 && no_tls.err == SC_OUT_ERR_CONNECT);
    CHECK(down.calls == 1 && down.err == SC_OUT_ERR_CONNECT && down.at - start < 2000);
    CHECK(slow.calls == 1 && slow.err == SC_OUT_ERR_TIMEOUT && slow.at - start >= 290 && slow.at - start < 1500);
    CHECK(injected.calls == 1 && injected.err == SC_OUT_ERR_INVALID);
    CHECK(bad_addr.calls == 1 && bad_addr.err == SC_OUT_ERR_INVALID);
    client_close(c);
}

/* ---- close ---------------------------------------------------------------------------------------------------
 */

static sc_outbound *closing_client;
static outcome late;

static void on_http_resubmit(void *data, const char *err, const sc_http_response *res)
{
    outcome *o = data;
    on_http(data, err, res);
    if (o->calls == 1 && err == SC_OUT_ERR_SHUTDOWN && late.calls == 0) {
        pending++;
        sc_outbound_http(closing_client, "GET", url("/json?i=9"), NULL, NULL, 0, 0, on_http, &late);
    }
}

static void test_close_pending(void)
{
    sc_outbound *c = closing_client = client(2, 8, 1 << 20);
    outcome o[6], mail = {0};
    memset(o, 0, sizeof(o));
    memset(&late, 0, sizeof(late));
    for (int i = 0; i < 6; i++) {
        pending++;
        sc_outbound_http(c, "GET", url("/slow?ms=2000"), NULL, NULL, 0, 0, i == 0 ? on_http_resubmit : on_http,
                         &o[i]);
    }
    sc_smtp_config smtp = {"127.0.0.1", (unsigned)smtp_port, NULL, NULL, false};
    sc_mail m = {"noreply@staccato.test", "closing@example.org", "x", "y", NULL, NULL, NULL, 0, NULL};
    pending++;
    sc_outbound_smtp(c, &smtp, &m, 0, on_done, &mail);
    run_for(100); /* two running, five waiting */
    int closed = 0;
    sc_outbound_close(c, on_closed, &closed);
    int shut = 0;
    for (int i = 0; i < 6; i++)
        shut += o[i].calls == 1 && o[i].err == SC_OUT_ERR_SHUTDOWN;
    CHECK(shut == 6);
    CHECK(mail.calls == 1 && mail.err == SC_OUT_ERR_SHUTDOWN);
    CHECK(late.calls == 1 && late.err == SC_OUT_ERR_SHUTDOWN); /* submitted from a SHUTDOWN callback */
    CHECK(pending == 0);
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(closed == 1);
}

/* A client closed without ever being used, and one closed from inside one of its callbacks. */
static int closed_inside;

static void on_close_inside(void *data, const char *err, const sc_http_response *res)
{
    outcome *o = data;
    o->calls++;
    o->err = err;
    pending--;
    if (o->calls == 1 && err == NULL)
        sc_outbound_close(closing_client, on_closed, &closed_inside);
}

static void test_close_edge_cases(void)
{
    sc_outbound *idle = client(0, 0, 0);
    client_close(idle);

    sc_outbound *c = closing_client = client(2, 2, 1 << 20);
    outcome first = {0}, second = {0};
    pending += 2;
    sc_outbound_http(c, "GET", url("/json?i=1"), NULL, NULL, 0, 0, on_close_inside, &first);
    sc_outbound_http(c, "GET", url("/slow?ms=2000"), NULL, NULL, 0, 0, on_close_inside, &second);
    run_until_done(5000);
    CHECK(first.calls == 1 && first.err == NULL);
    CHECK(second.calls == 1 && second.err == SC_OUT_ERR_SHUTDOWN);
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(closed_inside == 1); /* on_closed ran */
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (start_peers() != 0) {
        stop_peers();
        return 1;
    }
    loop = uv_default_loop();
    test_http_basics();
    test_http_failures();
    test_parallel();
    test_queue_full();
    test_queue_deadline();
    test_cancel();
    test_resubmit_from_callback();
    test_mail();
    test_mail_failures();
    test_close_pending();
    test_close_edge_cases();
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(loop) == 0);
    stop_peers();
    return check_report();
}
