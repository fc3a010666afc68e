-- 0003_media_change_notify: every server process caches what streaming needs to know about songs and albums
-- (owner, visibility, flag, media file; src/api/media_cache.h). A change to either table, including an owner's
-- account going away (owner_id set to NULL) or a media file row removed (the reference set to NULL), notifies
-- channel staccato_media with "s:<song id>" or "a:<album id>" at commit, and every process drops that entry.
CREATE FUNCTION staccato_media_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD IS DISTINCT FROM NEW THEN
        PERFORM pg_notify('staccato_media', TG_ARGV[0] || ':' || OLD.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER songs_media_changed AFTER UPDATE OR DELETE ON songs
    FOR EACH ROW EXECUTE FUNCTION staccato_media_changed('s');
CREATE TRIGGER albums_media_changed AFTER UPDATE OR DELETE ON albums
    FOR EACH ROW EXECUTE FUNCTION staccato_media_changed('a');
