//! [`TwoWayObject`]: one object's table mapping plus its per-field rules, as both directions
//! of two-way sync see it, and the capture spec derived from it.

use hubsync_hubspot::HubSpotClient;
use hubsync_store::{
    CaptureSpec,
    schema::{ColumnMapping, TableMapping},
};

use crate::clock::SkewRule;
use crate::model::Side;
use crate::policy::FieldRules;

/// The hubsync-managed HubSpot property carrying a row's `hubsync_row_id` (created with
/// `hasUniqueValue` on first run). Creates are upserts keyed on it, so a create retried
/// after a crash updates the record it already made instead of duplicating it (lessons 12,
/// 14); inbound records carrying it are linked to the row that created them.
pub const ROW_ID_PROPERTY: &str = "hubsync_row_id";

/// The PostgreSQL key column (see `hubsync_store::schema`).
pub(crate) const ROW_ID_COLUMN: &str = "hubsync_row_id";

/// The archive marker column: setting it archives the record in HubSpot.
pub(crate) const ARCHIVED_COLUMN: &str = "archived_at";

/// One object under two-way (or PostgreSQL → HubSpot) sync.
#[derive(Debug, Clone)]
pub struct TwoWayObject {
    /// The table mapping (from `hubsync_store::catalog`).
    pub mapping: TableMapping,
    /// Direction and conflict policy per field. HubSpot's read-only properties from the
    /// mapping are always added as read-only, whatever the caller passed.
    pub rules: FieldRules,
    /// How `last-write-wins` compares the two sides' clocks.
    pub clock: SkewRule,
    /// Where the inbound merge reads HubSpot's per-property timestamps to order a
    /// `last-write-wins` conflict by the field's own write ([`Self::with_history`]). Without
    /// it the record's `updatedAt` stands in (an upper bound: HubSpot may win a conflict it
    /// should have lost, never the other way round).
    pub history: Option<HubSpotClient>,
}

impl TwoWayObject {
    /// The object with its rules; read-only columns of the mapping are forced
    /// `hubspot-to-postgres`.
    #[must_use]
    pub fn new(mapping: TableMapping, rules: FieldRules) -> TwoWayObject {
        let read_only: Vec<String> = mapping
            .columns
            .iter()
            .filter(|c| c.read_only)
            .map(|c| c.property.clone())
            .collect();
        let rules = rules.with_read_only(read_only);
        TwoWayObject {
            mapping,
            clock: rules.skew(),
            rules,
            history: None,
        }
    }

    /// The object as a pass sees it: its mapping and rules, reading property history with
    /// the pass's HubSpot client.
    #[must_use]
    pub fn from_context(ctx: &crate::hs_to_pg::ObjectContext) -> TwoWayObject {
        TwoWayObject::new(ctx.mapping.clone(), ctx.settings.rules.clone())
            .with_history(ctx.hubspot.clone())
    }

    /// The object, reading HubSpot's property history through `client` when a conflict
    /// needs a field's own timestamp.
    #[must_use]
    pub fn with_history(mut self, client: HubSpotClient) -> TwoWayObject {
        self.history = Some(client);
        self
    }

    /// The HubSpot object name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.mapping.object
    }

    /// Whether PostgreSQL may change `property` in HubSpot: the effective direction allows
    /// it and HubSpot does not treat it as read-only. The row-id property is managed.
    #[must_use]
    pub fn writes_back(&self, property: &str) -> bool {
        property != ROW_ID_PROPERTY
            && !self.rules.is_read_only(property)
            && self
                .rules
                .resolve(property)
                .direction
                .allows_from(Side::Postgres)
    }

    /// Promoted columns whose changes are sent to HubSpot.
    pub fn written_columns(&self) -> impl Iterator<Item = &ColumnMapping> {
        self.mapping
            .columns
            .iter()
            .filter(|c| self.writes_back(&c.property))
    }

    /// The column mapping of a table column, if it holds a property.
    #[must_use]
    pub fn property_of_column(&self, column: &str) -> Option<&ColumnMapping> {
        self.mapping.columns.iter().find(|c| c.column == column)
    }

    /// What the capture triggers watch: written property columns, `archived_at` (archive)
    /// and the primary association columns, keyed by `hubsync_row_id`.
    #[must_use]
    pub fn capture_spec(&self) -> CaptureSpec {
        let mut columns: Vec<String> = self.written_columns().map(|c| c.column.clone()).collect();
        columns.push(ARCHIVED_COLUMN.to_owned());
        columns.extend(
            self.mapping
                .primary_columns
                .iter()
                .map(|p| p.column.clone()),
        );
        CaptureSpec {
            schema: self.mapping.schema.clone(),
            table: self.mapping.table.clone(),
            object: self.mapping.object.clone(),
            key_column: ROW_ID_COLUMN.to_owned(),
            id_column: Some("hs_object_id".to_owned()),
            columns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{ConflictPolicy, Direction, FieldOverride, FieldRule};
    use hubsync_store::values::ColumnType;

    fn column(property: &str, read_only: bool) -> ColumnMapping {
        ColumnMapping {
            property: property.into(),
            column: property.into(),
            column_type: ColumnType::Text,
            hs_type: "string".into(),
            field_type: "text".into(),
            label: property.into(),
            read_only,
            type_changed: false,
        }
    }

    #[test]
    fn read_only_and_one_way_fields_are_not_captured() {
        let mapping = TableMapping {
            schema: "hubspot".into(),
            object: "contacts".into(),
            table: "contacts".into(),
            columns: vec![
                column("email", false),
                column("hs_score", true),
                column("owner", false),
            ],
            unpromoted: Default::default(),
            primary_columns: vec![],
        };
        let rules = FieldRules::new(FieldRule {
            direction: Direction::TwoWay,
            policy: ConflictPolicy::LastWriteWins,
        })
        .with_override(
            "owner",
            FieldOverride {
                direction: Some(Direction::HubSpotToPostgres),
                policy: None,
            },
        );
        let object = TwoWayObject::new(mapping, rules);
        let spec = object.capture_spec();
        assert_eq!(
            spec.columns,
            vec!["email".to_owned(), "archived_at".to_owned()]
        );
        assert_eq!(spec.key_column, "hubsync_row_id");
        assert!(!object.writes_back(ROW_ID_PROPERTY));
    }
}
