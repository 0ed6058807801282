//! Writes HubSpot may have accepted that PostgreSQL never recorded: the writer claimed
//! outbox entries, sent their values and died before its transaction committed (lesson 14).
//! The entries stay pending, so the values sent are still in them (`new_row`). When HubSpot
//! now holds one of those values and the shadow does not, the value is hubsync's own
//! write, not a HubSpot edit: the inbound merge takes it as agreed at that entry, so a
//! newer PostgreSQL edit of the field is a one-sided change and not a conflict with itself.

use std::collections::HashMap;

use hubsync_store::{GenericClient, StoreError};
use serde_json::Value;

use super::TwoWayObject;
use super::inbound::entries_of_records;
use super::shadow_io::stored_postgres_version;
use crate::model::{FieldValue, ShadowField, Side, Version};

/// Values of claimed (possibly sent) pending entries: id → column → `(entry id, value)`.
pub(crate) type SentValues = HashMap<i64, HashMap<String, Vec<(i64, FieldValue)>>>;

/// Reads the values the writer may have sent to HubSpot without recording them, per record
/// and column: those of pending entries that were the newest change of their column in
/// some claim (the writer coalesces a claim and sends only each column's last value).
///
/// # Errors
/// Database errors.
pub(crate) async fn sent_values<C: GenericClient>(
    client: &C,
    object: &TwoWayObject,
    ids: &[i64],
) -> Result<SentValues, StoreError> {
    let (record_id, filter) = entries_of_records(object, "o");
    let sql = format!(
        "SELECT {record_id}, o.id, o.attempts, o.changed_columns, o.new_row \
         FROM hubsync.outbox o \
         WHERE {filter} AND o.op <> 'DELETE' AND o.attempts > 0 AND o.new_row IS NOT NULL"
    );
    let rows = client
        .query(&sql, &[&object.name(), &ids])
        .await
        .map_err(|e| StoreError::postgres("read values the writer may have sent", e))?;
    let mut claimed: HashMap<i64, HashMap<String, Vec<Claimed>>> = HashMap::new();
    for r in rows {
        let Some(id): Option<i64> = r.get(0) else {
            continue;
        };
        let (entry, attempts): (i64, i32) = (r.get(1), r.get(2));
        let columns: Vec<String> = r.get(3);
        let new_row: Value = r.get(4);
        let record = claimed.entry(id).or_default();
        for column in columns {
            if let Some(v) = new_row.get(&column) {
                record.entry(column).or_default().push(Claimed {
                    entry,
                    attempts,
                    value: text(v),
                });
            }
        }
    }
    Ok(claimed
        .into_iter()
        .map(|(id, columns)| {
            let columns = columns
                .into_iter()
                .map(|(column, entries)| (column, newest_in_some_claim(&entries)))
                .collect();
            (id, columns)
        })
        .collect())
}

/// A claimed entry's value of one column.
#[derive(Debug, Clone, PartialEq)]
struct Claimed {
    entry: i64,
    attempts: i32,
    value: FieldValue,
}

/// The entries that were the newest change of the column in at least one claim. A claim
/// takes every pending entry of a record, so an entry claimed no more often than a newer
/// one of the same column was claimed with it every time: its value was never sent.
fn newest_in_some_claim(entries: &[Claimed]) -> Vec<(i64, FieldValue)> {
    entries
        .iter()
        .filter(|e| {
            !entries
                .iter()
                .any(|f| f.entry > e.entry && f.attempts >= e.attempts)
        })
        .map(|e| (e.entry, e.value.clone()))
        .collect()
}

/// A captured JSON value as the merge compares it (`""` is empty, like HubSpot's).
fn text(v: &Value) -> FieldValue {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The shadow to merge against when HubSpot's `value` differs from the agreed one but is
/// what the newest matching claimed entry (`sent`) set: agreed at that entry, seen at
/// `hubspot_version`. `None` when the value is not an unrecorded write of hubsync's (or a
/// manual conflict is open on the field).
pub(crate) fn echo_shadow(
    shadow: Option<&ShadowField>,
    value: &FieldValue,
    hubspot_version: Version,
    sent: Option<&Vec<(i64, FieldValue)>>,
    now_ms: i64,
) -> Option<ShadowField> {
    if shadow.is_some_and(|s| s.conflict.is_some() || &s.value == value) {
        return None;
    }
    let entry = sent?
        .iter()
        .filter(|(_, v)| v == value)
        .map(|(id, _)| *id)
        .max()?;
    Some(ShadowField {
        value: value.clone(),
        hubspot_version: Some(hubspot_version),
        postgres_version: Some(stored_postgres_version(entry)),
        agreed_at_ms: now_ms,
        origin: Some(Side::Postgres),
        conflict: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed(value: &str) -> ShadowField {
        ShadowField {
            value: Some(value.to_owned()),
            ..ShadowField::blank(1)
        }
    }

    #[test]
    fn a_value_always_claimed_with_a_newer_one_was_never_sent() {
        let claimed = |entry, attempts, value: &str| Claimed {
            entry,
            attempts,
            value: Some(value.to_owned()),
        };
        // Claimed together once: only the newest went out.
        let together = [claimed(1, 1, "a"), claimed(2, 1, "b")];
        assert_eq!(newest_in_some_claim(&together), vec![(2, Some("b".into()))]);
        // "a" was claimed once before "b" existed: both may have gone out.
        let apart = [claimed(1, 2, "a"), claimed(2, 1, "b")];
        assert_eq!(newest_in_some_claim(&apart).len(), 2);
    }

    #[test]
    fn only_a_value_a_claimed_entry_set_is_taken_for_an_echo() {
        let sent = vec![(10, Some("p5".to_owned())), (12, Some("p7".to_owned()))];
        let hs = Version::hubspot(5);
        let old = agreed("p1");
        let echo = echo_shadow(Some(&old), &Some("p5".into()), hs, Some(&sent), 9);
        assert_eq!(
            echo.as_ref().map(|s| (s.value.clone(), s.postgres_version)),
            Some((Some("p5".into()), Some(stored_postgres_version(10))))
        );
        assert_eq!(
            echo_shadow(Some(&old), &Some("other".into()), hs, Some(&sent), 9),
            None
        );
        assert_eq!(
            echo_shadow(Some(&old), &Some("p5".into()), hs, None, 9),
            None
        );
        let same = agreed("p5");
        assert_eq!(
            echo_shadow(Some(&same), &Some("p5".into()), hs, Some(&sent), 9),
            None
        );
    }
}
