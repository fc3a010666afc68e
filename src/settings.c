#include "settings.h"

#include <stddef.h>

#define F(field) offsetof(sc_settings, field)
#define U(env, field, def, min, max, help)                                                                        \
    {                                                                                                             \
        env, SC_SET_UINT, F(field), def, help, min, max, NULL                                                     \
    }

const sc_setting sc_settings_table[] = {
    {"HOST", SC_SET_STRING, F(host), "0.0.0.0", "Address to listen on (IPv4 or IPv6, or a host name).", 0, 0,
     NULL},
    U("PORT", port, "5000", 0, 65535, "TCP port to listen on; 0 picks a free port (logged at start)."),
    U("STACCATO_WORKERS", workers, "1", 1, 256,
      "Worker processes sharing the port through SO_REUSEPORT, each with its own event loop."),
    U("STACCATO_MAX_CONNECTIONS", max_connections, "16384", 1, 10000000,
      "Open client connections per worker; above it new connections get 503 and are closed."),
    U("STACCATO_MAX_HEADER_BYTES", max_header_bytes, "16384", 256, 1048576,
      "Total bytes of request header names and values (431 beyond)."),
    U("STACCATO_MAX_HEADERS", max_headers, "100", 1, 10000, "Request header fields per request (431 beyond)."),
    U("STACCATO_MAX_URL_BYTES", max_url_bytes, "8192", 16, 1048576, "Length of the request target (414 beyond)."),
    U("STACCATO_MAX_BODY_BYTES", max_body_bytes, "1048576", 0, 1ULL << 40,
      "Request body size for routes without a limit of their own, other than the JSON routes (413 beyond, sent "
      "before the body is read)."),
    U("STACCATO_HEADER_TIMEOUT_MS", header_timeout_ms, "10000", 10, 3600000,
      "Time allowed from the first byte of a request to the end of its headers (408 beyond)."),
    U("STACCATO_BODY_TIMEOUT_MS", body_timeout_ms, "30000", 10, 3600000,
      "Time allowed without receiving body bytes while a body is being read (408 beyond)."),
    U("STACCATO_KEEPALIVE_TIMEOUT_MS", keepalive_timeout_ms, "60000", 10, 86400000,
      "Idle time after which a keep-alive connection is closed."),
    U("STACCATO_SEND_TIMEOUT_MS", send_timeout_ms, "30000", 10, 3600000,
      "Time allowed without write progress before a client that stopped reading is disconnected."),
    U("STACCATO_MAX_WRITE_BUFFER", max_write_buffer, "1048576", 1024, 1ULL << 32,
      "Unsent response bytes per connection above which the server stops reading that client."),
    U("STACCATO_DRAIN_TIMEOUT_MS", drain_timeout_ms, "10000", 0, 3600000,
      "On SIGTERM/SIGINT, time allowed for in-flight requests before connections are closed."),
    U("STACCATO_BACKLOG", backlog, "4096", 1, 65535, "Listen backlog (the kernel caps it at net.core.somaxconn)."),
    U("STACCATO_MAX_BODY_MEMORY", max_body_memory, "67108864", 0, 1ULL << 40,
      "Bytes of request bodies buffered at once per worker, counted from each body's Content-Length (chunked: as "
      "it arrives); a body that would pass it gets 503 with Retry-After and the connection is closed. 0: no "
      "limit."),
    U("STACCATO_MAX_CONNECTIONS_PER_ADDRESS", max_connections_per_address, "256", 0, 10000000,
      "Open connections per worker from one peer address; beyond it new ones get 503 and are closed (TLS: "
      "closed). "
      "Addresses in STACCATO_TRUSTED_PROXIES are exempt. 0: no cap."),
    U("STACCATO_MIN_BODY_RATE", min_body_rate, "1024", 0, 1ULL << 32,
      "Bytes per second a request body must average from its start, checked once STACCATO_MIN_BODY_RATE_GRACE_MS "
      "have passed (408 below it; uploads too). 0: no rate, only STACCATO_BODY_TIMEOUT_MS."),
    U("STACCATO_MIN_BODY_RATE_GRACE_MS", min_body_rate_grace_ms, "10000", 0, 3600000,
      "Time from the start of a body before STACCATO_MIN_BODY_RATE applies."),
    U("STACCATO_MAX_JSON_BODY_BYTES", max_json_body_bytes, "65536", 1, 1ULL << 40,
      "Request body size for the API's JSON routes (413 beyond, sent before the body is read); uploads have their "
      "own limits."),
    U("STACCATO_MAX_OUTPUT_MEMORY", max_output_memory, "67108864", 0, 1ULL << 40,
      "Response bytes queued in memory for slow readers per worker (file ranges sent by sendfile not counted); "
      "above it a connection with output still queued stops reading requests until its output drains or the "
      "total falls below it. 0: no limit."),
    {"STACCATO_LOG_LEVEL", SC_SET_ENUM, F(log_level), "info", "Error log level.", 0, 0, "debug|info|warn|error"},
    {"STACCATO_LOG_FORMAT", SC_SET_ENUM, F(log_format), "text", "Format of the error and access logs.", 0, 0,
     "text|json"},
    {"STACCATO_ACCESS_LOG", SC_SET_BOOL, F(access_log), "on", "One line per request on standard output.", 0, 0,
     NULL},
    {"STACCATO_TRUSTED_PROXIES", SC_SET_STRING, F(trusted_proxies), "",
     "Comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client in logs.", 0, 0,
     NULL},
    {"STACCATO_DEBUG_ROUTES", SC_SET_BOOL, F(debug_routes), "off",
     "Enable /_debug/echo and /_debug/sleep (for tests; never in production).", 0, 0, NULL},
    {"STACCATO_ENV_FILE", SC_SET_STRING, F(env_file), ".env",
     "Settings file of KEY=VALUE lines read before the environment (skipped when the default is absent).", 0, 0,
     NULL},
    {"DATABASE_URL", SC_SET_STRING, F(database_url), "",
     "PostgreSQL connection string or URL; empty: libpq's PGHOST, PGPORT, PGUSER... variables. Use a numeric "
     "address or a socket directory: the connect must not wait for DNS.",
     0, 0, NULL},
    U("STACCATO_DB_POOL_SIZE", db_pool_size, "4", 1, 1000, "PostgreSQL connections per worker."),
    U("STACCATO_DB_QUEUE_MAX", db_queue_max, "4096", 0, 10000000,
      "Queries waiting for a connection; beyond it requests get 503 at once."),
    U("STACCATO_DB_PIPELINE_DEPTH", db_pipeline_depth, "64", 1, 100000,
      "Queries in flight per connection (pipeline mode)."),
    U("STACCATO_DB_QUERY_TIMEOUT_MS", db_query_timeout_ms, "5000", 10, 3600000,
      "Deadline of a query (504 beyond); also the server-side statement_timeout."),
    U("STACCATO_DB_CONNECT_TIMEOUT_MS", db_connect_timeout_ms, "3000", 10, 600000,
      "Deadline of a connection attempt, setup included."),
    U("STACCATO_DB_LISTEN_HEARTBEAT_MS", db_listen_heartbeat_ms, "10000", 50, 3600000,
      "Interval of the SELECT 1 on each notification (LISTEN) connection; one not answered within "
      "STACCATO_DB_CONNECT_TIMEOUT_MS counts as a lost connection (the media cache is emptied, jobs looked for)."),
    {"REDIS_URL", SC_SET_STRING, F(redis_url), "",
     "Redis address as redis://HOST:PORT; empty: REDIS_HOST and REDIS_PORT.", 0, 0, NULL},
    {"REDIS_HOST", SC_SET_STRING, F(redis_host), "127.0.0.1",
     "Redis host (numeric address) when REDIS_URL is empty.", 0, 0, NULL},
    U("REDIS_PORT", redis_port, "6379", 1, 65535, "Redis port when REDIS_URL is empty."),
    U("STACCATO_REDIS_TIMEOUT_MS", redis_timeout_ms, "250", 1, 600000,
      "Deadline of a Redis command; beyond it a cache read is a miss."),
    {"ACCESS_TOKEN_KEY", SC_SET_STRING, F(access_token_key), "",
     "Secret for signing access tokens (HS256); at least 32 bytes. Empty: a random key per start (tokens do not "
     "survive a restart).",
     0, 0, NULL},
    {"REFRESH_TOKEN_KEY", SC_SET_STRING, F(refresh_token_key), "",
     "Secret for signing refresh tokens; must differ from ACCESS_TOKEN_KEY. Empty: a random key per start.", 0, 0,
     NULL},
    U("ACCESS_TOKEN_AGE", access_token_age, "1800", 10, 86400 * 7, "Access token lifetime in seconds."),
    U("STACCATO_REFRESH_TOKEN_AGE", refresh_token_age, "2592000", 60, 86400 * 365,
      "Refresh token lifetime in seconds."),
    U("STACCATO_TOKEN_LEEWAY_S", token_leeway_s, "30", 0, 600,
      "Clock skew allowed when checking exp, nbf and iat."),
    U("STACCATO_ARGON2_T", argon2_t, "2", 1, 100, "Argon2id iterations for password hashes."),
    U("STACCATO_ARGON2_M_KIB", argon2_m_kib, "19456", 8, 4194304, "Argon2id memory per hash in KiB."),
    U("STACCATO_ARGON2_P", argon2_p, "1", 1, 16, "Argon2id lanes per hash."),
    U("STACCATO_PASSWORD_MIN_LENGTH", password_min_length, "6", 1, 128,
      "Shortest password accepted at registration (OpenMusic clients use 6)."),
    U("STACCATO_LOGIN_MAX_PER_ACCOUNT", login_max_per_account, "10", 1, 1000000,
      "Failed login attempts per account from one client address per window (429 beyond)."),
    U("STACCATO_LOGIN_MAX_PER_ACCOUNT_GLOBAL", login_max_per_account_global, "100", 1, 1000000,
      "Failed login attempts per account per global window from all addresses it has not signed in from in the "
      "last 30 days (429 beyond); its owner's usual addresses are not locked out by them."),
    U("STACCATO_LOGIN_GLOBAL_WINDOW_S", login_global_window_s, "3600", 1, 604800,
      "Length of the per-account global login window in seconds."),
    U("STACCATO_LOGIN_MAX_PER_ADDRESS", login_max_per_address, "50", 1, 1000000,
      "Login attempts per client address per window, on any account (429 beyond)."),
    U("STACCATO_LOGIN_WINDOW_S", login_window_s, "60", 1, 86400,
      "Length of the login rate-limit window in seconds."),
    U("STACCATO_REGISTER_MAX_PER_ADDRESS", register_max_per_address, "50", 1, 1000000,
      "Registrations (POST /users, taken names included) per client address per registration window (429 "
      "beyond); the default lets an OpenMusic client register a few dozen test accounts at once."),
    U("STACCATO_REGISTER_WINDOW_S", register_window_s, "3600", 1, 604800,
      "Length of the registration rate-limit window in seconds."),
    U("STACCATO_EMAIL_VERIFY_TTL_S", email_verify_ttl_s, "86400", 1, 86400 * 30,
      "Lifetime in seconds of the e-mail verification links mailed at registration and on a new address."),
    U("STACCATO_PASSWORD_RESET_TTL_S", password_reset_ttl_s, "1800", 1, 86400,
      "Lifetime in seconds of a password-reset link (POST /users/password-reset); each works once."),
    U("STACCATO_PASSWORD_RESET_MAX_PER_ADDRESS", password_reset_max_per_address, "10", 1, 1000000,
      "Password-reset requests per client address, and per e-mail address asked for, per reset window (429 "
      "beyond)."),
    U("STACCATO_PASSWORD_RESET_WINDOW_S", password_reset_window_s, "3600", 1, 604800,
      "Length of the password-reset rate-limit window in seconds."),
    U("STACCATO_THREADPOOL_SIZE", threadpool_size, "4", 1, 128,
      "Threads of the threadpool per process (file opens and reads, upload writes, TLS handshake steps, password "
      "hashes); sets UV_THREADPOOL_SIZE."),
    U("STACCATO_PASSWORD_CONCURRENCY", password_concurrency, "0", 0, 128,
      "Password hashes and checks running at once per process; 0: half of STACCATO_THREADPOOL_SIZE (at least 1), "
      "so the rest of the threadpool stays free for I/O and TLS handshakes."),
    U("STACCATO_PASSWORD_QUEUE_MAX", password_queue_max, "128", 0, 1000000,
      "Password hashes and checks waiting for a place; beyond it registrations, logins and password changes get "
      "503 with Retry-After."),
    {"STACCATO_COOKIE_ORIGINS", SC_SET_STRING, F(cookie_origins), "",
     "Comma-separated origins (https://app.example) allowed to send cookie-authenticated unsafe requests, besides "
     "the server's own host, and those of STACCATO_CORS_ORIGINS.",
     0, 0, NULL},
    {"STACCATO_CORS_ORIGINS", SC_SET_STRING, F(cors_origins), "",
     "Comma-separated origins (scheme://host[:port], no path: https://app.example,http://127.0.0.1:3000) whose "
     "pages may call the API from a browser with credentials (CORS: the Origin echoed, "
     "Access-Control-Allow-Credentials: true); they are trusted for cookie-authenticated unsafe requests too. '*' "
     "alone: any origin may read answers, without credentials (no Access-Control-Allow-Credentials; the browser "
     "then sends no cookies and the cookie origin check trusts no one more). Empty: no CORS headers.",
     0, 0, NULL},
    {"BACKEND_CORS_ORIGINS", SC_SET_STRING, F(backend_cors_origins), "",
     "Used as STACCATO_CORS_ORIGINS when that is unset or empty (the name other back ends read).", 0, 0, NULL},
    U("STACCATO_CORS_MAX_AGE", cors_max_age, "600", 0, 86400,
      "Seconds a browser may cache a CORS preflight answer (Access-Control-Max-Age)."),
    {"STACCATO_COOKIE_SAMESITE", SC_SET_ENUM, F(cookie_samesite), "lax",
     "SameSite of the session cookies (?cookie=1 logins). lax: they are not sent on requests from other sites' "
     "pages; none: they are (SameSite=None; Secure), for a front end on another site calling with credentials, "
     "which needs explicit STACCATO_CORS_ORIGINS (unsafe requests stay limited to trusted origins).",
     0, 0, "lax|none"},
    {"STACCATO_COMPAT", SC_SET_ENUM, F(compat), "strict",
     "openmusic: anyone signed in (or not, as OpenMusic) may write albums, songs and covers nobody owns, and "
     "owned ones stay their owner's and admins'; strict: artists and admins, owners only.",
     0, 0, "strict|openmusic"},
    {"STACCATO_PUBLIC_URL", SC_SET_STRING, F(public_url), "",
     "Absolute base URL of the server for links it returns (coverUrl, stream URLs); empty: derived from the Host "
     "header when it is a valid host and allowed by STACCATO_ALLOWED_HOSTS, else localhost.",
     0, 0, NULL},
    {"STACCATO_ADMIN_USERNAME", SC_SET_STRING, F(admin_username), "",
     "With STACCATO_ADMIN_PASSWORD: at start, create this admin account (or make the existing one an admin).", 0,
     0, NULL},
    {"STACCATO_ADMIN_PASSWORD", SC_SET_STRING, F(admin_password), "",
     "Password for STACCATO_ADMIN_USERNAME's account.", 0, 0, NULL},
    U("TLS_PORT", tls_port, "0", 0, 65535, "Port of the HTTPS listener beside the plaintext one; 0: no TLS."),
    {"TLS_CERT", SC_SET_STRING, F(tls_cert), "",
     "Certificate file (PEM; the chain may follow the leaf). Reloaded on SIGHUP.", 0, 0, NULL},
    {"TLS_KEY", SC_SET_STRING, F(tls_key), "", "Private key file (PEM) of TLS_CERT. Reloaded on SIGHUP.", 0, 0,
     NULL},
    {"TLS_CHAIN", SC_SET_STRING, F(tls_chain), "", "Optional file of intermediate certificates.", 0, 0, NULL},
    U("STACCATO_TLS_HANDSHAKE_TIMEOUT_MS", tls_handshake_timeout_ms, "10000", 10, 600000,
      "Time allowed for a TLS handshake before the connection is closed."),
    U("STACCATO_TLS_TICKET_LIFETIME_S", tls_ticket_lifetime_s, "3600", 60, 86400,
      "Rotation period of the session-ticket keys: a ticket resumes for at most twice this; a reload (SIGHUP) "
      "makes new keys at once."),
    {"STACCATO_HTTPS_REDIRECT", SC_SET_BOOL, F(https_redirect), "off",
     "Answer plaintext requests (except /health) with 308 to the HTTPS listener.", 0, 0, NULL},
    U("STACCATO_HSTS_MAX_AGE", hsts_max_age, "0", 0, 63072000,
      "With TLS: Strict-Transport-Security max-age in seconds on HTTPS responses; 0: no header."),
    {"STACCATO_JOBS", SC_SET_ENUM, F(jobs), "inline",
     "inline: staccato serve also runs the background job workers; off: it only enqueues jobs, for separate "
     "staccato worker processes.",
     0, 0, "inline|off"},
    U("STACCATO_JOB_CONCURRENCY", job_concurrency, "4", 1, 1024, "Background jobs running at once per process."),
    U("STACCATO_JOB_LEASE_MS", job_lease_ms, "30000", 100, 86400000,
      "Lease of a claimed job, renewed while it runs; a job whose worker died runs again once it expires."),
    U("STACCATO_JOB_POLL_MS", job_poll_ms, "30000", 10, 3600000,
      "Fallback look at the job queue when no notification arrives (notifications wake workers at once)."),
    U("STACCATO_JOB_RETRY_BASE_MS", job_retry_base_ms, "5000", 1, 86400000,
      "Delay before a failed job's second attempt; it doubles with each further attempt."),
    U("STACCATO_JOB_RETRY_MAX_MS", job_retry_max_ms, "3600000", 1, 604800000, "Longest delay between attempts."),
    U("STACCATO_JOB_MAX_ATTEMPTS", job_max_attempts, "5", 1, 1000,
      "Attempts of a new job before it is dead (kept with its last error)."),
    U("STACCATO_EXPORT_MAX_PER_HOUR", export_max_per_hour, "10", 1, 1000000,
      "Playlist exports one user may request per hour (429 with Retry-After beyond)."),
    {"SMTP_HOST", SC_SET_STRING, F(smtp_host), "",
     "SMTP server for e-mail (exports, reports, address verification, password resets); empty: no e-mail.", 0, 0,
     NULL},
    U("SMTP_PORT", smtp_port, "587", 1, 65535,
      "SMTP port; 465 speaks TLS from the start, others STARTTLS when offered."),
    {"SMTP_USER", SC_SET_STRING, F(smtp_user), "", "SMTP user name; empty: no authentication.", 0, 0, NULL},
    {"SMTP_PASSWORD", SC_SET_STRING, F(smtp_password), "", "SMTP password.", 0, 0, NULL},
    {"MAIL_FROM", SC_SET_STRING, F(mail_from), "staccato@localhost",
     "Sender address of the e-mail the server sends.", 0, 0, NULL},
    {"STACCATO_SMTP_REQUIRE_TLS", SC_SET_BOOL, F(smtp_require_tls), "off",
     "Refuse to send e-mail unless the SMTP server offers STARTTLS (turn on with SMTP_USER).", 0, 0, NULL},
    U("STACCATO_SMTP_TIMEOUT_MS", smtp_timeout_ms, "30000", 100, 600000, "Deadline of sending one e-mail."),
    {"STACCATO_SCHEDULES", SC_SET_STRING, F(schedules), "",
     "Scheduled jobs as NAME@hourly|daily|weekly|monthly, comma-separated: monthly-artist-report, daily-digest.",
     0, 0, NULL},
    {"STACCATO_REPORT_EMAIL", SC_SET_STRING, F(report_email), "", "Where scheduled reports are e-mailed.", 0, 0,
     NULL},
    {"STACCATO_MEDIA_DIR", SC_SET_STRING, F(media_dir), "media",
     "Directory of uploaded audio and covers (files at <sha256[0:2]>/<sha256>), relative to the working directory "
     "unless absolute.",
     0, 0, NULL},
    {"STACCATO_DOCS_ASSETS", SC_SET_STRING, F(docs_assets), "deps/web/node_modules",
     "Directory of the npm packages swagger-ui-dist and redoc that GET /docs and GET /redoc load (deps/install.sh "
     "docs puts them there), relative to the working directory unless absolute; without them those pages answer "
     "503.",
     0, 0, NULL},
    U("STACCATO_STREAM_URL_TTL_S", stream_url_ttl_s, "3600", 10, 604800,
      "Lifetime in seconds of the signed stream URLs from GET /songs/{id}/stream-url."),
    U("STACCATO_MEDIA_CACHE_ENTRIES", media_cache_entries, "1024", 0, 1000000,
      "Songs and albums whose media facts and open file each process keeps for streaming (one descriptor each, "
      "for at most a quarter of the open-file limit); "
      "0: look every stream request up in the database."),
    U("STACCATO_MEDIA_CACHE_TTL_S", media_cache_ttl_s, "300", 1, 86400,
      "Longest time a cached media entry is used. Changes reach every process by notification at once; should a "
      "notification connection die unnoticed, within STACCATO_DB_LISTEN_HEARTBEAT_MS plus the connect timeout."),
    U("STACCATO_MAX_AUDIO_BYTES", max_audio_bytes, "209715200", 1, 1ULL << 40,
      "Largest audio upload in bytes (413 as soon as an upload passes it)."),
    {"STACCATO_FFPROBE", SC_SET_STRING, F(ffprobe), "ffprobe",
     "The ffprobe program that reads uploaded audio (duration, bitrate, tags): a name looked up in PATH, or a "
     "path.",
     0, 0, NULL},
    U("STACCATO_REFRESH_GRACE_S", refresh_grace_s, "10", 0, 300,
      "Strict mode: seconds after a refresh in which the refresh token it used up, presented again while its "
      "successor is unused, gets that same successor (two tabs refreshing at once) instead of counting as reuse, "
      "which revokes the family; 0: no grace."),
    {"STACCATO_METRICS", SC_SET_ENUM, F(metrics), "local",
     "Who may read GET /metrics (403 for others). local: clients at a loopback address or one of "
     "STACCATO_TRUSTED_PROXIES, not requests an undeclared proxy forwarded (X-Forwarded-For, Forwarded, "
     "X-Real-IP); the default, because the counters show routes, load and limits to whoever reads them and a "
     "scraper runs on the host or beside the proxy. token: Authorization: Bearer STACCATO_METRICS_TOKEN, from "
     "anywhere. public: anyone. off: 404.",
     0, 0, "local|token|public|off"},
    {"STACCATO_METRICS_TOKEN", SC_SET_STRING, F(metrics_token), "",
     "With STACCATO_METRICS=token: the bearer token scrapers send (Authorization: Bearer ...); at least 16 bytes.",
     0, 0, NULL},
    U("STACCATO_MAX_LIST_OFFSET", max_list_offset, "10000", 0, 1000000000,
      "Deepest offset ((page - 1) * limit) of a paged list (400 beyond: narrow the search with filters); "
      "X-Total-Count is exact up to the rows paging can reach and says that many beyond."),
    {"STACCATO_ALLOWED_HOSTS", SC_SET_STRING, F(allowed_hosts), "",
     "Comma-separated host names (or addresses) the server answers as, each optionally with :port; links built "
     "from a Host header outside the list use localhost, and the redirect to HTTPS the first of the list. Empty: "
     "any valid Host.",
     0, 0, NULL},
    U("STACCATO_ANON_WRITES_PER_ADDRESS", anon_writes_per_address, "300", 0, 1000000,
      "With STACCATO_COMPAT=openmusic: album, song and cover writes without a token per client address per "
      "window (429 with Retry-After beyond); 0: no limit."),
    U("STACCATO_ANON_WRITE_WINDOW_S", anon_write_window_s, "60", 1, 86400,
      "Length of the anonymous write window in seconds."),
};

const size_t sc_settings_count = sizeof(sc_settings_table) / sizeof(sc_settings_table[0]);

int sc_settings_load(sc_settings *s, int argc, char **argv, int *argi, char *err, size_t errlen)
{
    return sc_config_load(sc_settings_table, sc_settings_count, s, argc, argv, argi, "STACCATO_ENV_FILE", err,
                          errlen);
}

void sc_settings_free(sc_settings *s) { sc_config_free(sc_settings_table, sc_settings_count, s); }
