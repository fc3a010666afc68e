/* Outbound HTTP and SMTP on the event loop: libcurl's multi interface driven by libuv.
 *
 * Every transfer runs on the one loop (socket and timer callbacks from curl mapped to uv_poll and one uv_timer),
 * with connection reuse, a per-transfer deadline, a cap on concurrent transfers (the rest wait in a queue), a cap
 * on response body size, and cancellation. Callbacks are never called from inside the submitting call, and never
 * after sc_outbound_cancel. All later integrations (OAuth, lyrics, mood analysis, object storage, e-mail) use
 * this.
 *
 * libcurl's global state is set up lazily: the first sc_outbound_new calls curl_global_init and the close of the
 * last client calls curl_global_cleanup (a reference count), so main needs no call of its own. Everything runs on
 * the loop's thread; host names are resolved by curl's threaded resolver, which does not block the loop. */
#ifndef SC_OUTBOUND_H
#define SC_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Error sentinels passed as `err`; compare by pointer. */
extern const char SC_OUT_ERR_TIMEOUT[];   /* the deadline passed */
extern const char SC_OUT_ERR_TOO_LARGE[]; /* the response body passed the size cap */
extern const char SC_OUT_ERR_CONNECT[];   /* could not connect / resolve / TLS handshake */
extern const char SC_OUT_ERR_PROTOCOL[];  /* the peer answered in a way we could not use (incl. SMTP 4xx) */
extern const char SC_OUT_ERR_REFUSED[];   /* SMTP: refused for good (a 5xx reply: unknown mailbox, failed AUTH) */
extern const char SC_OUT_ERR_BUSY[];      /* the wait queue is full */
extern const char SC_OUT_ERR_SHUTDOWN[];  /* the client is closing */
extern const char SC_OUT_ERR_INVALID[];   /* the call cannot be made as given: a bad URL, scheme, method, header
                                           * line, address or SMTP host (a caller's mistake; nothing was sent) */

typedef struct sc_outbound sc_outbound;
typedef struct sc_out_req sc_out_req;

/* Zero fields take defaults: 16 transfers, a 30 s timeout and an 8 MiB body cap; max_queue 0 means no queue (a
 * transfer that finds every slot taken fails with SC_OUT_ERR_BUSY). */
typedef struct sc_outbound_config {
    unsigned max_transfers;      /* concurrent transfers; more wait in a queue */
    unsigned max_queue;          /* waiting transfers; beyond: SC_OUT_ERR_BUSY */
    uint64_t default_timeout_ms; /* when a call passes 0 */
    size_t max_body_bytes;       /* response bodies larger than this fail with SC_OUT_ERR_TOO_LARGE */
} sc_outbound_config;

/* Creates a client on the loop: one curl multi handle, whose connection cache lets consecutive transfers to the
 * same host reuse connections. Aborts if curl cannot be initialised (like running out of memory). */
sc_outbound *sc_outbound_new(uv_loop_t *loop, const sc_outbound_config *cfg);
/* Fails pending transfers with SC_OUT_ERR_SHUTDOWN, cleans up curl, and calls on_closed once every handle is
 * closed; the client is freed then. The SHUTDOWN callbacks run inside this call (a transfer submitted from one of
 * them fails with SC_OUT_ERR_SHUTDOWN in the same pass); after it returns no callback runs but on_closed. */
void sc_outbound_close(sc_outbound *o, void (*on_closed)(void *data), void *data);

typedef struct sc_http_response {
    long status;
    const char *content_type; /* may be NULL */
    const char *body;         /* NUL-terminated for convenience; body_len excludes the NUL */
    size_t body_len;
} sc_http_response;

/* res is valid during the call only; NULL when err is set. An HTTP error status is not an err. */
typedef void (*sc_out_http_cb)(void *data, const char *err, const sc_http_response *res);

/* An HTTP request. headers is a NULL-terminated list of "Name: value" lines (may be NULL); body may be NULL.
 * Everything is copied. timeout_ms 0: the default. The deadline counts from this call, so time spent in the queue
 * is part of it. Only http:// and https:// URLs are accepted; redirects are not followed (a 3xx is a response).
 * A request with a body (or a POST, PUT or PATCH without one) sends it with Content-Length; pass a Content-Type
 * header, or curl says application/x-www-form-urlencoded. The returned handle is valid until the callback has
 * returned or sc_outbound_cancel was called, whichever comes first. */
sc_out_req *sc_outbound_http(sc_outbound *o, const char *method, const char *url, const char *const *headers,
                             const void *body, size_t body_len, uint64_t timeout_ms, sc_out_http_cb cb,
                             void *data);

typedef struct sc_smtp_config {
    const char *host;
    unsigned port;
    const char *user; /* empty or NULL: no authentication */
    const char *password;
    bool require_tls; /* true: fail unless STARTTLS works; false: use STARTTLS when offered */
} sc_smtp_config;

typedef struct sc_mail {
    const char *from;
    const char *to;
    const char *subject;
    const char *text;            /* plain-text body */
    const char *attachment_name; /* NULL: no attachment */
    const char *attachment_type; /* e.g. "application/json" */
    const void *attachment;
    size_t attachment_len;
    const char *message_id; /* "left@right" for the Message-ID header (the same for every attempt to send
                             * one message lets the recipient tell a repeat); NULL: a random one */
} sc_mail;

typedef void (*sc_out_done_cb)(void *data, const char *err);

/* Sends one message (MIME, with the attachment base64-encoded). Everything is copied. The message carries Date,
 * Message-ID and MIME-Version headers; a subject that is not plain ASCII is encoded (RFC 2047). from and to are
 * addresses, optionally written "Name <address>" in ASCII. Port 465 speaks TLS from the start (smtps); any other
 * port (0 means 25) uses STARTTLS when offered, or fails with SC_OUT_ERR_CONNECT when require_tls is set and the
 * server does not offer it. A permanent rejection (a 5xx reply, failed AUTH) is SC_OUT_ERR_REFUSED, a transient
 * one (4xx) SC_OUT_ERR_PROTOCOL like a connection broken mid-way. Credentials are
 * sent in the clear when the server offers no STARTTLS and require_tls is false: set require_tls with them unless
 * the server is local. The returned handle is valid as for sc_outbound_http. */
sc_out_req *sc_outbound_smtp(sc_outbound *o, const sc_smtp_config *smtp, const sc_mail *mail, uint64_t timeout_ms,
                             sc_out_done_cb cb, void *data);

/* The callback will not be called; the transfer is removed from curl at once. r may be NULL; it must not be a
 * request whose callback has already returned (calling it from inside that callback does nothing). */
void sc_outbound_cancel(sc_out_req *r);

#endif
