//! HubSpot records → rows for the store: only synced properties are kept (the allowlist
//! also filters what HubSpot returns unasked), timestamps come from the record, and the ids
//! a record absorbed in merges are picked out. [`prepare_batch`] does all of it, plus the
//! upsert's parameters, for a whole batch without touching PostgreSQL, so that a batch can
//! be prepared while the one before it is written.

use std::collections::BTreeMap;

use hubsync_hubspot::SimpleObject;
use hubsync_store::upsert::{PreparedRows, RecordRow};

use super::discovery::ObjectContext;
use crate::model::Side;
use crate::settings::{Direction, PropertySelection};

/// The property listing the ids a record absorbed in merges (`;`-joined).
pub const MERGED_IDS_PROPERTY: &str = "hs_merged_object_ids";

/// A record converted for the store, with the merge information it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The row to upsert.
    pub row: RecordRow,
    /// Ids merged into this record (losers), from `hs_merged_object_ids`.
    pub merged_ids: Vec<i64>,
}

/// Converts one record. Properties outside `selection` are dropped (HubSpot returns some
/// unasked: `createdate`, the modified date, `hs_object_id`).
pub fn convert(record: SimpleObject, selection: &PropertySelection) -> Converted {
    let id = i64::try_from(record.id).unwrap_or(i64::MAX);
    let merged_ids = record
        .property(MERGED_IDS_PROPERTY)
        .map(|list| {
            list.split(';')
                .filter_map(|s| s.trim().parse::<i64>().ok())
                .filter(|loser| *loser != id)
                .collect()
        })
        .unwrap_or_default();
    let mut properties: BTreeMap<String, Option<String>> = record.properties;
    properties.retain(|name, _| selection.allows(name));
    let archived_at = if record.archived {
        Some(record.archived_at.unwrap_or(record.updated_at))
    } else {
        None
    };
    Converted {
        row: RecordRow {
            hs_object_id: id,
            properties,
            created_at: Some(record.created_at),
            updated_at: record.updated_at,
            archived_at,
        },
        merged_ids,
    }
}

/// A batch of records converted for the store ([`prepare_batch`]).
#[derive(Debug)]
pub struct PreparedBatch {
    /// The records as read, kept only when rows applications inserted may have to be
    /// linked to them (directions that accept PostgreSQL's changes).
    pub(crate) records: Vec<SimpleObject>,
    /// The rows to store.
    pub(crate) rows: Vec<RecordRow>,
    /// Survivor id → ids merged into it.
    pub(crate) merges: Vec<(i64, Vec<i64>)>,
    /// The upsert's statements, unless the rows still go through the two-way merge (which
    /// needs PostgreSQL and may change them).
    pub(crate) upsert: Option<PreparedRows>,
}

impl PreparedBatch {
    /// How many records the batch holds.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether the batch must be written alone, after every batch before it committed:
    /// a two-way batch (merged against the shadow on the writer) or one whose records may
    /// have to be linked to rows applications inserted.
    pub(crate) fn writes_alone(&self) -> bool {
        self.upsert.is_none() || !self.records.is_empty()
    }

    /// Ids of the records the batch stores.
    pub(crate) fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.rows.iter().map(|r| r.hs_object_id)
    }

    /// Ids of the rows the batch's merges tombstone.
    pub(crate) fn losers(&self) -> impl Iterator<Item = i64> + '_ {
        self.merges
            .iter()
            .flat_map(|(_, losers)| losers.iter().copied())
    }
}

/// Converts `records` for the object of `ctx` and prepares their upsert: CPU work only.
pub fn prepare_batch(ctx: &ObjectContext, records: Vec<SimpleObject>) -> PreparedBatch {
    let keep_records = ctx.settings.direction.allows_from(Side::Postgres);
    let mut kept = Vec::new();
    let mut rows = Vec::with_capacity(records.len());
    let mut merges = Vec::new();
    for record in records {
        if keep_records {
            kept.push(record.clone());
        }
        let Converted { row, merged_ids } = convert(record, &ctx.settings.properties);
        if !merged_ids.is_empty() {
            merges.push((row.hs_object_id, merged_ids));
        }
        rows.push(row);
    }
    let upsert = (ctx.settings.direction != Direction::TwoWay)
        .then(|| PreparedRows::new(&ctx.mapping, &rows));
    PreparedBatch {
        records: kept,
        rows,
        merges,
        upsert,
    }
}

/// The properties to request for an object: the synced ones plus the merge list (ids only,
/// needed to see merges; stored only if it is itself synced).
pub fn requested_properties(synced: &[String]) -> Vec<String> {
    let mut names: Vec<String> = synced.to_vec();
    if !names.iter().any(|n| n == MERGED_IDS_PROPERTY) {
        names.push(MERGED_IDS_PROPERTY.to_owned());
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: serde_json::Value) -> SimpleObject {
        serde_json::from_value(json).unwrap_or_else(|e| panic!("fixture: {e}"))
    }

    #[test]
    fn allowlist_filters_and_merges_are_read() {
        let r = record(serde_json::json!({
            "id": "10",
            "properties": {"email": "a@x.com", "phone": "1", "hs_merged_object_ids": "7;8;10",
                           "hs_object_id": "10"},
            "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-02-01T00:00:00Z",
            "archived": false
        }));
        let only = PropertySelection::Only(["email".to_owned()].into());
        let c = convert(r, &only);
        assert_eq!(c.row.hs_object_id, 10);
        assert_eq!(c.row.properties.len(), 1);
        assert_eq!(c.row.properties["email"].as_deref(), Some("a@x.com"));
        assert_eq!(c.merged_ids, vec![7, 8]);
        assert_eq!(c.row.archived_at, None);
    }

    #[test]
    fn archived_records_carry_their_archive_time() {
        let r = record(serde_json::json!({
            "id": "3", "properties": {},
            "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-02-01T00:00:00Z",
            "archived": true, "archivedAt": "2024-03-01T00:00:00Z"
        }));
        let c = convert(r, &PropertySelection::All);
        assert_eq!(
            c.row.archived_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2024-03-01T00:00:00+00:00")
        );
    }

    #[test]
    fn merge_list_is_always_requested_once() {
        let names = requested_properties(&["email".to_owned()]);
        assert_eq!(
            names,
            vec!["email".to_owned(), MERGED_IDS_PROPERTY.to_owned()]
        );
        let again = requested_properties(&names);
        assert_eq!(again.len(), 2);
    }
}
