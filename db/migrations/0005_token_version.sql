-- 0005_token_version: access tokens stop working as soon as the account loses rights, and refresh rotation keeps a
-- grace window for two tabs (src/api/token_versions.h, src/api/authentications.c).
--
-- users.token_version counts the changes that make the account's earlier access tokens invalid: a role lowered
-- (admin > artist > user; a promotion is not one: a token from before it claims fewer rights than the account now
-- has) and a new password. A trigger bumps it, so every path (the API, `staccato user set-role`, plain SQL) does;
-- tokens_changed_at says when, so that a process needs to know only the changes of the last access-token lifetime.
-- A deleted account leaves a tombstone for as long as one of its access tokens could still be alive. Both are
-- announced on channel staccato_tokens at commit: "<user id> <version>" or "<user id> deleted".
ALTER TABLE users ADD COLUMN token_version bigint NOT NULL DEFAULT 0,
                  ADD COLUMN tokens_changed_at timestamptz;
CREATE INDEX users_tokens_changed_at_idx ON users (tokens_changed_at) WHERE tokens_changed_at IS NOT NULL;

CREATE TABLE user_tombstones (
    user_id    text PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_tombstones_deleted_at_idx ON user_tombstones (deleted_at);

CREATE FUNCTION staccato_role_rank(role text) RETURNS int LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE role WHEN 'admin' THEN 3 WHEN 'artist' THEN 2 ELSE 1 END
$$;

CREATE FUNCTION staccato_tokens_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF staccato_role_rank(NEW.role) < staccato_role_rank(OLD.role)
       OR NEW.password_hash IS DISTINCT FROM OLD.password_hash THEN
        NEW.token_version := OLD.token_version + 1;
        NEW.tokens_changed_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_tokens_bump BEFORE UPDATE OF role, password_hash ON users
    FOR EACH ROW EXECUTE FUNCTION staccato_tokens_bump();

-- Tombstones older than 30 days go when the next account is deleted: access tokens live at most a week
-- (ACCESS_TOKEN_AGE) plus the clock leeway.
CREATE FUNCTION staccato_tokens_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM user_tombstones WHERE deleted_at < now() - interval '30 days';
        INSERT INTO user_tombstones (user_id) VALUES (OLD.id)
            ON CONFLICT (user_id) DO UPDATE SET deleted_at = now();
        PERFORM pg_notify('staccato_tokens', OLD.id || ' deleted');
    ELSE
        PERFORM pg_notify('staccato_tokens', NEW.id || ' ' || NEW.token_version);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_tokens_changed AFTER UPDATE ON users
    FOR EACH ROW WHEN (OLD.token_version IS DISTINCT FROM NEW.token_version)
    EXECUTE FUNCTION staccato_tokens_changed();
CREATE TRIGGER users_tokens_deleted AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION staccato_tokens_changed();

-- The sealed successor of a rotated refresh token, for the grace window in which the same token presented again
-- (a second tab refreshing at once) gets that successor instead of counting as reuse: AES-256-GCM under a key
-- derived from the rotated token itself and REFRESH_TOKEN_KEY, neither of which the database holds, so the table
-- still cannot be replayed. Cleared when the successor is rotated in its turn.
ALTER TABLE refresh_tokens ADD COLUMN successor_sealed text;
CREATE INDEX refresh_tokens_sealed_idx ON refresh_tokens (replaced_by) WHERE successor_sealed IS NOT NULL;
