-- 0002_jobs_export_index: the per-user export rate limit counts a user's recent export jobs on every request;
-- without this index that count scans the whole jobs table.
CREATE INDEX jobs_export_user_idx ON jobs ((payload->>'userId'), created_at) WHERE kind = 'export-playlist';
