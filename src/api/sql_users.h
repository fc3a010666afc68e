/* SQL of accounts and authentication. Usernames are unique case-insensitively (index on lower(username)). */
#ifndef SC_API_SQL_USERS_H
#define SC_API_SQL_USERS_H

#define SC_USER_COLUMNS "id, username, fullname, role, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

#define SC_STMTS_USERS(X)                                                                                         \
    X(USER_NAME_TAKEN, "SELECT 1 FROM users WHERE lower(username) = lower($1)")                                   \
    X(USER_INSERT, "INSERT INTO users (id, username, password_hash, fullname, role) VALUES ($1, $2, $3, $4, $5)")  \
    X(USER_LOGIN, "SELECT id, password_hash, role FROM users WHERE lower(username) = lower($1)")                  \
    X(USER_GET, "SELECT " SC_USER_COLUMNS " FROM users WHERE id = $1")                                            \
    X(USER_HASH, "SELECT password_hash FROM users WHERE id = $1")                                                 \
    /* One row: the total (also past the last page) and the page as a JSON array. */                            \
    X(USER_LIST,                                                                                                  \
      "SELECT (SELECT count(*) FROM users), coalesce(json_agg(json_build_object('id', id, 'username', username, " \
      "'fullname', fullname, 'role', role, 'createdAt', created)), '[]') FROM (SELECT id, username, fullname, "    \
      "role, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created FROM users "      \
      "ORDER BY created_at, id LIMIT $1 OFFSET $2) page")                                                         \
    /* A new password also revokes every refresh token of the account. */                                        \
    X(USER_UPDATE,                                                                                                \
      "WITH revoked AS (UPDATE refresh_tokens SET revoked_at = now() "                                            \
      "  WHERE user_id = $1 AND $4::text IS NOT NULL AND revoked_at IS NULL) "                                    \
      "UPDATE users SET fullname = coalesce($2, fullname), role = coalesce($3, role), "                           \
      "password_hash = coalesce($4, password_hash), updated_at = now() WHERE id = $1 RETURNING " SC_USER_COLUMNS)  \
    X(USER_DELETE, "DELETE FROM users WHERE id = $1")                                                             \
    X(REFRESH_INSERT,                                                                                             \
      "INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at) "                                  \
      "VALUES ($1, $2, $3, now() + $4::int * interval '1 second')")                                               \
    /* Rotation in one statement: revoke the presented token and insert its successor in the same family. */     \
    X(REFRESH_ROTATE,                                                                                             \
      "WITH old AS (UPDATE refresh_tokens SET revoked_at = now(), replaced_by = $2 "                              \
      "  WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now() RETURNING user_id, family_id), "     \
      "ins AS (INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at) "                          \
      "  SELECT $2, user_id, family_id, now() + $3::int * interval '1 second' FROM old RETURNING user_id) "        \
      "SELECT u.id, u.role FROM ins JOIN users u ON u.id = ins.user_id")                                          \
    /* A revoked token presented again: someone holds a stolen copy, so the whole family goes. */               \
    X(REFRESH_REUSE,                                                                                              \
      "UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE family_id = "                     \
      "(SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND revoked_at IS NOT NULL)")                  \
    X(REFRESH_REVOKE,                                                                                             \
      "UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL RETURNING 1")

#endif
