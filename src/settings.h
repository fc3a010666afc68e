/* Every setting of the server, in one table: environment variable, flag, default and help text. */
#ifndef SC_SETTINGS_H
#define SC_SETTINGS_H

#include <stdbool.h>
#include <stdio.h>

#include "core/config.h"

typedef struct sc_settings {
    char *host;
    unsigned long long port;
    unsigned long long workers;
    unsigned long long max_connections;
    unsigned long long max_header_bytes;
    unsigned long long max_headers;
    unsigned long long max_url_bytes;
    unsigned long long max_body_bytes;
    unsigned long long header_timeout_ms;
    unsigned long long body_timeout_ms;
    unsigned long long keepalive_timeout_ms;
    unsigned long long send_timeout_ms;
    unsigned long long max_write_buffer;
    unsigned long long drain_timeout_ms;
    unsigned long long backlog;
    unsigned long long max_body_memory;
    unsigned long long max_connections_per_address;
    unsigned long long min_body_rate;
    unsigned long long min_body_rate_grace_ms;
    unsigned long long max_json_body_bytes;
    unsigned long long max_output_memory;
    char *log_level;
    char *log_format;
    bool access_log;
    char *trusted_proxies;
    bool debug_routes;
    char *env_file;
    char *database_url;
    unsigned long long db_pool_size;
    unsigned long long db_queue_max;
    unsigned long long db_pipeline_depth;
    unsigned long long db_query_timeout_ms;
    unsigned long long db_connect_timeout_ms;
    unsigned long long db_listen_heartbeat_ms;
    char *redis_url;
    char *redis_host;
    unsigned long long redis_port;
    unsigned long long redis_timeout_ms;
    char *access_token_key;
    char *refresh_token_key;
    unsigned long long access_token_age;
    unsigned long long refresh_token_age;
    unsigned long long token_leeway_s;
    unsigned long long argon2_t;
    unsigned long long argon2_m_kib;
    unsigned long long argon2_p;
    unsigned long long password_min_length;
    unsigned long long login_max_per_account;
    unsigned long long login_max_per_address;
    unsigned long long login_window_s;
    unsigned long long login_max_per_account_global;
    unsigned long long login_global_window_s;
    unsigned long long register_max_per_address;
    unsigned long long register_window_s;
    unsigned long long email_verify_ttl_s;
    unsigned long long password_reset_ttl_s;
    unsigned long long password_reset_max_per_address;
    unsigned long long password_reset_window_s;
    unsigned long long threadpool_size;
    unsigned long long password_concurrency;
    unsigned long long password_queue_max;
    unsigned long long tls_ticket_lifetime_s;
    char *cookie_origins;
    char *cors_origins;
    char *backend_cors_origins;
    unsigned long long cors_max_age;
    char *cookie_samesite;
    char *compat;
    char *public_url;
    char *admin_username;
    char *admin_password;
    unsigned long long tls_port;
    char *tls_cert;
    char *tls_key;
    char *tls_chain;
    unsigned long long tls_handshake_timeout_ms;
    bool https_redirect;
    unsigned long long hsts_max_age;
    char *jobs;
    unsigned long long job_concurrency;
    unsigned long long job_lease_ms;
    unsigned long long job_poll_ms;
    unsigned long long job_retry_base_ms;
    unsigned long long job_retry_max_ms;
    unsigned long long job_max_attempts;
    unsigned long long export_max_per_hour;
    char *smtp_host;
    unsigned long long smtp_port;
    char *smtp_user;
    char *smtp_password;
    char *mail_from;
    bool smtp_require_tls;
    unsigned long long smtp_timeout_ms;
    char *schedules;
    char *report_email;
    char *media_dir;
    char *docs_assets;
    unsigned long long stream_url_ttl_s;
    unsigned long long media_cache_entries;
    unsigned long long media_cache_ttl_s;
    unsigned long long max_audio_bytes;
    char *ffprobe;
    unsigned long long refresh_grace_s;
    char *metrics;
    char *metrics_token;
    unsigned long long max_list_offset;
    char *allowed_hosts;
    unsigned long long anon_writes_per_address;
    unsigned long long anon_write_window_s;
} sc_settings;

extern const sc_setting sc_settings_table[];
extern const size_t sc_settings_count;

/* Loads settings from defaults, .env, environment and flags (argv[*argi..]). Returns 0 or -1 with err set. */
int sc_settings_load(sc_settings *s, int argc, char **argv, int *argi, char *err, size_t errlen);
void sc_settings_free(sc_settings *s);

#endif
