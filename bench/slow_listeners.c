/* slow_listeners: many concurrent HTTP listeners that each read their stream slowly.
 *
 * Opens --conns connections to 127.0.0.1:--port, each sending "GET --path" and then reading the response at about
 * --rate-kib KiB/s: a timer ticks every --tick-ms and every connection gets rate * elapsed bytes of credit (a token
 * bucket holding at most one second's worth, so a listener that was starved may catch up a little), which it
 * spends reading from its socket. The socket's receive buffer is set small (--rcvbuf, before connect) so that the
 * server sees backpressure at once instead of filling megabytes of kernel buffers. When a response ends the
 * connection sends the next request (keep-alive) or reconnects (Connection: close, or closed by the server).
 *
 * Connections are opened in batches: at most --batch of them may be waiting for their response head at once, so
 * that the server's listen backlog is never overrun. Once every connection has received a response head (or
 * --ramp-timeout has passed) the measured window of --duration seconds starts; during it one line per second gives
 * the aggregate throughput, the connection counts and, with --pid, the server's VmRSS and CPU use. The last line is
 * machine-readable:
 *
 *   SLOW conns= connected= failed= closed_by_server= bad_status= bad_statuses= responses= duration_s= rx_bytes=
 *        rx_mib_s= want_mib_s= delivered_pct= per_conn_min= per_conn_p1= per_conn_median= per_conn_p99= per_conn_max=
 *        per_conn_want= starved= rss_start_kib= rss_peak_kib= rss_end_kib= hwm_kib= cpu_frac= client_cpu_frac=
 *
 * per_conn_*: bytes received by each connection slot during the window (a fairness figure: all equal to
 * per_conn_want = rate * duration when the server keeps up with everyone); starved: slots that received nothing
 * in the window; bad_statuses: the non-2xx responses as STATUS:COUNT,... (0: malformed); cpu_frac: the server's
 * utime + stime over the window (/proc/PID/stat) divided by the window's length, i.e. in cores; rss_*: the server's VmRSS (/proc/PID/status), sampled every tick; hwm_kib: its VmHWM at
 * the end (the peak of the whole process lifetime, start-up included).
 *
 * Linux only (epoll). Build: cc -O2 -Wall -Wextra -Werror -o slow_listeners bench/slow_listeners.c */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 2048
#define RETRY_MS 1000

enum state { S_IDLE, S_CONNECTING, S_HEAD, S_BODY };

typedef struct conn {
    int fd;
    uint32_t gen; /* bumped at each new socket: events of an old one are ignored */
    uint8_t state;
    bool readable;    /* edge-triggered EPOLLIN seen and not yet drained */
    bool close_after; /* the response said Connection: close */
    bool ever_head;   /* has received a response head at least once */
    bool waiting;     /* counted in `pending`: connecting, or its first response head has not come yet */
    uint16_t head_len;
    int64_t credit; /* bytes this connection may read now */
    uint64_t body_left;
    uint64_t win_bytes; /* bytes received during the measured window */
    int64_t retry_at;   /* S_IDLE: not before this time (ms) */
    char head[HEAD_MAX];
} conn;

static struct {
    const char *host;
    int port;
    const char *path;
    int conns;
    int rate_kib;
    int duration;
    int tick_ms;
    int rcvbuf;
    int batch;
    int ramp_timeout;
    int pid;
} opt = {"127.0.0.1", 0, NULL, 1000, 40, 30, 100, 16384, 500, 120, 0};

static conn *C;
static int ep;
static struct sockaddr_in addr;
static char request[1024];
static size_t request_len;
static int pending;     /* connecting or waiting for the first response head of the connection */
static int n_idle;      /* slots without a socket */
static int established; /* in S_HEAD or S_BODY */
static int heads_seen;  /* slots that have received a head at least once */
static bool measuring;
static uint64_t n_failed, n_closed, n_bad_status, n_responses, n_connects;
static uint64_t rx_total, rx_window;
static uint64_t status_count[600]; /* non-2xx responses by status (0: malformed head) */
static char rdbuf[256 * 1024];
static volatile sig_atomic_t stop;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: slow_listeners --port PORT --path PATH [--conns N] [--rate-kib KIB] [--duration S]\n"
            "                      [--tick-ms MS] [--rcvbuf BYTES] [--batch N] [--ramp-timeout S] [--pid SERVER_PID]\n"
            "  --conns 1000        concurrent listeners\n"
            "  --rate-kib 40       read rate of each listener, KiB/s\n"
            "  --duration 30       length of the measured window, seconds (after all listeners are connected)\n"
            "  --tick-ms 100       read timer period\n"
            "  --rcvbuf 16384      SO_RCVBUF of each socket, set before connect (the kernel doubles it)\n"
            "  --batch 500         connections that may wait for their response head at once\n"
            "  --ramp-timeout 120  give up waiting for all listeners to connect after this many seconds\n"
            "  --pid PID           the server process: sample its VmRSS, VmHWM and CPU time from /proc\n"
            "Only 127.0.0.1 is used.\n");
}

static int parse_int(const char *name, const char *v, int min, int max)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < min || x > max) {
        fprintf(stderr, "slow_listeners: %s must be an integer from %d to %d\n", name, min, max);
        exit(2);
    }
    return (int)x;
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            usage(stderr);
            exit(2);
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--port"))
            opt.port = parse_int(a, v, 1, 65535);
        else if (!strcmp(a, "--path"))
            opt.path = v;
        else if (!strcmp(a, "--conns"))
            opt.conns = parse_int(a, v, 1, 1000000);
        else if (!strcmp(a, "--rate-kib"))
            opt.rate_kib = parse_int(a, v, 1, 10000000);
        else if (!strcmp(a, "--duration"))
            opt.duration = parse_int(a, v, 1, 86400);
        else if (!strcmp(a, "--tick-ms"))
            opt.tick_ms = parse_int(a, v, 1, 10000);
        else if (!strcmp(a, "--rcvbuf"))
            opt.rcvbuf = parse_int(a, v, 0, 64 << 20);
        else if (!strcmp(a, "--batch"))
            opt.batch = parse_int(a, v, 1, 1000000);
        else if (!strcmp(a, "--ramp-timeout"))
            opt.ramp_timeout = parse_int(a, v, 1, 86400);
        else if (!strcmp(a, "--pid"))
            opt.pid = parse_int(a, v, 1, 1 << 30);
        else {
            fprintf(stderr, "slow_listeners: unknown option %s\n", a);
            usage(stderr);
            exit(2);
        }
    }
    if (!opt.port || !opt.path || opt.path[0] != '/') {
        usage(stderr);
        exit(2);
    }
}

/* ---- the server's /proc figures ---------------------------------------------------------------------------- */

static long proc_status_kib(const char *key)
{
    char fn[64], line[256];
    snprintf(fn, sizeof(fn), "/proc/%d/status", opt.pid);
    FILE *f = fopen(fn, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* utime + stime of the whole process (all threads), in clock ticks; -1 when unreadable. */
static long long proc_cpu_ticks(void)
{
    char fn[64], buf[2048];
    snprintf(fn, sizeof(fn), "/proc/%d/stat", opt.pid);
    FILE *f = fopen(fn, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may contain spaces */
    if (!p)
        return -1;
    /* After ")": state(3) ppid(4) ... utime(14) stime(15). */
    long long ut = 0, st = 0;
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
        field++;
        if (field == 14)
            ut = atoll(tok);
        else if (field == 15) {
            st = atoll(tok);
            return ut + st;
        }
    }
    return -1;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ---- connections ------------------------------------------------------------------------------------------- */

static uint64_t ev_data(int i) { return (uint64_t)(uint32_t)i | ((uint64_t)C[i].gen << 32); }

static void conn_reset(int i, int64_t retry_at)
{
    conn *c = &C[i];
    if (c->fd >= 0)
        close(c->fd); /* also removes it from the epoll set */
    if (c->waiting)
        pending--;
    if (c->state == S_HEAD || c->state == S_BODY)
        established--;
    if (c->state != S_IDLE)
        n_idle++;
    c->waiting = false;
    c->fd = -1;
    c->state = S_IDLE;
    c->readable = false;
    c->head_len = 0;
    c->retry_at = retry_at;
}

static void conn_start(int i, int64_t now)
{
    conn *c = &C[i];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (n_failed++ < 5)
            fprintf(stderr, "slow_listeners: socket: %s\n", strerror(errno));
        c->retry_at = now + RETRY_MS;
        return;
    }
    if (opt.rcvbuf > 0) /* before connect: the window scale is negotiated in the handshake */
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &opt.rcvbuf, sizeof(opt.rcvbuf));
    c->gen++;
    c->fd = fd;
    c->state = S_CONNECTING;
    c->waiting = true;
    pending++;
    n_idle--;
    n_connects++;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u64 = ev_data(i)};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        fprintf(stderr, "slow_listeners: epoll_ctl: %s\n", strerror(errno));
        exit(1);
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 && errno != EINPROGRESS) {
        if (n_failed++ < 5)
            fprintf(stderr, "slow_listeners: connect: %s\n", strerror(errno));
        conn_reset(i, now + RETRY_MS);
    }
}

static bool send_request(int i)
{
    ssize_t n = send(C[i].fd, request, request_len, MSG_NOSIGNAL);
    return n == (ssize_t)request_len; /* a few hundred bytes into an empty socket: all or nothing */
}

/* Parses a complete response head: status, Content-Length, Connection. Returns the status, -1 when malformed. */
static int parse_head(conn *c, size_t len)
{
    c->head[len] = 0;
    if (strncmp(c->head, "HTTP/1.", 7) != 0 || len < 12)
        return -1;
    int status = atoi(c->head + 9);
    bool have_len = false;
    c->close_after = c->head[7] == '0';
    for (char *line = strstr(c->head, "\r\n"); line && line[2] != '\r'; line = strstr(line + 2, "\r\n")) {
        char *h = line + 2;
        if (!strncasecmp(h, "Content-Length:", 15)) {
            c->body_left = strtoull(h + 15, NULL, 10);
            have_len = true;
        } else if (!strncasecmp(h, "Connection:", 11)) {
            char *v = h + 11;
            while (*v == ' ')
                v++;
            c->close_after = !strncasecmp(v, "close", 5);
        }
    }
    if (!have_len)
        return -1; /* the streams always carry Content-Length */
    return status;
}

/* Consumes n received bytes of connection i (head, then body). Returns false when the connection was reset. */
static bool consume(int i, const char *p, size_t n, int64_t now)
{
    conn *c = &C[i];
    while (n) {
        if (c->state == S_HEAD) {
            size_t room = (size_t)(HEAD_MAX - 1 - c->head_len), take = n < room ? n : room;
            memcpy(c->head + c->head_len, p, take);
            size_t have = c->head_len + take;
            c->head[have] = 0;
            char *end = strstr(c->head, "\r\n\r\n");
            if (!end) {
                if (have >= HEAD_MAX - 1) {
                    n_bad_status++;
                    status_count[0]++;
                    conn_reset(i, now + RETRY_MS);
                    return false;
                }
                c->head_len = (uint16_t)have;
                return true;
            }
            size_t head_bytes = (size_t)(end + 4 - c->head);
            size_t used = head_bytes - c->head_len;
            int status = parse_head(c, head_bytes);
            if (status < 200 || status > 299) {
                status_count[status > 0 && status < 600 ? status : 0]++;
                if (n_bad_status++ < 5)
                    fprintf(stderr, "slow_listeners: response status %d\n", status);
                conn_reset(i, now + RETRY_MS);
                return false;
            }
            if (!c->ever_head) {
                c->ever_head = true;
                heads_seen++;
            }
            if (c->waiting) {
                c->waiting = false;
                pending--;
            }
            c->head_len = 0;
            c->state = S_BODY;
            p += used;
            n -= used;
        }
        if (c->state == S_BODY) {
            size_t take = n < c->body_left ? n : (size_t)c->body_left;
            c->body_left -= take;
            p += take;
            n -= take;
            if (c->body_left == 0) {
                n_responses++;
                if (c->close_after || n) { /* n: bytes after the body we did not ask for */
                    conn_reset(i, now);
                    return false;
                }
                c->state = S_HEAD;
                if (!send_request(i)) {
                    n_closed++;
                    conn_reset(i, now);
                    return false;
                }
            }
        }
    }
    return true;
}

/* Reads up to the connection's credit. */
static void conn_read(int i, int64_t now)
{
    conn *c = &C[i];
    while (c->readable && c->credit > 0 && c->fd >= 0) {
        size_t want = c->credit < (int64_t)sizeof(rdbuf) ? (size_t)c->credit : sizeof(rdbuf);
        ssize_t n = recv(c->fd, rdbuf, want, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->readable = false;
                return;
            }
            n_closed++; /* reset by the server */
            conn_reset(i, now);
            return;
        }
        if (n == 0) {
            /* Closed by the server: in the middle of a response, or while a request waits for its answer. */
            n_closed++;
            conn_reset(i, now);
            return;
        }
        c->credit -= n;
        rx_total += (uint64_t)n;
        if (measuring) {
            rx_window += (uint64_t)n;
            c->win_bytes += (uint64_t)n;
        }
        if ((size_t)n < want)
            c->readable = false; /* drained: the next edge says when more arrives */
        if (!consume(i, rdbuf, (size_t)n, now))
            return;
    }
}

static void on_event(struct epoll_event *ev, int64_t now)
{
    int i = (int)(uint32_t)ev->data.u64;
    conn *c = &C[i];
    if ((uint32_t)(ev->data.u64 >> 32) != c->gen || c->fd < 0)
        return; /* for a socket closed since */
    if (c->state == S_CONNECTING) {
        if (!(ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || (ev->events & (EPOLLERR | EPOLLHUP))) {
            if (n_failed++ < 5)
                fprintf(stderr, "slow_listeners: connect: %s\n", strerror(err ? err : ECONNRESET));
            conn_reset(i, now + RETRY_MS);
            return;
        }
        struct epoll_event mod = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u64 = ev_data(i)};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &mod);
        c->state = S_HEAD;
        established++;
        if (!send_request(i)) {
            n_failed++;
            conn_reset(i, now + RETRY_MS);
            return;
        }
    }
    if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        c->readable = true;
        /* A new response head is read at once (from the credit) so that the ramp-up is not paced by the tick. */
        if (c->state == S_HEAD)
            conn_read(i, now);
    }
}

/* Opens connections while fewer than --batch wait for their response head. */
static void start_some(int64_t now)
{
    static int next;
    static int64_t last;
    if (n_idle == 0 || pending >= opt.batch || now == last)
        return; /* nothing to do, or scanned already in this millisecond */
    last = now;
    for (int k = 0; k < opt.conns && pending < opt.batch; k++) {
        int i = next;
        next = (next + 1) % opt.conns;
        if (C[i].state == S_IDLE && C[i].retry_at <= now)
            conn_start(i, now);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)opt.conns + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)opt.conns + 64 ? rl.rlim_max : (rlim_t)opt.conns + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)opt.conns + 16) {
            fprintf(stderr, "slow_listeners: RLIMIT_NOFILE %llu is too low for %d connections\n",
                    (unsigned long long)rl.rlim_cur, opt.conns);
            return 1;
        }
    }

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)opt.port);
    inet_pton(AF_INET, opt.host, &addr.sin_addr);
    int rl_len = snprintf(request, sizeof(request),
                          "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: slow_listeners\r\nAccept: */*\r\n\r\n",
                          opt.path, opt.host, opt.port);
    if (rl_len <= 0 || (size_t)rl_len >= sizeof(request)) {
        fprintf(stderr, "slow_listeners: path too long\n");
        return 2;
    }
    request_len = (size_t)rl_len;

    C = calloc((size_t)opt.conns, sizeof(conn));
    if (!C) {
        perror("calloc");
        return 1;
    }
    for (int i = 0; i < opt.conns; i++)
        C[i].fd = -1;
    n_idle = opt.conns;
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("epoll_create1");
        return 1;
    }

    const double rate = opt.rate_kib * 1024.0; /* bytes per second per connection */
    const int64_t cap = (int64_t)rate;         /* token bucket: at most one second's worth */
    const long clk = sysconf(_SC_CLK_TCK);
    printf("slow_listeners: %d listeners at %d KiB/s each on 127.0.0.1:%d%s, SO_RCVBUF %d, tick %d ms, "
           "batches of %d\n",
           opt.conns, opt.rate_kib, opt.port, opt.path, opt.rcvbuf, opt.tick_ms, opt.batch);

    struct epoll_event evs[1024];
    int64_t t_start = now_ms(), last_tick = t_start, next_tick = t_start + opt.tick_ms, next_report = t_start + 1000;
    int64_t win_start = 0, win_end = 0;
    long long cpu0 = -1;
    double self0 = 0;
    long rss_start = -1, rss_peak = -1;
    uint64_t rx_last = 0;
    bool ramp_warned = false;

    for (int i = 0; i < opt.conns; i++)
        C[i].credit = (int64_t)(rate * opt.tick_ms / 1000.0);

    while (!stop) {
        int64_t now = now_ms();
        if (!measuring || now < win_end)
            start_some(now);
        int timeout = (int)(next_tick - now_ms());
        if (timeout < 0)
            timeout = 0;
        int n = epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), timeout);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 1;
        }
        now = now_ms();
        for (int k = 0; k < n; k++)
            on_event(&evs[k], now);
        if (now < next_tick)
            continue;

        /* Tick: credit every listener for the time that passed, and read. */
        int64_t add = (int64_t)(rate * (double)(now - last_tick) / 1000.0);
        last_tick = now;
        next_tick += opt.tick_ms;
        if (next_tick <= now)
            next_tick = now + opt.tick_ms;
        for (int i = 0; i < opt.conns; i++) {
            conn *c = &C[i];
            c->credit += add;
            if (c->credit > cap)
                c->credit = cap;
            if (c->fd >= 0 && c->readable && c->state != S_CONNECTING)
                conn_read(i, now);
        }
        if (opt.pid) {
            long rss = proc_status_kib("VmRSS");
            if (measuring && rss > rss_peak)
                rss_peak = rss;
        }

        if (!measuring) {
            bool all = heads_seen >= opt.conns;
            bool late = now - t_start >= (int64_t)opt.ramp_timeout * 1000;
            if (now >= next_report) {
                printf("ramp-up %5.1fs: %d/%d listeners have their response, %d connected, %d waiting, "
                       "failed %" PRIu64 ", closed by server %" PRIu64 ", non-2xx %" PRIu64 "\n",
                       (now - t_start) / 1000.0, heads_seen, opt.conns, established, pending, n_failed, n_closed,
                       n_bad_status);
                next_report += 1000;
            }
            if (all || late) {
                if (!all && !ramp_warned) {
                    fprintf(stderr,
                            "slow_listeners: only %d of %d listeners got a response within %d s; measuring anyway\n",
                            heads_seen, opt.conns, opt.ramp_timeout);
                    ramp_warned = true;
                }
                printf("ramp-up done in %.1fs: %d/%d listeners streaming; measuring for %d s\n",
                       (now - t_start) / 1000.0, heads_seen, opt.conns, opt.duration);
                measuring = true;
                win_start = now;
                win_end = now + (int64_t)opt.duration * 1000;
                next_report = now + 1000;
                rx_last = 0;
                rx_window = 0;
                for (int i = 0; i < opt.conns; i++) {
                    C[i].win_bytes = 0;
                    C[i].credit = 0; /* credit banked during the ramp-up is not spent in the window */
                }
                if (opt.pid) {
                    cpu0 = proc_cpu_ticks();
                    rss_start = rss_peak = proc_status_kib("VmRSS");
                }
                self0 = self_cpu_s();
            }
            continue;
        }

        if (now >= next_report) {
            double mib = (rx_window - rx_last) / 1048576.0;
            rx_last = rx_window;
            printf("t=%3llds %8.2f MiB/s (%6.1f KiB/s per listener) connected %d, failed %" PRIu64
                   ", closed by server %" PRIu64 ", non-2xx %" PRIu64 ", responses done %" PRIu64,
                   (long long)((now - win_start + 500) / 1000), mib, mib * 1024.0 / opt.conns, established, n_failed,
                   n_closed, n_bad_status, n_responses);
            if (opt.pid)
                printf(", server VmRSS %.1f MiB", proc_status_kib("VmRSS") / 1024.0);
            printf("\n");
            next_report += 1000;
        }
        if (now >= win_end)
            break;
    }

    int64_t now = now_ms();
    double secs = (now - win_start) / 1000.0;
    if (!measuring || secs <= 0) {
        fprintf(stderr, "slow_listeners: interrupted before the measured window\n");
        return 1;
    }
    long long cpu1 = opt.pid ? proc_cpu_ticks() : -1;
    long rss_end = opt.pid ? proc_status_kib("VmRSS") : -1;
    long hwm = opt.pid ? proc_status_kib("VmHWM") : -1;
    double cpu_frac = (cpu0 >= 0 && cpu1 >= 0) ? (double)(cpu1 - cpu0) / (double)clk / secs : -1;
    double self_frac = (self_cpu_s() - self0) / secs;

    uint64_t *v = malloc(sizeof(uint64_t) * (size_t)opt.conns);
    int starved = 0;
    for (int i = 0; i < opt.conns; i++) {
        v[i] = C[i].win_bytes;
        starved += v[i] == 0;
    }
    qsort(v, (size_t)opt.conns, sizeof(uint64_t), cmp_u64);
    int last = opt.conns - 1;
    uint64_t vmin = v[0], vmax = v[last], vmed = v[last / 2], vp1 = v[last / 100], vp99 = v[last - last / 100];
    double want = rate * secs;
    double mib_s = rx_window / 1048576.0 / secs, want_mib_s = rate * opt.conns / 1048576.0;

    printf("window %.1fs: %.2f MiB/s received in all (%.2f MiB/s wanted: %.1f%%); per listener min %.1f, p1 %.1f, "
           "median %.1f, p99 %.1f, max %.1f KiB (wanted %.1f KiB); %d received nothing\n",
           secs, mib_s, want_mib_s, 100.0 * mib_s / want_mib_s, vmin / 1024.0, vp1 / 1024.0, vmed / 1024.0,
           vp99 / 1024.0, vmax / 1024.0, want / 1024.0, starved);
    if (opt.pid)
        printf("server: VmRSS %.1f MiB at the start of the window, peak %.1f MiB, %.1f MiB at the end, VmHWM %.1f MiB; "
               "CPU %.3f cores\n",
               rss_start / 1024.0, rss_peak / 1024.0, rss_end / 1024.0, hwm / 1024.0, cpu_frac);
    printf("client CPU: %.3f cores\n", self_frac);
    FILE *ss = fopen("/proc/net/sockstat", "r"); /* where the unsent bytes wait: kernel socket buffers */
    char sl[256];
    while (ss && fgets(sl, sizeof(sl), ss))
        if (!strncmp(sl, "TCP:", 4))
            printf("kernel /proc/net/sockstat (both ends, mem in pages): %s", sl);
    if (ss)
        fclose(ss);
    char statuses[256] = "none";
    size_t so = 0;
    for (int st = 0; st < 600; st++)
        if (status_count[st] && so < sizeof(statuses) - 32)
            so += (size_t)snprintf(statuses + so, sizeof(statuses) - so, "%s%d:%" PRIu64, so ? "," : "", st,
                                   status_count[st]);
    printf("SLOW conns=%d connected=%d failed=%" PRIu64 " closed_by_server=%" PRIu64 " bad_status=%" PRIu64
           " bad_statuses=%s responses=%" PRIu64 " duration_s=%.3f rx_bytes=%" PRIu64
           " rx_mib_s=%.2f want_mib_s=%.2f delivered_pct=%.1f"
           " per_conn_min=%" PRIu64 " per_conn_p1=%" PRIu64 " per_conn_median=%" PRIu64 " per_conn_p99=%" PRIu64
           " per_conn_max=%" PRIu64 " per_conn_want=%.0f starved=%d rss_start_kib=%ld rss_peak_kib=%ld"
           " rss_end_kib=%ld hwm_kib=%ld cpu_frac=%.3f client_cpu_frac=%.3f\n",
           opt.conns, established, n_failed, n_closed, n_bad_status, statuses, n_responses, secs, rx_window, mib_s,
           want_mib_s, 100.0 * mib_s / want_mib_s, vmin, vp1, vmed, vp99, vmax, want, starved, rss_start, rss_peak,
           rss_end, hwm, cpu_frac, self_frac);
    free(v);
    for (int i = 0; i < opt.conns; i++)
        if (C[i].fd >= 0)
            close(C[i].fd);
    free(C);
    close(ep);
    return 0;
}
