/* staccato: settings, signals, listeners, worker processes, the loop and an orderly shutdown. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/db.h"
#include "api/jobs.h"
#include "api/media_cache.h"
#include "api/openapi.h"
#include "api/ratelimit.h"
#include "api/respond.h"
#include "api/token_versions.h"
#include "api/uploads.h"
#include "api/user_cli.h"
#include "auth/password.h"
#include "cache/redis.h"
#include "core/arena.h"
#include "core/log.h"
#include "db/migrate.h"
#include "db/pg.h"
#include "http/host.h"
#include "http/server.h"
#include "net/addr.h"
#include "net/listener.h"
#include "settings.h"

#ifndef STACCATO_VERSION
#define STACCATO_VERSION "0.0.0"
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "staccato %s: a music streaming API server\n\n"
            "Usage: staccato [COMMAND] [OPTIONS]\n\n"
            "Commands:\n"
            "  serve        run the HTTP server (default)\n"
            "  worker       run only the background job workers (no HTTP listener); exits on SIGTERM\n"
            "  migrate      apply database migrations (DATABASE_URL) and exit\n"
            "  openapi      print the API description (OpenAPI 3.1 JSON, as GET /openapi.json serves it) and "
            "exit\n"
            "  user         manage accounts: user create|set-role|delete|list (see staccato user)\n\n"
            "Options:\n"
            "  --help       show this help and exit\n"
            "  --version    print the version and exit\n\n"
            "Settings (flags win over environment variables, which win over the settings file):\n",
            STACCATO_VERSION);
    sc_config_print_help(sc_settings_table, sc_settings_count, f);
}

typedef struct worker {
    uv_loop_t *loop;
    sc_server *server;
    sc_app app;
    uv_signal_t sigterm, sigint, sighup;
    bool has_sighup;
    bool draining;
    uv_check_t log_check;
    unsigned stopping; /* of the HTTP server and the job workers, those still stopping */
} worker;

static void on_log_check(uv_check_t *h) { sc_log_flush(); }

static void on_drained(void *data)
{
    worker *w = data;
    /* The database, cache and outbound client stay up until the last in-flight request has been answered and the
     * job workers have recorded their last outcome. */
    if (--w->stopping > 0)
        return;
    sc_token_versions_close(w->app.tokens, NULL, NULL); /* before the pool: it cancels its load */
    w->app.tokens = NULL;
    sc_pg_pool_close(w->app.pg, NULL, NULL);
    sc_redis_close(w->app.redis, NULL, NULL);
    sc_outbound_close(w->app.outbound, NULL, NULL);
    sc_media_cache_close(w->app.media, NULL, NULL);
    w->app.media = NULL;
    /* Closing the signal handles restores the default actions; a SIGTERM arriving between here and exit must stay
     * pending instead of killing a process that is about to exit cleanly. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    uv_close((uv_handle_t *)&w->sigterm, NULL);
    uv_close((uv_handle_t *)&w->sigint, NULL);
    signal(SIGTERM, SIG_IGN); /* closing restored the default action; any thread may be the one to take it */
    signal(SIGINT, SIG_IGN);
    if (w->has_sighup)
        uv_close((uv_handle_t *)&w->sighup, NULL);
    uv_close((uv_handle_t *)&w->log_check, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    worker *w = h->data;
    /* The handlers stay installed while draining: a repeated signal must not fall back to the default action
     * and kill the process halfway through its shutdown. */
    if (w->draining) {
        sc_log_info("received %s again: still draining", signum == SIGTERM ? "SIGTERM" : "SIGINT");
        return;
    }
    w->draining = true;
    sc_log_info("received %s: draining connections", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    sc_jobs *jobs = w->app.jobs;
    w->app.jobs = NULL;
    w->stopping = (jobs != NULL) + (w->server != NULL);
    if (jobs)
        sc_jobs_stop(jobs, on_drained, w);
    if (w->server)
        sc_server_shutdown(w->server, on_drained, w);
}

static void on_walk(uv_handle_t *h, void *arg)
{
    sc_log_error("handle still open at exit: %s", uv_handle_type_name(h->type));
}

/* Runs one event loop serving fd (-1: none, for staccato worker) and the job workers until a signal drains them.
 * Returns the process exit code. */
/* TLS: the configuration in force (replaced on SIGHUP) and the port of the TLS listener. */
static sc_tls_config *tls_config;
static unsigned tls_port;
static sc_host_list allowed_hosts; /* STACCATO_ALLOWED_HOSTS, parsed before workers fork */
static char *openapi;              /* the API description, built before workers fork */
static size_t openapi_len;

static void on_sighup(uv_signal_t *h, int signum)
{
    worker *w = h->data;
    const sc_settings *st = w->app.settings;
    if (!tls_config) {
        sc_log_info("SIGHUP: no TLS certificate to reload");
        return;
    }
    char err[256];
    sc_tls_config *fresh = sc_tls_config_load(st->tls_cert, st->tls_key, st->tls_chain,
                                              (uint32_t)st->tls_ticket_lifetime_s, err, sizeof(err));
    if (!fresh) {
        sc_log_error("SIGHUP: keeping the current certificate: %s", err);
        return;
    }
    sc_server_set_tls(w->server, fresh);
    sc_tls_config_unref(fresh);
    sc_log_info("SIGHUP: certificate and key reloaded from %s", st->tls_cert);
}

static int run_worker(const sc_settings *st, const sc_cidr_list *trusted, int fd, int tls_fd)
{
    worker w = {0};
    w.loop = uv_default_loop();
    sc_app *app = &w.app;
    app->debug_routes = st->debug_routes;
    app->settings = st;
    app->loop = w.loop;
    app->local_limits = sc_ratelimit_new();
    app->compat_openmusic = strcmp(st->compat, "openmusic") == 0;
    sc_pg_config pgc = {
        .conninfo = st->database_url,
        .pool_size = (unsigned)st->db_pool_size,
        .max_queue = (unsigned)st->db_queue_max,
        .pipeline_depth = (unsigned)st->db_pipeline_depth,
        .query_timeout_ms = st->db_query_timeout_ms,
        .connect_timeout_ms = st->db_connect_timeout_ms,
        .max_schema_version = sc_migrate_latest(),
    };
    app->pg = sc_pg_pool_new(w.loop, &pgc, sc_api_stmts, SC_STMT_COUNT);
    char redis_host[256], err[256];
    int redis_port = (int)st->redis_port;
    snprintf(redis_host, sizeof(redis_host), "%s", st->redis_host);
    if (*st->redis_url &&
        sc_redis_parse_url(st->redis_url, redis_host, sizeof(redis_host), &redis_port, err, sizeof(err)) != 0)
        sc_log_error("%s", err); /* validated at startup; unreachable */
    sc_redis_config redis_cfg = {redis_host, redis_port, st->redis_timeout_ms, st->db_connect_timeout_ms};
    app->redis = sc_redis_new(w.loop, &redis_cfg);
    sc_outbound_config outbound_cfg = {.max_transfers = 16,
                                       .max_queue = 4096,
                                       .default_timeout_ms = st->smtp_timeout_ms};
    app->outbound = sc_outbound_new(w.loop, &outbound_cfg);
    sc_server_config cfg = {
        .limits =
            {
                .max_connections = st->max_connections,
                .max_header_bytes = st->max_header_bytes,
                .max_headers = st->max_headers,
                .max_url_bytes = st->max_url_bytes,
                .max_body_bytes = st->max_body_bytes,
                .max_write_buffer = st->max_write_buffer,
                .header_timeout_ms = st->header_timeout_ms,
                .body_timeout_ms = st->body_timeout_ms,
                .keepalive_timeout_ms = st->keepalive_timeout_ms,
                .send_timeout_ms = st->send_timeout_ms,
                .drain_timeout_ms = st->drain_timeout_ms,
                .tls_handshake_timeout_ms = st->tls_handshake_timeout_ms,
                .max_body_memory = st->max_body_memory,
                .max_connections_per_address = st->max_connections_per_address,
                .min_body_rate = st->min_body_rate,
                .min_body_rate_grace_ms = st->min_body_rate_grace_ms,
                .max_json_body_bytes = st->max_json_body_bytes,
                .max_output_memory = st->max_output_memory,
            },
        .https_redirect = st->https_redirect,
        .tls_port = tls_port,
        .hsts_max_age = st->hsts_max_age,
        .trusted_proxies = trusted,
        .allowed_hosts = &allowed_hosts,
        .cors = sc_api_cors_policy(),
        .app = app,
    };
    cfg.routes = sc_api_routes(app, &cfg.nroutes);
    app->openapi = openapi;
    app->openapi_len = openapi_len;
    uint64_t h = 1469598103934665603ull; /* FNV-1a: the ETag changes with the document */
    for (size_t i = 0; i < openapi_len; i++)
        h = (h ^ (unsigned char)openapi[i]) * 1099511628211ull;
    snprintf(app->openapi_etag, sizeof(app->openapi_etag), "\"%016llx\"", (unsigned long long)h);
    cfg.error_body = sc_api_error_body;
    w.server = fd >= 0 ? sc_server_new(w.loop, &cfg) : NULL;
    if (w.server)
        app->media = sc_media_cache_new(w.loop, st->database_url, (size_t)st->media_cache_entries,
                                        st->media_cache_ttl_s * 1000, st->db_connect_timeout_ms,
                                        st->db_listen_heartbeat_ms);
    if (w.server)
        app->tokens = sc_token_versions_new(w.loop, app->pg, st->database_url,
                                            st->access_token_age + st->token_leeway_s, st->db_connect_timeout_ms,
                                            st->db_listen_heartbeat_ms);
    int rc = w.server ? sc_server_listen_fd(w.server, fd, (int)st->backlog, false) : 0;
    if (rc == 0 && w.server && tls_fd >= 0) {
        sc_server_set_tls(w.server, tls_config);
        rc = sc_server_listen_fd(w.server, tls_fd, (int)st->backlog, true);
    }
    if (rc != 0) {
        sc_log_error("cannot listen: %s", uv_strerror(rc));
        return 1;
    }
    uv_signal_init(w.loop, &w.sigterm);
    uv_signal_init(w.loop, &w.sigint);
    w.sigterm.data = w.sigint.data = &w;
    uv_signal_start(&w.sigterm, on_signal, SIGTERM);
    uv_signal_start(&w.sigint, on_signal, SIGINT);
    if (w.server) { /* without TLS there is nothing to reload, but SIGHUP must not end the server */
        uv_signal_init(w.loop, &w.sighup);
        w.sighup.data = &w;
        uv_signal_start(&w.sighup, on_sighup, SIGHUP);
        uv_unref((uv_handle_t *)&w.sighup);
        w.has_sighup = true;
    }
    uv_check_init(w.loop, &w.log_check);
    uv_check_start(&w.log_check, on_log_check);
    uv_unref((uv_handle_t *)&w.log_check);
    if (!w.server || strcmp(st->jobs, "inline") == 0)
        app->jobs = sc_api_jobs_new(app);

    if (w.server)
        sc_api_upload_start(app); /* media dir, startup sweep of upload leftovers */
    uv_run(w.loop, UV_RUN_DEFAULT);

    if (w.server)
        sc_server_free(w.server);
    sc_ratelimit_free(app->local_limits);
    int exit_code = 0;
    if (uv_loop_close(w.loop) != 0) {
        uv_walk(w.loop, on_walk, NULL);
        sc_log_error("event loop still has open handles at exit");
        exit_code = 1;
    }
    sc_log_info("stopped");
    return exit_code;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void log_listening(const char *host, unsigned port, unsigned long long workers)
{
    const char *shown = *host ? host : "0.0.0.0";
    bool v6 = strchr(shown, ':') != NULL;
    sc_log_info("listening on http://%s%s%s:%u (%llu worker%s)", v6 ? "[" : "", shown, v6 ? "]" : "", port,
                workers, workers == 1 ? "" : "s");
}

/* The parent of several workers: forwards SIGTERM/SIGINT, restarts a worker that dies unexpectedly (unless they
 * keep dying), and exits once all have exited. */
static int supervise(const sc_settings *st, const sc_cidr_list *trusted, unsigned port)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);

    size_t n = (size_t)st->workers;
    pid_t *pids = calloc(n, sizeof(pid_t));
    bool stopping = false;
    int status_code = 0, restarts = 0;
    size_t alive = 0;
    for (;;) {
        for (size_t i = 0; i < n && !stopping; i++) {
            if (pids[i])
                continue;
            if (restarts > 10) {
                sc_log_error("workers keep exiting; stopping");
                stopping = true;
                for (size_t k = 0; k < n; k++)
                    if (pids[k])
                        kill(pids[k], SIGTERM);
                status_code = 1;
                break;
            }
            pid_t pid = fork();
            if (pid == 0) {
                sc_tls_after_fork();
                signal(SIGHUP, SIG_IGN); /* until the worker's loop handles it */
                sigprocmask(SIG_UNBLOCK, &set, NULL);
                char err[256];
                unsigned bound;
                int fd = sc_listener_open(st->host, port, true, true, (int)st->backlog, &bound, err, sizeof(err));
                int tls_fd = -1;
                if (fd >= 0 && tls_config)
                    tls_fd = sc_listener_open(st->host, tls_port, true, true, (int)st->backlog, &bound, err,
                                              sizeof(err));
                if (fd < 0) {
                    sc_log_error("%s", err);
                    _exit(1);
                }
                if (tls_config && tls_fd < 0) {
                    sc_log_error("%s", err);
                    _exit(1);
                }
                _exit(run_worker(st, trusted, fd, tls_fd));
            }
            if (pid < 0) {
                sc_log_error("fork: %s", strerror(errno));
                status_code = 1;
                stopping = true;
                break;
            }
            pids[i] = pid;
            alive++;
        }
        if (alive == 0)
            break;
        int sig;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) { /* certificate reload: each worker reloads its own */
            for (size_t i = 0; i < n; i++)
                if (pids[i])
                    kill(pids[i], SIGHUP);
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping)
                sc_log_info("received %s: stopping workers", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            stopping = true;
            for (size_t i = 0; i < n; i++)
                if (pids[i])
                    kill(pids[i], sig);
            continue;
        }
        int wstatus;
        pid_t pid;
        while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
            for (size_t i = 0; i < n; i++) {
                if (pids[i] != pid)
                    continue;
                pids[i] = 0;
                alive--;
                bool clean = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
                if (!clean)
                    status_code = 1;
                if (!stopping) {
                    sc_log_error("worker %d exited unexpectedly (status %d); restarting", (int)pid, wstatus);
                    restarts++;
                }
            }
        }
    }
    free(pids);
    sc_log_info("all workers stopped");
    return status_code;
}

int main(int argc, char **argv)
{
    int argi = 1;
    const char *command = "serve";
    if (argi < argc && argv[argi][0] != '-') {
        command = argv[argi];
        argi++;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("staccato %s\n", STACCATO_VERSION);
            return 0;
        }
    }
    if (strcmp(command, "user") == 0)
        argc = sc_user_cli_take_args(argc, argv, argi);
    else if (strcmp(command, "serve") != 0 && strcmp(command, "migrate") != 0 && strcmp(command, "worker") != 0 &&
             strcmp(command, "openapi") != 0) {
        fprintf(stderr, "staccato: unknown command '%s' (see --help)\n", command);
        return 2;
    }

    sc_settings st = {0};
    sc_cidr_list trusted = {0};
    char err[512] = "";
    int code = 2;
    if (sc_settings_load(&st, argc, argv, &argi, err, sizeof(err)) != 0) {
        fprintf(stderr, "staccato: %s\n", err);
        goto out;
    }
    if (argi < argc) {
        fprintf(stderr, "staccato: unexpected argument '%s' (see --help)\n", argv[argi]);
        goto out;
    }
    /* libuv sizes its threadpool from the environment when the first work is queued, which is after this. */
    char pool[24];
    snprintf(pool, sizeof(pool), "%llu", st.threadpool_size);
    setenv("UV_THREADPOOL_SIZE", pool, 1);
    if (sc_cidr_list_parse(st.trusted_proxies, &trusted, err, sizeof(err)) != 0) {
        fprintf(stderr, "staccato: %s\n", err);
        goto out;
    }
    if (*st.redis_url) {
        char host[256];
        int port;
        if (sc_redis_parse_url(st.redis_url, host, sizeof(host), &port, err, sizeof(err)) != 0) {
            fprintf(stderr, "staccato: %s\n", err);
            goto out;
        }
    }
    if (sc_host_list_parse(st.allowed_hosts, &allowed_hosts, err, sizeof(err)) != 0 ||
        sc_api_metrics_check(&st, err, sizeof(err)) != 0) {
        fprintf(stderr, "staccato: %s\n", err);
        goto out;
    }
    if (sc_api_jobs_check(&st, err, sizeof(err)) != 0) {
        fprintf(stderr, "staccato: %s\n", err);
        goto out;
    }
    sc_log_configure((sc_log_level)sc_log_level_parse(st.log_level), strcmp(st.log_format, "json") == 0,
                     st.access_log);
    if (strcmp(command, "migrate") == 0) {
        code = sc_migrate_run(st.database_url, false) == 0 ? 0 : 1;
        goto out;
    }
    /* The description of the table this configuration serves; a route without one is a build mistake. */
    sc_app table_of = {.debug_routes = st.debug_routes};
    size_t nroutes;
    const sc_route *routes = sc_api_routes(&table_of, &nroutes);
    char why[4096];
    openapi = sc_api_openapi_build(routes, nroutes, st.debug_routes, &openapi_len, why, sizeof(why));
    if (!openapi) {
        fprintf(stderr, "staccato: the API description is incomplete: %s\n", why);
        goto out;
    }
    if (strcmp(command, "openapi") == 0) {
        code = fwrite(openapi, 1, openapi_len, stdout) == openapi_len && fputc('\n', stdout) != EOF ? 0 : 1;
        goto out;
    }
    if (strcmp(command, "user") == 0) {
        code = sc_user_cli(&st, argc, argv);
        goto out;
    }
    /* Keys and the dummy password hash are made before workers fork, so that all of them share them. */
    sc_password_params pw = {(uint32_t)st.argon2_t, (uint32_t)st.argon2_m_kib, (uint32_t)st.argon2_p};
    if (sc_api_auth_init(&st, err, sizeof(err)) != 0) {
        fprintf(stderr, "staccato: %s\n", err);
        goto out;
    }
    uint64_t hashers = st.password_concurrency ? st.password_concurrency : st.threadpool_size / 2;
    sc_password_limits pwl = {(uint32_t)(hashers ? hashers : 1), (uint32_t)st.password_queue_max};
    if (sc_password_init(&pw, &pwl) != 0) {
        fprintf(stderr, "staccato: unusable Argon2 parameters\n");
        goto out;
    }
    /* A database migrated by a newer release may hold data this build would misread: refuse to start. One that
     * cannot be reached now is fine: the pool keeps trying, and /ready says so. */
    int schema;
    code = 1;
    if (sc_migrate_current(st.database_url, 2, &schema) == 0) {
        if (schema > sc_migrate_latest()) {
            sc_log_error("database schema version %d is newer than this build knows (%d): refusing to start",
                         schema, sc_migrate_latest());
            goto out;
        }
        if (schema < sc_migrate_latest())
            sc_log_warn("database schema version %d is older than this build needs (%d): run staccato migrate",
                        schema, sc_migrate_latest());
        if (sc_user_ensure_admin(&st) != 0)
            sc_log_error("could not create the admin account %s", st.admin_username);
    } else {
        sc_log_warn("database not reachable at startup; will keep trying");
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    if (strcmp(command, "worker") == 0) {
        code = run_worker(&st, &trusted, -1, -1); /* job workers only: no listener */
        goto out;
    }
    unsigned port;
    bool many = st.workers > 1;
    if (st.tls_port) {
        /* Certificates are read before anything listens, so that a bad one stops the start with one message. */
        if (!*st.tls_cert || !*st.tls_key) {
            fprintf(stderr, "staccato: TLS_PORT needs TLS_CERT and TLS_KEY\n");
            code = 2;
            goto out;
        }
        if (sc_tls_global_init(err, sizeof(err)) != 0 ||
            !(tls_config = sc_tls_config_load(st.tls_cert, st.tls_key, st.tls_chain,
                                              (uint32_t)st.tls_ticket_lifetime_s, err, sizeof(err)))) {
            fprintf(stderr, "staccato: TLS: %s\n", err);
            code = 2;
            goto out;
        }
    }
    /* With several workers this socket only reserves the port (and learns it when PORT=0); each worker listens
     * on a socket of its own bound to the same port. */
    int fd = sc_listener_open(st.host, (unsigned)st.port, many, !many, (int)st.backlog, &port, err, sizeof(err));
    if (fd < 0) {
        sc_log_error("%s", err);
        goto out;
    }
    log_listening(st.host, port, st.workers);
    int tls_fd = -1;
    if (tls_config) {
        tls_fd = sc_listener_open(st.host, (unsigned)st.tls_port, many, !many, (int)st.backlog, &tls_port, err,
                                  sizeof(err));
        if (tls_fd < 0) {
            sc_log_error("%s", err);
            close(fd);
            goto out;
        }
        const char *shown = *st.host ? st.host : "0.0.0.0";
        bool v6 = strchr(shown, ':') != NULL;
        sc_log_info("listening on https://%s%s%s:%u", v6 ? "[" : "", shown, v6 ? "]" : "", tls_port);
    }
    if (many) {
        code = supervise(&st, &trusted, port);
        close(fd);
        if (tls_fd >= 0)
            close(tls_fd);
    } else {
        code = run_worker(&st, &trusted, fd, tls_fd);
    }
out:
    free(openapi);
    openapi = NULL;
    sc_cidr_list_free(&trusted);
    sc_host_list_free(&allowed_hosts);
    sc_settings_free(&st);
    sc_api_auth_shutdown();
    sc_password_shutdown();
    sc_tls_config_unref(tls_config);
    tls_config = NULL;
    sc_tls_global_cleanup();
    sc_arena_pool_drain();
    sc_log_shutdown();
    return code;
}
