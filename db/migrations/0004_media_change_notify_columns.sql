-- 0004_media_change_notify_columns: the change notifications of 0003 only for the columns the streaming cache
-- holds (songs: owner, visibility, flag, audio file; albums: owner, flag, cover file) and for deleted rows. Other
-- edits (title, genre, timestamps, a genre renamed across all its songs) no longer make every process drop the
-- entry or hold back what its lookups in flight found. Media file rows are never updated in place.
DROP TRIGGER songs_media_changed ON songs;
DROP TRIGGER albums_media_changed ON albums;

CREATE TRIGGER songs_media_changed AFTER UPDATE ON songs
    FOR EACH ROW
    WHEN (OLD.owner_id IS DISTINCT FROM NEW.owner_id OR OLD.visibility IS DISTINCT FROM NEW.visibility
          OR OLD.flagged IS DISTINCT FROM NEW.flagged OR OLD.audio_media_id IS DISTINCT FROM NEW.audio_media_id)
    EXECUTE FUNCTION staccato_media_changed('s');
CREATE TRIGGER songs_media_deleted AFTER DELETE ON songs
    FOR EACH ROW EXECUTE FUNCTION staccato_media_changed('s');
CREATE TRIGGER albums_media_changed AFTER UPDATE ON albums
    FOR EACH ROW
    WHEN (OLD.owner_id IS DISTINCT FROM NEW.owner_id OR OLD.flagged IS DISTINCT FROM NEW.flagged
          OR OLD.cover_media_id IS DISTINCT FROM NEW.cover_media_id)
    EXECUTE FUNCTION staccato_media_changed('a');
CREATE TRIGGER albums_media_deleted AFTER DELETE ON albums
    FOR EACH ROW EXECUTE FUNCTION staccato_media_changed('a');
