-- hubsync's own state: cursors, leases, per-record status, the shadow copy, the outbox and
-- inbox, conflicts, data-quality issues and the audit log; plus the capture trigger
-- functions installed on synced tables. Statuses are text with CHECK constraints (not enum
-- types) so later migrations can add values without ALTER TYPE.

CREATE SCHEMA IF NOT EXISTS hubsync;
COMMENT ON SCHEMA hubsync IS
  'State of hubsync (HubSpot <-> PostgreSQL sync). Safe to read; write only through hubsync, except hubsync.conflicts.resolution and hubsync.captured_tables.allow_truncate.';

-- Cursors --------------------------------------------------------------------------------
CREATE TABLE hubsync.cursors (
  object     text        NOT NULL,
  stream     text        NOT NULL,
  position   jsonb       NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (object, stream)
);
COMMENT ON TABLE hubsync.cursors IS
  'Checkpoint per object and stream (backfill page, incremental high-water mark, archived listing, ...). Written in the same transaction as the data it covers, so a crash never skips or repeats more than the page in flight.';
COMMENT ON COLUMN hubsync.cursors.stream IS 'Which pass the cursor belongs to, e.g. backfill, incremental, archived, associations:companies.';
COMMENT ON COLUMN hubsync.cursors.position IS 'The high-water mark / paging token, shape owned by the stream.';

-- Leases ---------------------------------------------------------------------------------
CREATE TABLE hubsync.leases (
  unit        text        PRIMARY KEY,
  holder      text        NOT NULL,
  fencing     bigint      NOT NULL DEFAULT 1,
  acquired_at timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL
);
COMMENT ON TABLE hubsync.leases IS
  'Units of work (portal/object/direction) leased by one hubsync instance at a time; an expired lease can be taken by another instance.';
COMMENT ON COLUMN hubsync.leases.fencing IS 'Incremented whenever the lease changes hands; writers can compare it to detect a lost lease.';

-- Per-record state -----------------------------------------------------------------------
CREATE TABLE hubsync.record_state (
  object       text        NOT NULL,
  row_key      text        NOT NULL,
  hs_object_id bigint,
  status       text        NOT NULL CHECK (status IN ('pending', 'synced', 'failed')),
  last_error   text,
  attempts     integer     NOT NULL DEFAULT 0,
  merged_into  bigint,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (object, row_key)
);
CREATE UNIQUE INDEX record_state_hs_object_id ON hubsync.record_state (object, hs_object_id)
  WHERE hs_object_id IS NOT NULL;
CREATE INDEX record_state_not_synced ON hubsync.record_state (object, status)
  WHERE status <> 'synced';
COMMENT ON TABLE hubsync.record_state IS
  'Sync status of each record that hubsync wrote or failed to write: join on row_key (the synced table''s key as text) to see whether a row is pending, synced or failed, and why.';
COMMENT ON COLUMN hubsync.record_state.row_key IS 'The synced table''s key column as text; identifies rows not yet created in HubSpot.';
COMMENT ON COLUMN hubsync.record_state.last_error IS 'HubSpot''s or PostgreSQL''s message for the last failure (e.g. an invalid enumeration option).';
COMMENT ON COLUMN hubsync.record_state.merged_into IS 'For a record merged away in HubSpot: the id of the surviving record.';

-- Shadow copy ----------------------------------------------------------------------------
CREATE TABLE hubsync.shadow (
  object           text        NOT NULL,
  hs_object_id     bigint      NOT NULL,
  field            text        NOT NULL,
  value            text,
  hubspot_version  timestamptz,
  postgres_version bigint,
  agreed_at        timestamptz NOT NULL DEFAULT now(),
  agreed_from      text        NOT NULL CHECK (agreed_from IN ('hubspot', 'postgres')),
  PRIMARY KEY (object, hs_object_id, field)
);
COMMENT ON TABLE hubsync.shadow IS
  'Last value of each record field that HubSpot and PostgreSQL agreed on: a side that differs from it changed; both differing (to different values) is a conflict; a value equal to it is an echo.';
COMMENT ON COLUMN hubsync.shadow.value IS 'HubSpot''s string form of the value; NULL is HubSpot''s empty value.';
COMMENT ON COLUMN hubsync.shadow.hubspot_version IS 'HubSpot''s timestamp of the property value agreed on.';
COMMENT ON COLUMN hubsync.shadow.postgres_version IS 'hubsync.outbox id of the PostgreSQL change agreed on (capture order; per record this is commit order).';
COMMENT ON COLUMN hubsync.shadow.agreed_from IS 'Which side the agreed value came from.';

-- Outbox (filled by capture triggers) ----------------------------------------------------
CREATE TABLE hubsync.outbox (
  id              bigserial   PRIMARY KEY,
  object          text        NOT NULL,
  source_table    text        NOT NULL,
  op              text        NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE')),
  row_key         text        NOT NULL,
  hs_object_id    bigint,
  changed_columns text[]      NOT NULL,
  old_row         jsonb,
  new_row         jsonb,
  txid            xid8        NOT NULL DEFAULT pg_current_xact_id(),
  changed_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  status          text        NOT NULL DEFAULT 'pending'
                              CHECK (status IN ('pending', 'in_flight', 'failed')),
  attempts        integer     NOT NULL DEFAULT 0,
  available_at    timestamptz NOT NULL DEFAULT now(),
  claimed_by      text,
  claimed_until   timestamptz,
  last_error      text
);
CREATE INDEX outbox_pending ON hubsync.outbox (id) WHERE status = 'pending';
CREATE INDEX outbox_record ON hubsync.outbox (object, row_key, id);
COMMENT ON TABLE hubsync.outbox IS
  'PostgreSQL changes to synced tables waiting to be written to HubSpot, written by the capture triggers in the same transaction as the change. Entries are deleted once HubSpot accepted them.';
COMMENT ON COLUMN hubsync.outbox.id IS 'Capture order. For one record it is commit order (row locks serialise writers of a row).';
COMMENT ON COLUMN hubsync.outbox.changed_columns IS 'Synced columns whose value changed (all synced columns for INSERT and DELETE).';
COMMENT ON COLUMN hubsync.outbox.old_row IS 'Synced columns (and the key) before the change; NULL for INSERT.';
COMMENT ON COLUMN hubsync.outbox.new_row IS 'Synced columns (and the key) after the change; NULL for DELETE.';
COMMENT ON COLUMN hubsync.outbox.status IS 'pending: to do; in_flight: claimed by claimed_by until claimed_until; failed: gave up (see last_error), retried when the row changes again.';

-- Inbox (webhook events) -----------------------------------------------------------------
CREATE TABLE hubsync.inbox (
  id                bigserial   PRIMARY KEY,
  event_id          text        NOT NULL UNIQUE,
  object            text        NOT NULL,
  hs_object_id      bigint,
  subscription_type text,
  occurred_at       timestamptz,
  payload           jsonb       NOT NULL,
  received_at       timestamptz NOT NULL DEFAULT now(),
  processed_at      timestamptz,
  attempts          integer     NOT NULL DEFAULT 0,
  last_error        text
);
CREATE INDEX inbox_unprocessed ON hubsync.inbox (id) WHERE processed_at IS NULL;
CREATE INDEX inbox_processed_at ON hubsync.inbox (processed_at) WHERE processed_at IS NOT NULL;
COMMENT ON TABLE hubsync.inbox IS
  'HubSpot webhook events, committed before the webhook is answered; deduplicated by event_id. Events are hints: the records they name are re-read from HubSpot.';

-- Conflicts ------------------------------------------------------------------------------
CREATE TABLE hubsync.conflicts (
  id               bigserial   PRIMARY KEY,
  object           text        NOT NULL,
  hs_object_id     bigint      NOT NULL,
  field            text        NOT NULL,
  shadow_value     text,
  hubspot_value    text,
  postgres_value   text,
  hubspot_version  timestamptz,
  postgres_version bigint,
  status           text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
  resolution       text        CHECK (resolution IN ('hubspot', 'postgres')),
  detected_at      timestamptz NOT NULL DEFAULT now(),
  resolved_at      timestamptz,
  applied_at       timestamptz,
  CHECK (status = 'open' OR resolution IS NOT NULL)
);
CREATE UNIQUE INDEX conflicts_one_open ON hubsync.conflicts (object, hs_object_id, field)
  WHERE status = 'open';
CREATE INDEX conflicts_to_apply ON hubsync.conflicts (id)
  WHERE resolution IS NOT NULL AND applied_at IS NULL;
COMMENT ON TABLE hubsync.conflicts IS
  'Fields changed on both sides to different values under the manual policy. Resolve with `hubsync conflicts resolve ID --take hubspot|postgres` or UPDATE hubsync.conflicts SET resolution = ''hubspot''|''postgres'' WHERE id = ...; hubsync then writes the winning value to the other side and sets applied_at.';

CREATE FUNCTION hubsync.conflict_resolved() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.resolution IS NOT NULL AND OLD.resolution IS DISTINCT FROM NEW.resolution THEN
    NEW.status := 'resolved';
    NEW.resolved_at := coalesce(NEW.resolved_at, now());
    PERFORM pg_notify('hubsync_conflicts', NEW.id::text);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER conflict_resolved BEFORE UPDATE ON hubsync.conflicts
  FOR EACH ROW EXECUTE FUNCTION hubsync.conflict_resolved();

-- Issues ---------------------------------------------------------------------------------
CREATE TABLE hubsync.issues (
  id           bigserial   PRIMARY KEY,
  object       text        NOT NULL,
  hs_object_id bigint      NOT NULL,
  property     text        NOT NULL,
  raw_value    text,
  reason       text        NOT NULL,
  first_seen   timestamptz NOT NULL DEFAULT now(),
  last_seen    timestamptz NOT NULL DEFAULT now(),
  occurrences  integer     NOT NULL DEFAULT 1,
  UNIQUE (object, hs_object_id, property)
);
COMMENT ON TABLE hubsync.issues IS
  'Values HubSpot sent that do not fit their column (e.g. ''abc'' for a number): the column is left NULL, the rest of the row syncs, and the raw value is kept here until a good value arrives.';

-- Audit ----------------------------------------------------------------------------------
CREATE TABLE hubsync.audit (
  id             bigserial   PRIMARY KEY,
  at             timestamptz NOT NULL DEFAULT now(),
  direction      text        NOT NULL CHECK (direction IN ('hubspot_to_postgres', 'postgres_to_hubspot')),
  object         text        NOT NULL,
  hs_object_id   bigint,
  row_key        text,
  action         text        NOT NULL,
  fields         jsonb       NOT NULL DEFAULT '{}'::jsonb,
  correlation_id text
);
CREATE INDEX audit_record ON hubsync.audit (object, hs_object_id, at);
CREATE INDEX audit_at ON hubsync.audit (at);
COMMENT ON TABLE hubsync.audit IS
  'Every write hubsync made to either side. What did hubsync change on a record: SELECT at, direction, action, fields FROM hubsync.audit WHERE object = ''contacts'' AND hs_object_id = 123 ORDER BY at;';
COMMENT ON COLUMN hubsync.audit.fields IS 'Changed fields: {"field": {"old": ..., "new": ...}}.';
COMMENT ON COLUMN hubsync.audit.action IS 'create, update, archive, delete, restore, merge, associate, dissociate, gdpr_delete, ...';
COMMENT ON COLUMN hubsync.audit.correlation_id IS 'HubSpot''s X-HubSpot-Correlation-Id of the call, for HubSpot support.';

CREATE FUNCTION hubsync.purge_audit(retention interval) RETURNS bigint
LANGUAGE sql AS $$
  WITH gone AS (DELETE FROM hubsync.audit WHERE at < now() - retention RETURNING 1)
  SELECT count(*) FROM gone;
$$;
COMMENT ON FUNCTION hubsync.purge_audit(interval) IS
  'Deletes audit entries older than the retention; returns how many.';

-- Change capture -------------------------------------------------------------------------
CREATE TABLE hubsync.captured_tables (
  source_table   text        PRIMARY KEY,
  object         text        NOT NULL,
  key_column     text        NOT NULL,
  id_column      text,
  columns        text[]      NOT NULL,
  allow_truncate boolean     NOT NULL DEFAULT false,
  installed_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE hubsync.captured_tables IS
  'Tables whose changes flow to HubSpot (capture triggers installed). Set allow_truncate to let TRUNCATE empty the local copy (it is never sent to HubSpot).';

-- Row trigger. Arguments: object, key column, HubSpot id column ('' if none), synced columns...
-- SECURITY DEFINER: applications writing to synced tables need no privilege on the hubsync
-- schema; the functions run as hubsync's role, which owns the outbox.
CREATE FUNCTION hubsync.capture_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_object  text := TG_ARGV[0];
  v_key     text := TG_ARGV[1];
  v_id_col  text := nullif(TG_ARGV[2], '');
  v_cols    text[] := TG_ARGV[3:TG_NARGS - 1];
  v_keep    text[];
  v_old     jsonb;
  v_new     jsonb;
  v_row     jsonb;
  v_changed text[];
  v_row_key text;
BEGIN
  IF current_setting('hubsync.origin', true) = 'hubsync' THEN
    RETURN NULL;
  END IF;
  v_keep := v_cols || v_key || coalesce(v_id_col, v_key);
  IF TG_OP <> 'INSERT' THEN
    SELECT jsonb_object_agg(key, value) INTO v_old
      FROM jsonb_each(to_jsonb(OLD)) WHERE key = ANY (v_keep);
  END IF;
  IF TG_OP <> 'DELETE' THEN
    SELECT jsonb_object_agg(key, value) INTO v_new
      FROM jsonb_each(to_jsonb(NEW)) WHERE key = ANY (v_keep);
  END IF;
  IF TG_OP = 'UPDATE' THEN
    SELECT coalesce(array_agg(c ORDER BY n), '{}') INTO v_changed
      FROM unnest(v_cols) WITH ORDINALITY AS u(c, n)
      WHERE (v_old -> c) IS DISTINCT FROM (v_new -> c);
    IF cardinality(v_changed) = 0 AND (v_old -> v_key) IS NOT DISTINCT FROM (v_new -> v_key) THEN
      RETURN NULL;
    END IF;
  ELSE
    v_changed := v_cols;
  END IF;
  v_row := coalesce(v_new, v_old);
  v_row_key := v_row ->> v_key;
  IF v_row_key IS NULL THEN
    RAISE EXCEPTION 'hubsync: key column %.% is NULL, so the change cannot be sent to HubSpot',
      TG_TABLE_NAME, v_key;
  END IF;
  INSERT INTO hubsync.outbox
    (object, source_table, op, row_key, hs_object_id, changed_columns, old_row, new_row)
  VALUES
    (v_object, format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME), TG_OP, v_row_key,
     CASE WHEN v_id_col IS NULL THEN NULL ELSE (v_row ->> v_id_col)::bigint END,
     v_changed, v_old, v_new);
  PERFORM pg_notify('hubsync_outbox', v_object);
  RETURN NULL;
END $$;
COMMENT ON FUNCTION hubsync.capture_row() IS
  'AFTER row trigger on synced tables: records the change in hubsync.outbox and wakes hubsync (NOTIFY hubsync_outbox). Skipped for hubsync''s own writes (hubsync.origin = hubsync).';

CREATE FUNCTION hubsync.refuse_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF current_setting('hubsync.origin', true) = 'hubsync'
     OR current_setting('hubsync.allow_truncate', true) = 'on'
     OR EXISTS (SELECT 1 FROM hubsync.captured_tables
                WHERE source_table = format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME)
                  AND allow_truncate) THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'TRUNCATE of %.% refused: the table is synced with HubSpot by hubsync, and a TRUNCATE cannot be sent to HubSpot as deletes', TG_TABLE_SCHEMA, TG_TABLE_NAME
    USING ERRCODE = 'HS001',
          HINT = 'Use DELETE to delete the records in HubSpot too. To empty only the local copy, run SET hubsync.allow_truncate = on first (or set allow_truncate in hubsync.captured_tables).';
END $$;
COMMENT ON FUNCTION hubsync.refuse_truncate() IS
  'BEFORE TRUNCATE trigger on synced tables: refuses TRUNCATE unless hubsync.allow_truncate = on or the table allows it.';
