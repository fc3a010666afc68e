/* E-mail addresses of accounts (api/user_email.c): the signed verification link and its route, password resets by
 * mail, and the two jobs that send those mails. The routes are rows of SC_ROUTES_USERS (api/users.h).
 *
 * An account may have one address, unique regardless of case (migration 0006). It is verified by following a
 * link mailed to it; only a verified address signs in (POST /authentications {email, password}) and receives
 * password-reset links. Mail is never sent on the request path: the request commits a job (api/jobs.h) and a
 * worker sends the message through the SMTP client.
 *
 * Links carry tokens the server signs with sc_api_auth_url_mac, four parts joined by dots:
 *
 *     <user id> "." <expiry, Unix seconds> "." <data, hex> "." <HMAC-SHA256 of purpose, id, expiry, data, hex>
 *
 * A verification token's data is the address (lower case); it is good while the account still has that address
 * unverified, so it works once. A reset token's data is a random nonce (a UUID the database makes) whose SHA-256
 * the account keeps until the reset is confirmed, so it works once too, and a newer reset link replaces an older
 * one. */
#ifndef SC_API_USER_EMAIL_H
#define SC_API_USER_EMAIL_H

#include "http/request.h"
#include "jobs/jobs.h"
#include "jobs/sql.h"

/* The kinds of the jobs that mail a verification link ({userId, baseUrl}) and a reset link ({email, baseUrl}). */
#define SC_JOB_VERIFY_EMAIL "verify-email"
#define SC_JOB_PASSWORD_RESET "password-reset"

/* The end of a statement of api/users.h that sets an address: enqueues a verification mail for each row (id,
 * email) of its CTE `who` that has an address, base and attempts naming the parameters of the base URL and the
 * max attempts. One row: (rows of who, jobs enqueued). */
#define SC_USER_EMAIL_ENQUEUE(base, attempts)                                                                     \
    "vj AS (INSERT INTO jobs (kind, payload, max_attempts) SELECT '" SC_JOB_VERIFY_EMAIL "', "                    \
    "  jsonb_build_object('userId', id, 'baseUrl', " base "::text), " attempts "::int FROM who "                  \
    "  WHERE email IS NOT NULL RETURNING id), "                                                                   \
    "vn AS (SELECT pg_notify('" SC_JOBS_CHANNEL "', id::text) FROM vj) "                                          \
    "SELECT (SELECT count(*) FROM who), (SELECT count(*) FROM vn)"

/* clang-format off */
#define SC_STMTS_USER_EMAIL(X)                                                                                    \
    /* $1 user, $2 address (lower case): the address is verified now, if it is still the account's and was not  \
     * verified yet. */                                                                                           \
    X(EMAIL_VERIFY,                                                                                               \
      "UPDATE users SET email_verified = true, updated_at = now() "                                              \
      "WHERE id = $1 AND lower(email) = $2 AND NOT email_verified RETURNING 1")                                  \
    /* Job: $1 user -> the address to verify, when there is one. */                                             \
    X(EMAIL_VERIFY_TARGET, "SELECT email FROM users WHERE id = $1 AND email IS NOT NULL AND NOT email_verified")   \
    /* $1 address, $2 base URL, $3 max attempts: enqueues the reset mail, whoever the address belongs to. */     \
    X(PASSWORD_RESET_ENQUEUE,                                                                                     \
      "WITH j AS (INSERT INTO jobs (kind, payload, max_attempts) VALUES ('" SC_JOB_PASSWORD_RESET "', "           \
      "  jsonb_build_object('email', $1::text, 'baseUrl', $2::text), $3::int) RETURNING id) "                   \
      "SELECT pg_notify('" SC_JOBS_CHANNEL "', id::text) FROM j")                                                 \
    /* Job: $1 address -> (id, address, nonce) of the account with that verified address: a new random nonce,  \
     * of which the account keeps the SHA-256 (hex), so that its earlier reset links stop working. */            \
    X(PASSWORD_RESET_NONCE,                                                                                       \
      "WITH n AS (SELECT gen_random_uuid()::text AS nonce) "                                                      \
      "UPDATE users SET reset_nonce_hash = encode(sha256(convert_to((SELECT nonce FROM n), 'UTF8')), 'hex') "     \
      "WHERE lower(email) = lower($1) AND email_verified RETURNING id, email, (SELECT nonce FROM n)")             \
    /* $1 user, $2 SHA-256 of the link's nonce, $3 new password hash -> (id, token version) when the link is the \
     * account's latest and unused. The password changes (the trigger of migration 0005 bumps the token version), \
     * the nonce is used up and every refresh token of the account is revoked. */                                \
    X(PASSWORD_RESET_APPLY,                                                                                       \
      "WITH u AS (UPDATE users SET password_hash = $3, reset_nonce_hash = NULL, updated_at = now() "             \
      "  WHERE id = $1 AND reset_nonce_hash = $2 RETURNING id, token_version), "                                 \
      "r AS (UPDATE refresh_tokens SET revoked_at = now() "                                                       \
      "  WHERE user_id IN (SELECT id FROM u) AND revoked_at IS NULL) "                                            \
      "SELECT id, token_version::text FROM u")
/* clang-format on */

/* GET /users/verify-email?token=: verifies the address the token was mailed to; 200, or 400 for a token that is
 * malformed, forged, expired or already used. */
int sc_api_users_verify_email(sc_req *req);
/* POST /users/password-reset {email}: 202 whether or not the address belongs to a verified account (nothing to
 * learn about accounts); a job mails the link when it does. Rate-limited per client address and per address asked
 * for (429). */
int sc_api_users_password_reset(sc_req *req);
/* POST /users/password-reset/confirm {token, password}: sets the new password, revokes the account's access and
 * refresh tokens and uses the link up; 400 for a bad, used or expired token or a password that breaks the rules.
 */
int sc_api_users_password_reset_confirm(sc_req *req);

/* Runs a verify-email job: mails the verification link to the account's address while it is unverified. */
void sc_api_verify_email_job_run(sc_job *job);
/* Runs a password-reset job: mails a new reset link when the address belongs to a verified account, else ends
 * without mail. */
void sc_api_password_reset_job_run(sc_job *job);

#endif
