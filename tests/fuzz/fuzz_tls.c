/* libFuzzer driver: client bytes through the TLS input path of the real connection code (the TLS transport's
 * read, the handshake, record decryption, the read kicks for bytes buffered inside the session, encrypted
 * responses, close_notify, the handshake timeout's bookkeeping) and from there into the HTTP code.
 *
 * One server with a TLS configuration (an ECDSA P-256 test certificate embedded below, written to a temporary
 * file for sc_tls_config_load) lives for the whole run. Each input is one client connection: one end of a
 * socketpair is adopted as a TLS connection, and the input's first byte picks what the rest is:
 *
 *   mode 0  the client's ciphertext from the first byte on: ClientHellos, truncated, malformed or interleaved
 *           records, alerts, garbage (the seed corpus has real ClientHellos and cuts of them);
 *   mode 1  a real handshake first (an in-process mbedTLS client, resuming with a session ticket after the first
 *           input so that each input costs no public-key operation), then the rest as raw bytes on the established
 *           session: records the server must decrypt and authenticate, and reject;
 *   mode 2  a real handshake, then the rest as plaintext sent through the client's session in records of a size
 *           picked by bits 2-4 of the first byte (1 byte up to 16 KiB): HTTP over TLS, pipelined requests inside
 *           one record, plaintext left inside the session when the parser pauses.
 *
 * Then end of input (a close_notify in modes 1 and 2, then FIN), the loop runs a bounded number of non-blocking
 * iterations while the driver reads and discards what the server sends, the client end is closed and the loop
 * runs until the connection is gone. A connection that outlives its client aborts, as in fuzz_http. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/net_sockets.h> /* the MBEDTLS_ERR_NET_* codes */
#include <mbedtls/ssl.h>

#include "api/api.h"
#include "core/log.h"
#include "http/method.h"
#include "http/request.h"
#include "http/server.h"
#include "net/addr.h"
#include "net/tls.h"
#include "settings.h"

#define RUN_STEPS 60 /* loop iterations while the client is connected */
/* Handshake steps with public-key work run on the threadpool, so the client's handshake and a connection's end
 * (which waits for such a step in flight) are bounded by time rather than by loop iterations. The bound only
 * turns a hang into a report; it is far above what any step takes, even instrumented. */
#define WAIT_LIMIT_MS 20000

/* Test material: a self-signed ECDSA P-256 certificate (CN=staccato-fuzz) and its key, made with openssl for this
 * driver only. */
static const char test_key[] = "-----BEGIN EC PRIVATE KEY-----\n"
                               "MHcCAQEEIIzWDZPcVxDMnrkFBtKvoe+J99tbQIO8tUg53YxACihdoAoGCCqGSM49\n"
                               "AwEHoUQDQgAEzIPrNimsNTBSe5t2FzIHJbGORcMglbKHMgZevnVNSYbUgnSPRlrT\n"
                               "Bb19M3vwy57NZI298JN2XOAm1s3g3Jc2VQ==\n"
                               "-----END EC PRIVATE KEY-----\n";
static const char test_cert[] = "-----BEGIN CERTIFICATE-----\n"
                                "MIIBpDCCAUmgAwIBAgIUF4XjOvvhu1ZP1GTa30f8jSZC5dMwCgYIKoZIzj0EAwIw\n"
                                "GDEWMBQGA1UEAwwNc3RhY2NhdG8tZnV6ejAgFw0yNjExMjIwMzM4MjhaGA8yMTI2\n"
                                "MTAyOTAzMzgyOFowGDEWMBQGA1UEAwwNc3RhY2NhdG8tZnV6ejBZMBMGByqGSM49\n"
                                "AgEGCCqGSM49AwEHA0IABMyD6zYprDUwUnubdhcyByWxjkXDIJWyhzIGXr51TUmG\n"
                                "1IJ0j0Za0wW9fTN78MuezWSNvfCTdlzgJtbN4NyXNlWjbzBtMB0GA1UdDgQWBBTq\n"
                                "AYxjjHrm53lEgDirCpbnGCZbWDAfBgNVHSMEGDAWgBTqAYxjjHrm53lEgDirCpbn\n"
                                "GCZbWDAPBgNVHRMBAf8EBTADAQH/MBoGA1UdEQQTMBGCCWxvY2FsaG9zdIcEfwAA\n"
                                "ATAKBggqhkjOPQQDAgNJADBGAiEA+x1SJwvBHfIHnEfvtr29Vr2Tzsqnc2OEWLgk\n"
                                "gLCiHs4CIQDgJ01BsYPK4YFYqccczeHIxfa6F5rNATklROhBnT5Y4Q==\n"
                                "-----END CERTIFICATE-----\n";

static uv_loop_t loop;
static sc_server *server;
/* /metrics keeps its gate (local clients only), which reads the settings. */
static sc_settings settings = {.metrics = "local", .metrics_token = ""};
static sc_app app = {.debug_routes = true, .settings = &settings};
static sc_route routes[8];
static bool trace; /* FUZZ_TLS_TRACE in the environment: say how each input went on stderr */

/* The in-process client of modes 1 and 2: a deterministic generator (this is a test client, its secrets do not
 * matter) and the session of its first full handshake, resumed by ticket afterwards. */
static mbedtls_ssl_config client_conf;
static mbedtls_ctr_drbg_context client_drbg;
static mbedtls_ssl_session client_session;
static bool have_session;
static const mbedtls_ecp_group_id client_curves[] = {MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_NONE};
static const char *client_alpn[] = {"http/1.1", NULL};

static int fixed_entropy(void *ctx, unsigned char *out, size_t len)
{
    memset(out, 0x5a, len);
    return 0;
}

static void write_file(const char *dir, const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    signal(SIGPIPE, SIG_IGN);
    trace = getenv("FUZZ_TLS_TRACE") != NULL;
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull < 0 || dup2(devnull, STDOUT_FILENO) < 0)
        abort();
    close(devnull);
    sc_log_configure(SC_LOG_ERROR, false, true);

    size_t n, k = 0;
    const sc_route *api = sc_api_routes(&app, &n);
    for (size_t i = 0; i < n && k < sizeof(routes) / sizeof(routes[0]); i++)
        if (api[i].handler == sc_api_health || api[i].handler == sc_api_metrics ||
            api[i].handler == sc_api_debug_echo)
            routes[k++] = api[i];
    if (k != 3)
        abort(); /* the API table changed: revisit this driver */

    /* The certificate and key go through the real loader, which reads files. */
    char err[256], dir[] = "/tmp/fuzz_tls.XXXXXX", cert[64], key[64];
    if (!mkdtemp(dir))
        abort();
    write_file(dir, "cert.pem", test_cert, cert, sizeof(cert));
    write_file(dir, "key.pem", test_key, key, sizeof(key));
    if (sc_tls_global_init(err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_tls: %s\n", err);
        abort();
    }
    sc_tls_config *tls = sc_tls_config_load(cert, key, NULL, 3600, err, sizeof(err));
    unlink(cert);
    unlink(key);
    rmdir(dir);
    if (!tls) {
        fprintf(stderr, "fuzz_tls: %s\n", err);
        abort();
    }

    if (uv_loop_init(&loop) != 0)
        abort();
    sc_server_config cfg = {
        .limits =
            {
                .max_connections = 8,
                .max_header_bytes = 1024,
                .max_headers = 8,
                .max_url_bytes = 256,
                .max_body_bytes = 4096,
                .max_write_buffer = 2048,
                .header_timeout_ms = 3600000,
                .body_timeout_ms = 3600000,
                .keepalive_timeout_ms = 3600000,
                .send_timeout_ms = 3600000,
                .drain_timeout_ms = 3600000,
                .tls_handshake_timeout_ms = 3600000,
            },
        .routes = routes,
        .nroutes = k,
        .hsts_max_age = 600,
        .app = &app,
    };
    server = sc_server_new(&loop, &cfg);
    sc_server_set_tls(server, tls);
    sc_tls_config_unref(tls); /* the server holds its own reference */

    mbedtls_ctr_drbg_init(&client_drbg);
    if (mbedtls_ctr_drbg_seed(&client_drbg, fixed_entropy, NULL, (const unsigned char *)"fuzz-client", 11) != 0)
        abort();
    mbedtls_ssl_config_init(&client_conf);
    if (mbedtls_ssl_config_defaults(&client_conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0)
        abort();
    mbedtls_ssl_conf_authmode(&client_conf, MBEDTLS_SSL_VERIFY_NONE);
    mbedtls_ssl_conf_rng(&client_conf, mbedtls_ctr_drbg_random, &client_drbg);
    mbedtls_ssl_conf_curves(&client_conf, client_curves);
    if (mbedtls_ssl_conf_alpn_protocols(&client_conf, client_alpn) != 0)
        abort();
    mbedtls_ssl_session_init(&client_session);
    return 0;
}

/* Reads and discards what the server wrote. */
static void drain(int fd)
{
    char buf[16384];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        if (trace)
            fprintf(stderr, "fuzz_tls: server sent %zd bytes\n", n);
    }
}

static int client_send(void *ctx, const unsigned char *buf, size_t len)
{
    ssize_t n = write(*(int *)ctx, buf, len);
    if (n >= 0)
        return (int)n;
    return errno == EAGAIN || errno == EINTR ? MBEDTLS_ERR_SSL_WANT_WRITE : MBEDTLS_ERR_NET_SEND_FAILED;
}

static int client_recv(void *ctx, unsigned char *buf, size_t len)
{
    ssize_t n = read(*(int *)ctx, buf, len);
    if (n > 0)
        return (int)n;
    if (n == 0)
        return MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY;
    return errno == EAGAIN || errno == EINTR ? MBEDTLS_ERR_SSL_WANT_READ : MBEDTLS_ERR_NET_RECV_FAILED;
}

/* uv_hrtime() WAIT_LIMIT_MS from now. */
static uint64_t wait_deadline(void) { return uv_hrtime() + (uint64_t)WAIT_LIMIT_MS * 1000000u; }

/* One non-blocking pass of the server's loop, then up to a millisecond's wait for the client's socket (or for a
 * threadpool step to finish). */
static void pump(int fd)
{
    uv_run(&loop, UV_RUN_NOWAIT);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    poll(&p, fd >= 0 ? 1 : 0, 1);
}

/* The client's handshake, the server's loop running in between. True when it completed. */
static bool client_handshake(mbedtls_ssl_context *ssl, int *fd)
{
    if (mbedtls_ssl_setup(ssl, &client_conf) != 0)
        abort();
    mbedtls_ssl_set_bio(ssl, fd, client_send, client_recv, NULL);
    if (have_session && mbedtls_ssl_set_session(ssl, &client_session) != 0)
        abort();
    uint64_t deadline = wait_deadline();
    while (uv_hrtime() < deadline) {
        int rc = mbedtls_ssl_handshake(ssl);
        if (rc == 0) {
            if (!have_session && mbedtls_ssl_get_session(ssl, &client_session) == 0)
                have_session = true;
            return true;
        }
        if (rc != MBEDTLS_ERR_SSL_WANT_READ && rc != MBEDTLS_ERR_SSL_WANT_WRITE) {
            fprintf(stderr, "fuzz_tls: the test client's handshake failed (-0x%04x)\n", (unsigned)-rc);
            abort(); /* the server refused a well-behaved client */
        }
        pump(*fd);
    }
    fprintf(stderr, "fuzz_tls: the test client's handshake did not complete in %d ms\n", WAIT_LIMIT_MS);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int mode = data[0] % 3;
    static const size_t record_sizes[] = {1, 2, 7, 64, 512, 1500, 4096, 16384};
    size_t record = record_sizes[(data[0] >> 2) & 7];
    data++;
    size--;

    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        abort();
    int sndbuf = 4096;
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    if (sc_server_adopt(server, fds[0], true) != 0)
        abort();
    if (fcntl(fds[1], F_SETFL, O_NONBLOCK) != 0)
        abort();

    mbedtls_ssl_context ssl;
    mbedtls_ssl_init(&ssl);
    bool session = mode != 0;
    if (session)
        client_handshake(&ssl, &fds[1]);

    size_t off = 0;
    bool shut = false;
    for (int step = 0; step < RUN_STEPS; step++) {
        if (!shut && off < size) {
            ssize_t w;
            if (mode == 2) {
                size_t len = size - off < record ? size - off : record;
                int rc = mbedtls_ssl_write(&ssl, data + off, len);
                w = rc > 0 ? rc : rc == MBEDTLS_ERR_SSL_WANT_WRITE ? -2 : -1;
            } else {
                w = write(fds[1], data + off, size - off);
                if (w < 0)
                    w = errno == EAGAIN || errno == EINTR ? -2 : -1;
            }
            if (w > 0)
                off += (size_t)w;
            else if (w == -1)
                off = size; /* the server closed its end: nothing more can be sent */
        }
        if (!shut && off == size) {
            if (session)
                mbedtls_ssl_close_notify(&ssl); /* best effort: the socket may be full or gone */
            shutdown(fds[1], SHUT_WR);
            shut = true;
        }
        drain(fds[1]);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    close(fds[1]);
    mbedtls_ssl_free(&ssl);
    uint64_t deadline = wait_deadline();
    while (uv_loop_alive(&loop) && uv_hrtime() < deadline)
        pump(-1);
    if (uv_loop_alive(&loop)) {
        fprintf(stderr, "fuzz_tls: the connection is still open %d ms after its client closed\n", WAIT_LIMIT_MS);
        abort();
    }
    sc_log_flush();
    return 0;
}
