-- 0001_init: the schema for everything in docs/api.md.
--
-- The runner wraps this file in one transaction and records it in schema_migrations, so there is no BEGIN/COMMIT
-- here. The file is written so that even a runner that splits on a semicolon at the end of a line would work:
-- plain statements only (no function bodies, no dollar quotes), and no semicolons inside comments or literals.
--
-- Ids are opaque text made by the application ("album-" plus 16 url-safe characters). Timestamps are timestamptz
-- and columns named updated_at are set by the application in its UPDATE statements (there are no triggers).
-- Check constraints cover only values the API itself fixes (roles, visibility, actions, job states, 1..5 ratings):
-- anything the handlers validate stays unconstrained here so that bad input is a 400 from the handler and never a
-- constraint violation surfacing as a 500.

-- Case-insensitive substring search (GET /songs?title=&performer=) needs trigram indexes. pg_trgm is a trusted
-- extension since PostgreSQL 13, so the database owner may create it without being a superuser.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Accounts --------------------------------------------------------------------------------------------------------

CREATE TABLE users (
    id            text PRIMARY KEY,
    username      text NOT NULL,
    password_hash text NOT NULL,
    fullname      text NOT NULL,
    role          text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'artist', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- "Alice" and "alice" are the same account: uniqueness and login lookups both go through lower(username).
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));

-- Only a hash of each refresh token is stored, so a leaked table cannot be replayed. Tokens of one login share a
-- family_id: reusing a revoked token revokes the whole family. replaced_by is the successor's hash, kept for
-- auditing only (no foreign key, so rotation can insert and revoke in either order).
CREATE TABLE refresh_tokens (
    token_hash  text PRIMARY KEY,
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   text NOT NULL,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    replaced_by text
);
CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);

-- Catalog ---------------------------------------------------------------------------------------------------------

-- Uploaded files. The bytes live on disk under STACCATO_MEDIA_DIR (path is relative to it), the row is what the
-- database knows about them. sha256 lets identical uploads be detected and gives a strong ETag.
CREATE TABLE media_files (
    id         text PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('audio', 'cover')),
    sha256     text NOT NULL,
    path       text NOT NULL,
    mime       text NOT NULL,
    size       bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_files_sha256_idx ON media_files (sha256);

-- Albums and songs outlive their owner's account (owner_id becomes NULL, admins still manage them): in
-- OpenMusic mode anyone may create catalog entries and nobody expects them to vanish with a user.
CREATE TABLE albums (
    id             text PRIMARY KEY,
    name           text NOT NULL,
    year           integer NOT NULL,
    owner_id       text REFERENCES users (id) ON DELETE SET NULL,
    cover_media_id text REFERENCES media_files (id) ON DELETE SET NULL,
    flagged        boolean NOT NULL DEFAULT false,
    flag_reason    text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX albums_owner_id_idx ON albums (owner_id);
CREATE INDEX albums_cover_media_id_idx ON albums (cover_media_id);

CREATE TABLE genres (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX genres_name_lower_key ON genres (lower(name));

-- songs.genre keeps the name the client sent (OpenMusic returns it verbatim), genre_id links it to the genres
-- table when one matches. album_id becomes NULL when the album is deleted: OpenMusic deletes albums without
-- touching their songs. The audio_* columns describe the uploaded audio (null until there is one) so that song
-- reads need no join with media_files.
CREATE TABLE songs (
    id             text PRIMARY KEY,
    title          text NOT NULL,
    year           integer NOT NULL,
    performer      text NOT NULL,
    genre          text NOT NULL,
    genre_id       text REFERENCES genres (id) ON DELETE SET NULL,
    duration       integer,
    album_id       text REFERENCES albums (id) ON DELETE SET NULL,
    owner_id       text REFERENCES users (id) ON DELETE SET NULL,
    visibility     text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private')),
    flagged        boolean NOT NULL DEFAULT false,
    flag_reason    text,
    audio_media_id text REFERENCES media_files (id) ON DELETE SET NULL,
    audio_mime     text,
    audio_size     bigint,
    duration_ms    integer,
    bitrate        integer,
    sample_rate    integer,
    channels       smallint,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- The search predicate is lower(col) LIKE '%' || lower($1) || '%' (with %, _ and \ escaped in $1): these
-- expression indexes serve it for patterns of three or more characters.
CREATE INDEX songs_title_trgm_idx ON songs USING gin (lower(title) gin_trgm_ops);
CREATE INDEX songs_performer_trgm_idx ON songs USING gin (lower(performer) gin_trgm_ops);
CREATE INDEX songs_album_id_idx ON songs (album_id);
CREATE INDEX songs_owner_id_idx ON songs (owner_id);
CREATE INDEX songs_genre_id_idx ON songs (genre_id);
CREATE INDEX songs_genre_lower_idx ON songs (lower(genre));
CREATE INDEX songs_audio_media_id_idx ON songs (audio_media_id);
-- Stable order for paged lists (ORDER BY created_at, id).
CREATE INDEX songs_created_at_id_idx ON songs (created_at, id);

-- Playlists -------------------------------------------------------------------------------------------------------

CREATE TABLE playlists (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    owner_id   text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX playlists_owner_id_idx ON playlists (owner_id);

-- added_by is informational (who put the song there) and has no foreign key: removing a collaborator's account
-- should not remove songs from someone else's playlist.
CREATE TABLE playlist_songs (
    playlist_id text NOT NULL REFERENCES playlists (id) ON DELETE CASCADE,
    song_id     text NOT NULL REFERENCES songs (id) ON DELETE CASCADE,
    added_by    text,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (playlist_id, song_id)
);
-- The primary key serves lookups by playlist, this one the cascade when a song is deleted.
CREATE INDEX playlist_songs_song_id_idx ON playlist_songs (song_id);

CREATE TABLE collaborations (
    id          text PRIMARY KEY,
    playlist_id text NOT NULL REFERENCES playlists (id) ON DELETE CASCADE,
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    UNIQUE (playlist_id, user_id)
);
CREATE INDEX collaborations_user_id_idx ON collaborations (user_id);

-- The activity log is history: it must survive the deletion of the song or of the user who acted, so song_id and
-- user_id have no foreign keys and the title and username are copied in at the time of the action.
CREATE TABLE playlist_activities (
    id          bigserial PRIMARY KEY,
    playlist_id text NOT NULL REFERENCES playlists (id) ON DELETE CASCADE,
    song_id     text NOT NULL,
    song_title  text NOT NULL,
    user_id     text,
    username    text NOT NULL,
    action      text NOT NULL CHECK (action IN ('add', 'delete')),
    time        timestamptz NOT NULL DEFAULT now()
);
-- Read back per playlist in time order (ties broken by id, which follows insertion order).
CREATE INDEX playlist_activities_playlist_time_idx ON playlist_activities (playlist_id, time, id);

-- Likes and ratings -----------------------------------------------------------------------------------------------

-- The primary keys make "liking twice" a unique violation (23505), which the handler maps to 400.
CREATE TABLE album_likes (
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    album_id   text NOT NULL REFERENCES albums (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, album_id)
);
CREATE INDEX album_likes_album_id_idx ON album_likes (album_id);

CREATE TABLE song_likes (
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    song_id    text NOT NULL REFERENCES songs (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, song_id)
);
CREATE INDEX song_likes_song_id_idx ON song_likes (song_id);

CREATE TABLE ratings (
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    song_id    text NOT NULL REFERENCES songs (id) ON DELETE CASCADE,
    rating     smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, song_id)
);
-- Per-song average and count.
CREATE INDEX ratings_song_id_idx ON ratings (song_id);

-- Background jobs -------------------------------------------------------------------------------------------------

-- A durable queue: a worker claims the oldest due job with
--   UPDATE jobs SET state = 'running', locked_until = now() + lease, attempts = attempts + 1 ...
--   WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND run_at <= now()
--               ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED)
-- A running job whose lease (locked_until) has passed belonged to a worker that died and is queued again. After
-- max_attempts failures a job is 'dead' and kept for inspection. dedupe_key makes scheduled jobs exactly-once:
-- INSERT ... ON CONFLICT (dedupe_key) DO NOTHING (NULL keys never conflict).
CREATE TABLE jobs (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL,
    payload      jsonb NOT NULL DEFAULT '{}'::jsonb,
    state        text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'dead')),
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 5,
    run_at       timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz,
    last_error   text,
    dedupe_key   text UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- Partial indexes stay small however many finished jobs accumulate.
CREATE INDEX jobs_claimable_idx ON jobs (run_at) WHERE state = 'queued';
CREATE INDEX jobs_lease_idx ON jobs (locked_until) WHERE state = 'running';

-- Reports ---------------------------------------------------------------------------------------------------------

-- One row per play. Plays of a deleted song are meaningless and go with it, while a deleted user's plays still
-- count (user_id becomes NULL). Anonymous plays (signed stream URLs) have no user.
CREATE TABLE plays (
    id        bigserial PRIMARY KEY,
    song_id   text NOT NULL REFERENCES songs (id) ON DELETE CASCADE,
    user_id   text REFERENCES users (id) ON DELETE SET NULL,
    played_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX plays_song_id_played_at_idx ON plays (song_id, played_at);
CREATE INDEX plays_played_at_idx ON plays (played_at);
CREATE INDEX plays_user_id_idx ON plays (user_id) WHERE user_id IS NOT NULL;
