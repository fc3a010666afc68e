/* Accounts (api/users.c): registration, one's own profile, songs and likes under /users/me, and user management
 * for admins. Usernames are unique case-insensitively (an index on lower(username)). */
#ifndef SC_API_USERS_H
#define SC_API_USERS_H

#include "api/user_email.h"
#include "api/visibility.h"
#include "http/request.h"

/* /users/me, /users/verify-email and /users/password-reset come before /users/{id}: the first route that matches a
 * path and method wins. */
#define SC_ROUTES_USERS(X)                                                                                        \
    X(SC_M_POST, "/users", SC_API_PUBLIC, sc_api_users_create)                                                    \
    X(SC_M_GET, "/users", SC_API_ADMIN, sc_api_users_list)                                                        \
    X(SC_M_GET, "/users/verify-email", SC_API_PUBLIC, sc_api_users_verify_email)                                  \
    X(SC_M_POST, "/users/password-reset", SC_API_PUBLIC, sc_api_users_password_reset)                             \
    X(SC_M_POST, "/users/password-reset/confirm", SC_API_PUBLIC, sc_api_users_password_reset_confirm)             \
    X(SC_M_GET, "/users/me", SC_API_USER, sc_api_users_me)                                                        \
    X(SC_M_PUT, "/users/me", SC_API_USER, sc_api_users_me_update)                                                 \
    X(SC_M_GET, "/users/me/songs", SC_API_USER, sc_api_users_me_songs)                                            \
    X(SC_M_GET, "/users/me/likes", SC_API_USER, sc_api_users_me_likes)                                            \
    X(SC_M_GET, "/users/{id}", SC_API_ADMIN, sc_api_users_get)                                                    \
    X(SC_M_PUT, "/users/{id}", SC_API_ADMIN, sc_api_users_update)                                                 \
    X(SC_M_DELETE, "/users/{id}", SC_API_ADMIN, sc_api_users_delete)

/* The columns of a user as the API shows one: id, username, fullname, role, createdAt, email, emailVerified. */
#define SC_USER_COLUMNS                                                                                           \
    "id, username, fullname, role, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "    \
    "email, email_verified"

/* The page of a user list, as a JSON array, from the rows of the subquery `page` (api/list.h). */
#define SC_USER_PAGE_JSON                                                                                         \
    "coalesce(json_agg(json_build_object('id', id, 'username', username, 'fullname', fullname, 'role', role, "    \
    "'createdAt', created, 'email', email, 'emailVerified', email_verified)), '[]')"
#define SC_USER_PAGE_ROWS                                                                                         \
    "SELECT id, username, fullname, role, to_char(created_at AT TIME ZONE 'UTC', "                                \
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created, email, email_verified FROM users "

/* clang-format off */
#define SC_STMTS_USERS(X)                                                                                         \
    /* $1 username, $2 address (or NULL) -> a row when either is taken; its column says whether the username    \
     * is (checked first). */                                                                                     \
    X(USER_NAME_TAKEN,                                                                                            \
      "SELECT lower(username) = lower($1) FROM users WHERE lower(username) = lower($1) "                         \
      "OR lower(email) = lower($2::text) ORDER BY 1 DESC LIMIT 1")                                                \
    /* $1 id, $2 username, $3 hash, $4 fullname, $5 role, $6 address or NULL, $7 base URL of links, $8 max job  \
     * attempts: the account, and the job that mails its verification link when it has an address. */           \
    X(USER_INSERT,                                                                                                \
      "WITH who AS (INSERT INTO users (id, username, password_hash, fullname, role, email) "                      \
      "  VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, email), " SC_USER_EMAIL_ENQUEUE("$7", "$8"))               \
    X(USER_GET, "SELECT " SC_USER_COLUMNS " FROM users WHERE id = $1")                                            \
    X(USER_HASH, "SELECT password_hash FROM users WHERE id = $1")                                                 \
    /* $1 limit, $2 offset, $3 the count's cap (api/list.h). One row: the total (also past the last page, at   \
     * most the cap) and the page as a JSON array. */                                                            \
    X(USER_LIST,                                                                                                  \
      "SELECT (SELECT count(*) FROM (SELECT 1 FROM users LIMIT $3::bigint) c), " SC_USER_PAGE_JSON " FROM ("       \
      SC_USER_PAGE_ROWS "ORDER BY created_at, id LIMIT $1 OFFSET $2) page")                                       \
    /* The same for ?email=$4: the account with that address, in any case (at most one). */                     \
    X(USER_LIST_BY_EMAIL,                                                                                         \
      "SELECT (SELECT count(*) FROM (SELECT 1 FROM users WHERE lower(email) = lower($4::text) "                  \
      "  LIMIT $3::bigint) c), " SC_USER_PAGE_JSON " FROM (" SC_USER_PAGE_ROWS                                    \
      "WHERE lower(email) = lower($4::text) ORDER BY created_at, id LIMIT $1 OFFSET $2) page")                    \
    /* $1 id, $2 fullname, $3 role, $4 password hash, $5 address (each NULL: unchanged), $6 base URL of links,  \
     * $7 max job attempts -> the account (SC_USER_COLUMNS), its token version, and the jobs enqueued. A new      \
     * password also revokes every refresh token of the account. An address different (in more than case) from  \
     * the account's replaces it, unverified, with a verification mail, and makes earlier reset links stop       \
     * working; one another account has fails the whole statement (23505), so nothing changes. */               \
    X(USER_UPDATE,                                                                                                \
      "WITH old AS (SELECT lower(email) AS email FROM users WHERE id = $1), "                                    \
      "moved AS (SELECT $5::text IS NOT NULL AND (SELECT email FROM old) IS DISTINCT FROM lower($5::text) AS yes), " \
      "revoked AS (UPDATE refresh_tokens SET revoked_at = now() "                                                 \
      "  WHERE user_id = $1 AND $4::text IS NOT NULL AND revoked_at IS NULL), "                                   \
      "who AS (UPDATE users SET fullname = coalesce($2, fullname), role = coalesce($3, role), "                   \
      "  password_hash = coalesce($4, password_hash), "                                                            \
      "  email = CASE WHEN (SELECT yes FROM moved) THEN $5::text ELSE email END, "                                \
      "  email_verified = email_verified AND NOT (SELECT yes FROM moved), "                                       \
      "  reset_nonce_hash = CASE WHEN (SELECT yes FROM moved) THEN NULL ELSE reset_nonce_hash END, "              \
      "  updated_at = now() WHERE id = $1 RETURNING " SC_USER_COLUMNS ", token_version), "                        \
      "vj AS (INSERT INTO jobs (kind, payload, max_attempts) SELECT '" SC_JOB_VERIFY_EMAIL "', "                 \
      "  jsonb_build_object('userId', id, 'baseUrl', $6::text), $7::int FROM who WHERE (SELECT yes FROM moved) "  \
      "  RETURNING id), "                                                                                         \
      "vn AS (SELECT pg_notify('" SC_JOBS_CHANNEL "', id::text) FROM vj) "                                        \
      "SELECT who.*, (SELECT count(*) FROM vn) FROM who")                                                         \
    X(USER_DELETE, "DELETE FROM users WHERE id = $1")                                                             \
    /* The token versions a process must know (api/token_versions.h): the accounts whose earlier access tokens   \
     * were made invalid within the last $1 seconds, and the accounts deleted in that time (version NULL). */    \
    X(TOKEN_VERSIONS_RECENT,                                                                                      \
      "SELECT id, token_version::text FROM users WHERE tokens_changed_at > now() - $1::int * interval '1 second' " \
      "UNION ALL SELECT user_id, NULL FROM user_tombstones "                                                      \
      "WHERE deleted_at > now() - $1::int * interval '1 second'")                                                 \
    /* GET /users/me/songs: $1 caller, $2 limit, $3 offset, $4 the count's cap; one row: the total and the   \
     * page. */                                                                                                   \
    X(MEDIA_MY_SONGS,                                                                                             \
      "WITH m AS NOT MATERIALIZED (SELECT id, title, performer, visibility, created_at FROM songs "               \
      "  WHERE owner_id = $1::text) "                                                                             \
      "SELECT (SELECT count(*) FROM (SELECT 1 FROM m LIMIT $4::bigint) c), coalesce((SELECT json_agg(json_build_object('id', p.id, 'title', "        \
      "p.title, 'performer', p.performer, 'visibility', p.visibility) ORDER BY p.created_at, p.id) FROM "         \
      "(SELECT * FROM m ORDER BY created_at, id LIMIT $2::bigint OFFSET $3::bigint) p), '[]'::json)")             \
    /* GET /users/me/likes: $1 user, $2 admin, $3 limit, $4 offset, $5 the count's cap. One row: (total, JSON  \
     * array of {id, title, performer}), the newest like first. */                                               \
    X(LIKE_SONG_LIST,                                                                                             \
      "WITH liked AS NOT MATERIALIZED (SELECT s.id, s.title, s.performer, l.created_at FROM song_likes l "                         \
      "  JOIN songs s ON s.id = l.song_id WHERE l.user_id = $1 AND " SC_SOCIAL_SONG_VISIBLE("s", "$1", "$2") ") " \
      "SELECT (SELECT count(*) FROM (SELECT 1 FROM liked LIMIT $5::bigint) c), coalesce((SELECT json_agg(json_build_object('id', p.id, "             \
      "  'title', p.title, 'performer', p.performer) ORDER BY p.created_at DESC, p.id DESC) "                    \
      "  FROM (SELECT * FROM liked ORDER BY created_at DESC, id DESC LIMIT $3::bigint OFFSET $4::bigint) p), "    \
      "  '[]'::json)")
/* clang-format on */

/* POST /users {username, password, fullname, email?}: 201 with data.userId; a username or an address taken in any
 * case is a 400. An address gets a verification mail (a job). */
int sc_api_users_create(sc_req *req);
/* GET /users?page=&limit=&email= (admins): the accounts, paged, with X-Total-Count; with email, the account with
 * that address (in any case). */
int sc_api_users_list(sc_req *req);
/* GET /users/me: the caller's account. */
int sc_api_users_me(sc_req *req);
/* PUT /users/me {fullname?, password?, currentPassword?, email?}: a new password needs the current one; a new
 * address is unverified until the link mailed to it is followed. */
int sc_api_users_me_update(sc_req *req);
/* Why pw is not acceptable as a new password (length, NUL bytes), or NULL when it is: the rules of registration,
 * also for password changes and resets. */
const char *sc_api_users_password_problem(const sc_req *req, sc_slice pw);
/* Why pw is not acceptable as a new password (length, NUL bytes), or NULL when it is: the rules of registration,
 * also for password changes and resets. */
const char *sc_api_users_password_problem(const sc_req *req, sc_slice pw);
/* GET /users/me/songs?page=&limit=: the songs the caller uploaded, oldest first. */
int sc_api_users_me_songs(sc_req *req);
/* GET /users/me/likes?page=&limit=: the songs the caller likes and still sees, the newest like first. */
int sc_api_users_me_likes(sc_req *req);
/* GET /users/{id} (admins). */
int sc_api_users_get(sc_req *req);
/* PUT /users/{id} {role?, fullname?} (admins). */
int sc_api_users_update(sc_req *req);
/* DELETE /users/{id} (admins). */
int sc_api_users_delete(sc_req *req);

#endif
