-- Every change of hubsync.mapping_overrides notifies `hubsync_mapping` (payload: the object),
-- whoever makes it — the dashboard or plain SQL — so every running daemon refreshes its
-- field mapping at once. Several changes in one transaction arrive as one notification per
-- object (PostgreSQL folds identical notifications).

CREATE FUNCTION hubsync.notify_mapping_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('hubsync_mapping', OLD.object);
  ELSIF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('hubsync_mapping', '');
  ELSE
    PERFORM pg_notify('hubsync_mapping', NEW.object);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER mapping_overrides_notify
  AFTER INSERT OR UPDATE OR DELETE ON hubsync.mapping_overrides
  FOR EACH ROW EXECUTE FUNCTION hubsync.notify_mapping_change();
CREATE TRIGGER mapping_overrides_notify_truncate
  AFTER TRUNCATE ON hubsync.mapping_overrides
  FOR EACH STATEMENT EXECUTE FUNCTION hubsync.notify_mapping_change();

COMMENT ON TABLE hubsync.mapping_overrides IS
  'Field-mapping changes made at run time (dashboard or SQL), applied over hubsync.toml at the start of every pass. included: true adds the property to the synced set, false removes it (NULL: as configured). direction/conflict: NULL keeps the configured rule. Every change notifies hubsync_mapping (trigger), and every running daemon applies it at once.';
