-- Runtime field-mapping overrides, set from the dashboard (or by SQL) while the daemon runs.
-- They sit on top of hubsync.toml: include/exclude a property, change its direction or its
-- conflict rule. The engine reads them at the start of every pass (catalog refresh); a change
-- notifies `hubsync_mapping` so running daemons refresh at once.

CREATE TABLE hubsync.mapping_overrides (
  object     text        NOT NULL,
  property   text        NOT NULL,
  included   boolean,
  direction  text        CHECK (direction IN ('hubspot-to-postgres', 'postgres-to-hubspot', 'two-way')),
  conflict   text        CHECK (conflict IN ('last-write-wins', 'hubspot-wins', 'postgres-wins', 'manual')),
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by text,
  PRIMARY KEY (object, property),
  CHECK (included IS NOT NULL OR direction IS NOT NULL OR conflict IS NOT NULL)
);
COMMENT ON TABLE hubsync.mapping_overrides IS
  'Field-mapping changes made at run time (dashboard or SQL), applied over hubsync.toml at the start of every pass. included: true adds the property to the synced set, false removes it (NULL: as configured). direction/conflict: NULL keeps the configured rule. After a manual change run: NOTIFY hubsync_mapping.';
