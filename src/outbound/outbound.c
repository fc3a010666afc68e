/* The outbound client: libcurl's multi-socket interface driven by libuv (curl's docs/examples/multi-uv.c is the
 * model).
 *
 * curl tells us, through the socket callback, which sockets to watch for what, and through the timer callback
 * when it next wants to be called; we watch each socket with one uv_poll_t and keep one uv_timer_t, and call
 * curl_multi_socket_action from their callbacks, never from inside a curl callback. After every action the
 * finished transfers are collected with curl_multi_info_read.
 *
 * Socket lifetimes belong to the loop (CURLOPT_OPENSOCKETFUNCTION / CURLOPT_CLOSESOCKETFUNCTION): when curl asks
 * to close a socket that is still polled, the poll is stopped and closed first and the descriptor is closed only
 * in the poll's close callback. Until then its number cannot be handed out again, so libuv never sees a
 * descriptor number reused under a live poll (which makes it abort). Sockets curl opens itself (the threaded
 * resolver's wake-up pair) are told to us with CURL_POLL_REMOVE before curl closes them.
 *
 * Host names are resolved by curl's threaded resolver (Debian's libcurl4-openssl is built with it), so DNS does
 * not block the loop; CURLOPT_QUICK_EXIT keeps a cancelled or timed-out lookup from being joined on the loop.
 *
 * A request is in exactly one place: the FIFO of transfers waiting for a slot, the set of active transfers
 * (added to curl), or the done list of results not yet delivered. User callbacks run only from deliver_all, which
 * is called at the end of our own libuv callbacks, after curl has returned; so a callback may submit, cancel or
 * close freely. Results that arise inside a submitting call (a full queue, bad arguments, a closing client) wait
 * on the done list for a uv_idle handle, started only while something waits. (The adapters in db/ and cache/
 * use a uv_prepare handle for this; a prepare handle started from inside another prepare callback does not run
 * until the loop wakes for some other reason, while an active idle handle keeps the loop from blocking.) */
#include "outbound/outbound.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "outbound/mail.h"

const char SC_OUT_ERR_TIMEOUT[] = "outbound transfer timed out";
const char SC_OUT_ERR_TOO_LARGE[] = "outbound response too large";
const char SC_OUT_ERR_CONNECT[] = "outbound connection failed";
const char SC_OUT_ERR_PROTOCOL[] = "outbound peer answered unusably";
const char SC_OUT_ERR_REFUSED[] = "SMTP server refused the message for good";
const char SC_OUT_ERR_BUSY[] = "outbound queue full";
const char SC_OUT_ERR_SHUTDOWN[] = "outbound client closing";
const char SC_OUT_ERR_INVALID[] = "outbound request invalid";

#define DEFAULT_MAX_TRANSFERS 16
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_BODY (8u << 20)
#define CONNECT_TIMEOUT_MS 10000   /* at most; never more than the transfer's own deadline */
#define MAX_TIMEOUT_MS 0x7fffffffu /* what curl's long option takes everywhere (24 days) */
#define QUEUE_TICK_MS 50           /* how often waiting transfers are checked against their deadlines */

typedef enum { K_HTTP, K_SMTP } req_kind;
typedef enum { R_QUEUED, R_ACTIVE, R_DONE, R_DELIVERING } req_state;

typedef struct req_list {
    sc_out_req *head, *tail;
    unsigned count;
} req_list;

struct sc_out_req {
    sc_out_req *prev, *next; /* in the list its state names */
    sc_outbound *o;
    req_kind kind;
    req_state state;
    CURL *easy;
    struct curl_slist *list; /* HTTP header lines or SMTP recipients, which curl does not copy */
    sc_buf body;             /* response body, limited to max_body_bytes */
    sc_buf upload;           /* the SMTP message */
    size_t upload_off;
    uint64_t deadline;   /* loop time by which the transfer must be over */
    uint64_t timeout_ms; /* what curl was given when the transfer started */
    uint64_t connect_timeout_ms;
    bool too_large;
    const char *err;
    long status;
    char *content_type;
    sc_out_http_cb http_cb;
    sc_out_done_cb done_cb;
    void *data;
    char errbuf[CURL_ERROR_SIZE];
};

/* One per socket curl asked us to watch. The table of these, indexed by descriptor, is the authority: curl's
 * socketp (curl_multi_assign) points at the same object and is only a cross-check. */
typedef struct out_sock {
    uv_poll_t poll;
    sc_outbound *o;
    curl_socket_t fd;
    int events;    /* what the poll watches */
    bool close_fd; /* curl asked us to close the descriptor: do it once the poll handle is closed */
} out_sock;

struct sc_outbound {
    uv_loop_t *loop;
    sc_outbound_config cfg;
    CURLM *multi;
    uv_timer_t timer;      /* curl's timeout */
    uv_timer_t queue_tick; /* deadlines of waiting transfers */
    uv_idle_t idle;        /* deferred delivery */
    req_list queue, active, done;
    out_sock **socks;
    size_t nsocks;
    char ehlo[128];
    bool closing;
    int open_handles;
    void (*on_closed)(void *data);
    void *on_closed_data;
};

static unsigned global_refs;

static void deliver_all(sc_outbound *o);
static void start_queued(sc_outbound *o);
static void on_idle(uv_idle_t *h);

/* ---- lists ------------------------------------------------------------------------------------------------- */

static void list_append(req_list *l, sc_out_req *r)
{
    r->next = NULL;
    r->prev = l->tail;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->count++;
}

static void list_unlink(req_list *l, sc_out_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->prev = r->next = NULL;
    l->count--;
}

/* ---- sockets ----------------------------------------------------------------------------------------------- */

static out_sock *sock_get(sc_outbound *o, curl_socket_t fd)
{
    return fd >= 0 && (size_t)fd < o->nsocks ? o->socks[fd] : NULL;
}

static void sock_set(sc_outbound *o, curl_socket_t fd, out_sock *s)
{
    if ((size_t)fd >= o->nsocks) {
        size_t n = o->nsocks ? o->nsocks : 64;
        while (n <= (size_t)fd)
            n *= 2;
        o->socks = sc_realloc(o->socks, n * sizeof(*o->socks));
        memset(o->socks + o->nsocks, 0, (n - o->nsocks) * sizeof(*o->socks));
        o->nsocks = n;
    }
    o->socks[fd] = s;
}

static void maybe_finish_close(sc_outbound *o);

static void on_sock_closed(uv_handle_t *h)
{
    out_sock *s = h->data;
    sc_outbound *o = s->o;
    if (s->close_fd)
        close(s->fd);
    free(s);
    o->open_handles--;
    maybe_finish_close(o);
}

/* Stops watching: libuv forgets the descriptor at once (uv_poll_stop), the handle is closed, and the object freed
 * in the close callback, together with the descriptor when close_fd is set. */
static void sock_release(out_sock *s, bool close_fd)
{
    sc_outbound *o = s->o;
    if (sock_get(o, s->fd) == s)
        o->socks[s->fd] = NULL;
    s->close_fd = close_fd;
    s->events = 0;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static void socket_action(sc_outbound *o, curl_socket_t fd, int flags);

static void on_poll(uv_poll_t *h, int status, int events)
{
    out_sock *s = h->data;
    sc_outbound *o = s->o;
    curl_socket_t fd = s->fd;
    int watched = s->events;
    int flags = 0;
    if (status < 0) {
        /* libuv has stopped the poll. curl learns of the error and, with the bits it asked for, reads or writes
         * to find out what it was (data that arrived before an error is still read). */
        flags = CURL_CSELECT_ERR | (watched & UV_READABLE ? CURL_CSELECT_IN : 0) |
                (watched & UV_WRITABLE ? CURL_CSELECT_OUT : 0);
    } else {
        flags = (events & UV_READABLE ? CURL_CSELECT_IN : 0) | (events & UV_WRITABLE ? CURL_CSELECT_OUT : 0);
    }
    socket_action(o, fd, flags);
    /* curl announces only changes: if it still wants this socket after an error, watch it again. The object is
     * not freed before its close callback, so comparing with the table is safe. */
    if (status < 0 && sock_get(o, fd) == s && s->events && !uv_is_closing((uv_handle_t *)&s->poll))
        uv_poll_start(&s->poll, s->events, on_poll);
    deliver_all(o);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    sc_outbound *o = userp;
    out_sock *s = sock_get(o, fd);
    if (socketp && socketp != s)
        sc_log_debug("outbound: curl's socket pointer for %d is stale", (int)fd);
    if (what == CURL_POLL_REMOVE) {
        if (s)
            sock_release(s, false);
        return 0;
    }
    if (!s) {
        s = sc_calloc(sizeof(*s));
        s->o = o;
        s->fd = fd;
        s->poll.data = s;
        int rc = uv_poll_init_socket(o->loop, &s->poll, fd);
        if (rc != 0) {
            /* Returning -1 would make curl fail every transfer of the multi handle; this one times out. */
            sc_log_error("outbound: cannot poll socket %d: %s", (int)fd, uv_strerror(rc));
            free(s);
            return 0;
        }
        o->open_handles++;
        sock_set(o, fd, s);
        curl_multi_assign(o->multi, fd, s);
    }
    s->events = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
    uv_poll_start(&s->poll, s->events, on_poll);
    return 0;
}

static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    sc_outbound *o = clientp;
    int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    out_sock *stale = sock_get(o, fd);
    if (stale) {
        /* A socket we did not open was closed without CURL_POLL_REMOVE and its number came back: forget that poll
         * before curl watches the new socket. Its descriptor is not ours to close (it is the new socket now). */
        sc_log_warn("outbound: socket %d was closed while still polled", fd);
        sock_release(stale, false);
    }
    return fd;
}

static int on_close_socket(void *clientp, curl_socket_t fd)
{
    sc_outbound *o = clientp;
    out_sock *s = sock_get(o, fd);
    if (s) {
        sock_release(s, true);
        return 0;
    }
    return close(fd);
}

/* ---- curl's timer ------------------------------------------------------------------------------------------ */

static void on_timer(uv_timer_t *t)
{
    sc_outbound *o = t->data;
    socket_action(o, CURL_SOCKET_TIMEOUT, 0);
    deliver_all(o);
}

/* Only arms or stops the timer: calling curl from here would re-enter it. curl's "0: at once" becomes 1 ms. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    sc_outbound *o = userp;
    if (uv_is_closing((uv_handle_t *)&o->timer))
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&o->timer);
    else
        uv_timer_start(&o->timer, on_timer, timeout_ms ? (uint64_t)timeout_ms : 1, 0);
    return 0;
}

/* ---- transfers --------------------------------------------------------------------------------------------- */

static void schedule_delivery(sc_outbound *o)
{
    if (!uv_is_active((uv_handle_t *)&o->idle) && !uv_is_closing((uv_handle_t *)&o->idle))
        uv_idle_start(&o->idle, on_idle);
}

static void req_free(sc_out_req *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->list);
    sc_buf_free(&r->body);
    sc_buf_free(&r->upload);
    free(r->content_type);
    free(r);
}

/* Moves a request that is on no list to the done list with its outcome. */
static void finish(sc_out_req *r, const char *err)
{
    r->err = err;
    r->state = R_DONE;
    list_append(&r->o->done, r);
}

static bool is_connect_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
        return true;
    default:
        return false;
    }
}

static const char *map_result(sc_out_req *r, CURLcode rc)
{
    if (rc == CURLE_OK)
        return NULL;
    if (r->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return SC_OUT_ERR_TOO_LARGE;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        /* Two timeouts end in this code: the connect timeout, when shorter than the deadline, means the peer could
         * not be reached; otherwise the deadline passed. */
        curl_off_t connected = 0;
        curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME_T, &connected);
        return !connected && r->connect_timeout_ms < r->timeout_ms ? SC_OUT_ERR_CONNECT : SC_OUT_ERR_TIMEOUT;
    }
    if (is_connect_error(rc))
        return SC_OUT_ERR_CONNECT;
    if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_BAD_FUNCTION_ARGUMENT)
        return SC_OUT_ERR_INVALID;
    /* The rest: a rejection (an SMTP 4xx/5xx, failed AUTH), nothing or garbage received, a reset mid-way. An SMTP
     * 5xx is permanent (RFC 5321 section 4.2.1): sending again would be refused again. */
    if (r->kind == K_SMTP) {
        long code = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 500 && code <= 599)
            return SC_OUT_ERR_REFUSED;
    }
    return SC_OUT_ERR_PROTOCOL;
}

/* A transfer curl reports as done: out of curl, outcome recorded, on the done list. */
static void transfer_done(sc_outbound *o, sc_out_req *r, CURLcode rc)
{
    list_unlink(&o->active, r);
    curl_multi_remove_handle(o->multi, r->easy);
    r->err = map_result(r, rc);
    if (r->err) {
        long code = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
        sc_log_debug("outbound %s: %s (%s; curl %d, reply %ld)", r->kind == K_HTTP ? "http" : "smtp", r->err,
                     r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc), (int)rc, code);
    } else if (r->kind == K_HTTP) {
        char *ct = NULL;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct);
        r->content_type = ct ? sc_strdup(ct) : NULL;
    }
    /* Cleaning up now returns the connection to the multi handle's cache for the next transfer. */
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
    curl_slist_free_all(r->list);
    r->list = NULL;
    finish(r, r->err);
}

static void collect_done(sc_outbound *o)
{
    CURLMsg *msg;
    int left;
    while (o->multi && (msg = curl_multi_info_read(o->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        /* msg does not survive curl_multi_remove_handle: copy what is needed first. */
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        sc_out_req *r = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
        transfer_done(o, r, rc);
    }
    start_queued(o);
}

static void socket_action(sc_outbound *o, curl_socket_t fd, int flags)
{
    if (!o->multi)
        return;
    int running;
    CURLMcode mc = curl_multi_socket_action(o->multi, fd, flags, &running);
    if (mc != CURLM_OK)
        sc_log_error("outbound: curl_multi_socket_action: %s", curl_multi_strerror(mc));
    collect_done(o);
}

/* Hands a request to curl with what is left of its deadline. */
static void start(sc_outbound *o, sc_out_req *r)
{
    uint64_t now = uv_now(o->loop);
    if (now >= r->deadline) {
        finish(r, SC_OUT_ERR_TIMEOUT);
        return;
    }
    r->timeout_ms = r->deadline - now;
    r->connect_timeout_ms = r->timeout_ms < CONNECT_TIMEOUT_MS ? r->timeout_ms : CONNECT_TIMEOUT_MS;
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)r->connect_timeout_ms);
    CURLMcode mc = curl_multi_add_handle(o->multi, r->easy);
    if (mc != CURLM_OK) {
        sc_log_error("outbound: curl_multi_add_handle: %s", curl_multi_strerror(mc));
        finish(r, SC_OUT_ERR_PROTOCOL);
        return;
    }
    r->state = R_ACTIVE;
    list_append(&o->active, r);
}

static void start_queued(sc_outbound *o)
{
    while (!o->closing && o->queue.head && o->active.count < o->cfg.max_transfers) {
        sc_out_req *r = o->queue.head;
        list_unlink(&o->queue, r);
        start(o, r);
    }
    if (!o->queue.head)
        uv_timer_stop(&o->queue_tick);
    if (o->done.head)
        schedule_delivery(o);
}

static void on_queue_tick(uv_timer_t *t)
{
    sc_outbound *o = t->data;
    uint64_t now = uv_now(o->loop);
    for (sc_out_req *r = o->queue.head, *next; r; r = next) {
        next = r->next;
        if (now >= r->deadline) {
            list_unlink(&o->queue, r);
            finish(r, SC_OUT_ERR_TIMEOUT);
        }
    }
    if (!o->queue.head)
        uv_timer_stop(&o->queue_tick);
    deliver_all(o);
}

/* Starts a request, queues it, or fails it (err set, or no room); never calls back from here. */
static sc_out_req *submit(sc_outbound *o, sc_out_req *r, const char *err)
{
    if (o->closing)
        err = SC_OUT_ERR_SHUTDOWN;
    if (err)
        finish(r, err);
    else if (o->active.count < o->cfg.max_transfers && !o->queue.head)
        start(o, r);
    else if (o->queue.count < o->cfg.max_queue) {
        r->state = R_QUEUED;
        list_append(&o->queue, r);
        if (!uv_is_active((uv_handle_t *)&o->queue_tick))
            uv_timer_start(&o->queue_tick, on_queue_tick, QUEUE_TICK_MS, QUEUE_TICK_MS);
    } else
        finish(r, SC_OUT_ERR_BUSY);
    if (o->done.head)
        schedule_delivery(o);
    return r;
}

static void deliver_all(sc_outbound *o)
{
    sc_out_req *r;
    while ((r = o->done.head)) {
        list_unlink(&o->done, r);
        r->state = R_DELIVERING;
        if (r->kind == K_SMTP) {
            r->done_cb(r->data, r->err);
        } else if (r->err) {
            r->http_cb(r->data, r->err, NULL);
        } else {
            sc_buf_reserve(&r->body, 1)[0] = '\0';
            sc_http_response res = {r->status, r->content_type, r->body.ptr, r->body.len};
            r->http_cb(r->data, NULL, &res);
        }
        req_free(r);
    }
}

static void on_idle(uv_idle_t *h)
{
    sc_outbound *o = h->data;
    uv_idle_stop(h);
    deliver_all(o);
}

void sc_outbound_cancel(sc_out_req *r)
{
    if (!r)
        return;
    sc_outbound *o = r->o;
    switch (r->state) {
    case R_QUEUED:
        list_unlink(&o->queue, r);
        req_free(r);
        if (!o->queue.head)
            uv_timer_stop(&o->queue_tick);
        break;
    case R_ACTIVE:
        /* Out of curl at once; its connection is closed (curl cannot reuse one mid-transfer), and the slot goes
         * to the next waiting transfer. */
        list_unlink(&o->active, r);
        curl_multi_remove_handle(o->multi, r->easy);
        req_free(r);
        start_queued(o);
        break;
    case R_DONE:
        list_unlink(&o->done, r);
        req_free(r);
        break;
    case R_DELIVERING:
        break; /* inside its own callback; freed when that returns */
    }
}

/* ---- building requests ------------------------------------------------------------------------------------- */

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userp)
{
    sc_out_req *r = userp;
    size_t n = size * nmemb;
    /* Bodies without a Content-Length (or lying about it) are stopped here; curl then fails with
     * CURLE_WRITE_ERROR, which too_large turns into SC_OUT_ERR_TOO_LARGE. */
    if (sc_buf_try_append(&r->body, ptr, n) != 0) {
        r->too_large = true;
        return 0;
    }
    return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *userp)
{
    sc_out_req *r = userp;
    size_t n = size * nitems, left = r->upload.len - r->upload_off;
    if (n > left)
        n = left;
    memcpy(buf, r->upload.ptr + r->upload_off, n);
    r->upload_off += n;
    return n;
}

static sc_out_req *req_new(sc_outbound *o, req_kind kind, uint64_t timeout_ms, void *data)
{
    sc_out_req *r = sc_calloc(sizeof(*r));
    r->o = o;
    r->kind = kind;
    r->data = data;
    uint64_t t = timeout_ms ? timeout_ms : o->cfg.default_timeout_ms;
    r->deadline = uv_now(o->loop) + (t < MAX_TIMEOUT_MS ? t : MAX_TIMEOUT_MS);
    r->body.limit = o->cfg.max_body_bytes;
    return r;
}

/* What every transfer shares: no signals (the loop's process handles those), sockets owned by the loop, bounded
 * lookups, and errors described in errbuf for the log. */
static CURL *easy_new(sc_out_req *r)
{
    sc_outbound *o = r->o;
    CURL *e = curl_easy_init();
    if (!e) {
        fprintf(stderr, "%s:%d: curl_easy_init failed\n", __FILE__, __LINE__);
        abort();
    }
    r->easy = e;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, o);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, o);
    return e;
}

static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return false;
    return true;
}

static bool has_line_break(const char *s) { return strpbrk(s, "\r\n") != NULL; }

/* Parses the URL the way curl will and accepts http and https only. */
static bool valid_http_url(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL;
    bool ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
    curl_free(scheme);
    curl_url_cleanup(u);
    return ok;
}

static const char *http_setup(sc_out_req *r, const char *method, const char *url, const char *const *headers,
                              const void *body, size_t body_len)
{
    if (!method || !is_token(method) || !url || has_line_break(url) || !valid_http_url(url))
        return SC_OUT_ERR_INVALID;
    if (!body && body_len)
        return SC_OUT_ERR_INVALID;
    bool has_expect = false;
    for (const char *const *h = headers; h && *h; h++) {
        if (has_line_break(*h) || !strpbrk(*h, ":;")) /* "Name;" is curl's way to send an empty value */
            return SC_OUT_ERR_INVALID;
        has_expect |= strncasecmp(*h, "Expect:", 7) == 0;
        r->list = curl_slist_append(r->list, *h);
    }
    /* Without this curl waits for "100 Continue" before sending a large body. */
    if (!has_expect)
        r->list = curl_slist_append(r->list, "Expect:");
    if (!r->list) {
        fprintf(stderr, "%s:%d: out of memory\n", __FILE__, __LINE__);
        abort();
    }

    CURL *e = easy_new(r);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "staccato/" STACCATO_VERSION);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->list);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);

    bool sends_body = body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                      strcmp(method, "PATCH") == 0;
    if (strcmp(method, "HEAD") == 0) {
        if (body)
            return SC_OUT_ERR_INVALID;
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        return NULL; /* no body to cap: the Content-Length of a HEAD answer describes a GET's */
    }
    /* A declared Content-Length over the cap fails before the body is read. */
    if (r->o->cfg.max_body_bytes < (size_t)INT64_MAX)
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->o->cfg.max_body_bytes);
    if (sends_body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body ? (const char *)body : ""); /* copies body_len bytes */
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        if (strcmp(method, "GET") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    return NULL;
}

sc_out_req *sc_outbound_http(sc_outbound *o, const char *method, const char *url, const char *const *headers,
                             const void *body, size_t body_len, uint64_t timeout_ms, sc_out_http_cb cb, void *data)
{
    sc_out_req *r = req_new(o, K_HTTP, timeout_ms, data);
    r->http_cb = cb;
    const char *err = o->closing ? SC_OUT_ERR_SHUTDOWN : http_setup(r, method, url, headers, body, body_len);
    return submit(o, r, err);
}

static bool valid_smtp_host(const char *h)
{
    if (!h || !*h || strlen(h) > 253)
        return false;
    for (; *h; h++)
        if (!((*h >= 'A' && *h <= 'Z') || (*h >= 'a' && *h <= 'z') || (*h >= '0' && *h <= '9') ||
              strchr(".-:_", *h)))
            return false;
    return true;
}

/* The Message-ID's right-hand side: the sender's domain, or a name that cannot collide. */
static void message_id(const char *from_addr, char *out, size_t outlen)
{
    char id[40];
    sc_random_id("sc", id, sizeof(id));
    const char *at = strrchr(from_addr, '@');
    snprintf(out, outlen, "%s.%lld@%s", id, (long long)time(NULL), at && at[1] ? at + 1 : "staccato.invalid");
}

static const char *smtp_setup(sc_out_req *r, const sc_smtp_config *smtp, const sc_mail *mail)
{
    sc_outbound *o = r->o;
    char from[320], to[320], url[320], mid[400], boundary[48];
    if (!smtp || !mail || !valid_smtp_host(smtp->host) || smtp->port > 65535 ||
        sc_outbound_mail_check(mail) != 0 || sc_outbound_mail_address(mail->from, from, sizeof(from)) != 0 ||
        sc_outbound_mail_address(mail->to, to, sizeof(to)) != 0)
        return SC_OUT_ERR_INVALID;
    bool has_user = smtp->user && *smtp->user;
    if (has_user && (has_line_break(smtp->user) || (smtp->password && has_line_break(smtp->password))))
        return SC_OUT_ERR_INVALID;

    if (mail->message_id)
        snprintf(mid, sizeof(mid), "%s", mail->message_id);
    else
        message_id(from, mid, sizeof(mid));
    sc_random_id("sc_part", boundary, sizeof(boundary));
    for (char *p = boundary; *p; p++)
        if (*p == '-')
            *p = '_';
    sc_outbound_mail_build(&r->upload, mail, time(NULL), mid, boundary);

    unsigned port = smtp->port ? smtp->port : 25;
    bool ipv6 = strchr(smtp->host, ':') != NULL;
    /* The URL's path is what curl says in EHLO. */
    snprintf(url, sizeof(url), "%s://%s%s%s:%u/%s", port == 465 ? "smtps" : "smtp", ipv6 ? "[" : "", smtp->host,
             ipv6 ? "]" : "", port, o->ehlo);
    r->list = curl_slist_append(NULL, to);
    if (!r->list) {
        fprintf(stderr, "%s:%d: out of memory\n", __FILE__, __LINE__);
        abort();
    }

    CURL *e = easy_new(r);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(e, CURLOPT_USE_SSL, (long)(smtp->require_tls ? CURLUSESSL_ALL : CURLUSESSL_TRY));
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, r->list);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, r);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->upload.len);
    if (has_user) {
        curl_easy_setopt(e, CURLOPT_USERNAME, smtp->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, smtp->password ? smtp->password : "");
    }
    return NULL;
}

sc_out_req *sc_outbound_smtp(sc_outbound *o, const sc_smtp_config *smtp, const sc_mail *mail, uint64_t timeout_ms,
                             sc_out_done_cb cb, void *data)
{
    sc_out_req *r = req_new(o, K_SMTP, timeout_ms, data);
    r->done_cb = cb;
    const char *err = o->closing ? SC_OUT_ERR_SHUTDOWN : smtp_setup(r, smtp, mail);
    return submit(o, r, err);
}

/* ---- the client -------------------------------------------------------------------------------------------- */

/* The EHLO name: this host's name when it is a plain DNS name, else "localhost". */
static void set_ehlo_name(sc_outbound *o)
{
    size_t n = sizeof(o->ehlo);
    if (uv_os_gethostname(o->ehlo, &n) != 0 || !n)
        goto fallback;
    for (const char *p = o->ehlo; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '-'))
            goto fallback;
    return;
fallback:
    snprintf(o->ehlo, sizeof(o->ehlo), "localhost");
}

sc_outbound *sc_outbound_new(uv_loop_t *loop, const sc_outbound_config *cfg)
{
    if (global_refs++ == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "%s:%d: curl_global_init failed\n", __FILE__, __LINE__);
        abort();
    }
    sc_outbound *o = sc_calloc(sizeof(*o));
    o->loop = loop;
    o->cfg = *cfg;
    if (!o->cfg.max_transfers)
        o->cfg.max_transfers = DEFAULT_MAX_TRANSFERS;
    if (!o->cfg.default_timeout_ms)
        o->cfg.default_timeout_ms = DEFAULT_TIMEOUT_MS;
    if (!o->cfg.max_body_bytes)
        o->cfg.max_body_bytes = DEFAULT_MAX_BODY;
    set_ehlo_name(o);
    o->multi = curl_multi_init();
    if (!o->multi) {
        fprintf(stderr, "%s:%d: curl_multi_init failed\n", __FILE__, __LINE__);
        abort();
    }
    curl_multi_setopt(o->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(o->multi, CURLMOPT_SOCKETDATA, o);
    curl_multi_setopt(o->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(o->multi, CURLMOPT_TIMERDATA, o);
    /* Idle connections kept for reuse: as many as can be busy at once. */
    curl_multi_setopt(o->multi, CURLMOPT_MAXCONNECTS, (long)o->cfg.max_transfers);
    uv_timer_init(loop, &o->timer);
    uv_timer_init(loop, &o->queue_tick);
    uv_idle_init(loop, &o->idle);
    o->timer.data = o->queue_tick.data = o->idle.data = o;
    o->open_handles = 3;
    return o;
}

static void maybe_finish_close(sc_outbound *o)
{
    if (!o->closing || o->open_handles > 0)
        return;
    void (*cb)(void *) = o->on_closed;
    void *data = o->on_closed_data;
    free(o->socks);
    free(o);
    if (--global_refs == 0)
        curl_global_cleanup();
    if (cb)
        cb(data);
}

static void on_handle_closed(uv_handle_t *h)
{
    sc_outbound *o = h->data;
    o->open_handles--;
    maybe_finish_close(o);
}

void sc_outbound_close(sc_outbound *o, void (*on_closed)(void *data), void *data)
{
    if (o->closing)
        return;
    o->closing = true;
    o->on_closed = on_closed;
    o->on_closed_data = data;
    sc_out_req *r;
    while ((r = o->active.head)) {
        list_unlink(&o->active, r);
        curl_multi_remove_handle(o->multi, r->easy);
        finish(r, SC_OUT_ERR_SHUTDOWN);
    }
    while ((r = o->queue.head)) {
        list_unlink(&o->queue, r);
        finish(r, SC_OUT_ERR_SHUTDOWN);
    }
    /* This closes the cached connections and may still call the socket callbacks, so every handle stays valid
     * until it returns. */
    curl_multi_cleanup(o->multi);
    o->multi = NULL;
    deliver_all(o);
    for (size_t fd = 0; fd < o->nsocks; fd++)
        if (o->socks[fd])
            sock_release(o->socks[fd], false);
    uv_close((uv_handle_t *)&o->timer, on_handle_closed);
    uv_close((uv_handle_t *)&o->queue_tick, on_handle_closed);
    uv_close((uv_handle_t *)&o->idle, on_handle_closed);
}
