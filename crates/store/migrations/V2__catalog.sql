-- The mapping from HubSpot objects and properties to PostgreSQL tables and columns.
-- Written by hubsync-store's catalog module; the source of truth for a column's name once it
-- exists (names are never left to PostgreSQL's silent 63-byte truncation).

CREATE SCHEMA IF NOT EXISTS hubsync;

-- One row per synced object: which table holds it.
CREATE TABLE hubsync.catalog_tables (
    schema_name  TEXT        NOT NULL,
    object_name  TEXT        NOT NULL,
    table_name   TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, object_name),
    UNIQUE (schema_name, table_name)
);

-- One row per property ever synced (kind 'property'), and one per primary-association column
-- (kind 'primary_association', property_name = the associated object).
CREATE TABLE hubsync.catalog_columns (
    schema_name     TEXT        NOT NULL,
    object_name     TEXT        NOT NULL,
    kind            TEXT        NOT NULL DEFAULT 'property'
                    CHECK (kind IN ('property', 'primary_association')),
    property_name   TEXT        NOT NULL,
    -- NULL while the property has never been promoted (its values live in custom_properties).
    column_name     TEXT,
    -- HubSpot's current definition.
    hs_type         TEXT,
    field_type      TEXT,
    label           TEXT,
    read_only       BOOLEAN     NOT NULL DEFAULT false,
    -- The column's actual type (TEXT, NUMERIC, DATE, TIMESTAMPTZ, TEXT[], BOOLEAN, BIGINT).
    pg_type         TEXT,
    promoted        BOOLEAN     NOT NULL,
    -- Set when HubSpot's type no longer maps to pg_type (raw values then also go to
    -- custom_properties); cleared if it maps again.
    type_changed_at TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, object_name, kind, property_name),
    UNIQUE (schema_name, object_name, column_name),
    FOREIGN KEY (schema_name, object_name)
        REFERENCES hubsync.catalog_tables (schema_name, object_name) ON DELETE CASCADE
);

-- One row per junction table (a pair of associated objects).
CREATE TABLE hubsync.catalog_associations (
    schema_name  TEXT        NOT NULL,
    from_object  TEXT        NOT NULL,
    to_object    TEXT        NOT NULL,
    table_name   TEXT        NOT NULL,
    from_column  TEXT        NOT NULL,
    to_column    TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, from_object, to_object),
    UNIQUE (schema_name, table_name)
);
