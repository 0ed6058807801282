//! `hubsync.outbox`: reading the changes the capture triggers recorded. Consumers claim
//! whole records (every pending entry of a record at once, never a record another consumer
//! has in flight), coalesce each record's entries into one change, and ack or fail them.
//!
//! A claim is a lease (`claimed_until`), not a held lock, so a consumer may talk to HubSpot
//! without keeping a transaction open; a consumer that dies leaves entries that become
//! claimable again when the lease lapses.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::Value;

use crate::{
    error::{Context as _, StoreError},
    pool::StoreClient,
    state::{parse_text, seconds},
};

/// Advisory-lock key that serialises claims ("hsoutbox"), so two consumers never split
/// one record between them.
const CLAIM_LOCK: i64 = 0x6873_6f75_7462_6f78;

text_enum! {
    /// The kind of row change (the trigger's `TG_OP`).
    Op {
        /// A row was inserted.
        Insert => "INSERT",
        /// A row was updated.
        Update => "UPDATE",
        /// A row was deleted.
        Delete => "DELETE",
    }
}

/// One captured row change.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// Capture order (commit order within one record).
    pub id: i64,
    /// HubSpot object.
    pub object: String,
    /// `schema.table` the change happened in.
    pub source_table: String,
    /// What happened.
    pub op: Op,
    /// The row's key as text.
    pub row_key: String,
    /// The row's HubSpot id, if it has one.
    pub hs_object_id: Option<i64>,
    /// Synced columns that changed (all of them for inserts and deletes).
    pub changed_columns: Vec<String>,
    /// Synced columns before (not for inserts).
    pub old_row: Option<Value>,
    /// Synced columns after (not for deletes).
    pub new_row: Option<Value>,
    /// When the statement ran.
    pub changed_at: DateTime<Utc>,
    /// Claims so far, this one included.
    pub attempts: i32,
}

const COLUMNS: &str = "id, object, source_table, op, row_key, hs_object_id, changed_columns, \
                       old_row, new_row, changed_at, attempts";

fn from_row(r: &tokio_postgres::Row) -> Result<OutboxEntry, StoreError> {
    Ok(OutboxEntry {
        id: r.get(0),
        object: r.get(1),
        source_table: r.get(2),
        op: parse_text("outbox op", r.get(3), Op::parse)?,
        row_key: r.get(4),
        hs_object_id: r.get(5),
        changed_columns: r.get(6),
        old_row: r.get(7),
        new_row: r.get(8),
        changed_at: r.get(9),
        attempts: r.get(10),
    })
}

/// Claims up to `max_records` records with pending changes (all their pending and failed
/// entries, oldest record first), for `consumer`, for `lease`. Records another consumer
/// has in flight are skipped. Entries come back in capture order.
///
/// # Errors
/// Database errors.
pub async fn claim(
    client: &mut StoreClient,
    consumer: &str,
    object: Option<&str>,
    max_records: i64,
    lease: Duration,
) -> Result<Vec<OutboxEntry>, StoreError> {
    let tx = client.transaction().await.during("begin an outbox claim")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CLAIM_LOCK])
        .await
        .during("lock outbox claims")?;
    let sql = format!(
        "WITH records AS ( \
           SELECT o.object, o.row_key, min(o.id) AS first_id FROM hubsync.outbox o \
           WHERE (o.status = 'pending' \
                  OR (o.status = 'in_flight' AND o.claimed_until <= now())) \
             AND o.available_at <= now() \
             AND ($1::text IS NULL OR o.object = $1) \
             AND NOT EXISTS (SELECT 1 FROM hubsync.outbox f \
               WHERE f.object = o.object AND f.row_key = o.row_key \
                 AND f.status = 'in_flight' AND f.claimed_until > now()) \
           GROUP BY o.object, o.row_key ORDER BY first_id LIMIT $2 \
         ), picked AS ( \
           SELECT o.id FROM hubsync.outbox o JOIN records r USING (object, row_key) \
           WHERE o.status IN ('pending', 'failed') \
              OR (o.status = 'in_flight' AND o.claimed_until <= now()) \
           FOR UPDATE OF o SKIP LOCKED \
         ) \
         UPDATE hubsync.outbox o SET status = 'in_flight', claimed_by = $3, \
           claimed_until = now() + make_interval(secs => $4), attempts = o.attempts + 1 \
         FROM picked WHERE o.id = picked.id RETURNING {}",
        COLUMNS
            .split(", ")
            .map(|c| format!("o.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let rows = tx
        .query(&sql, &[&object, &max_records, &consumer, &seconds(lease)])
        .await
        .during("claim outbox entries")?;
    tx.commit().await.during("commit an outbox claim")?;
    let mut entries = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| e.id);
    Ok(entries)
}

/// Deletes entries `consumer` finished (HubSpot accepted them). Returns how many.
///
/// # Errors
/// Database errors.
pub async fn ack(
    client: &impl GenericClient,
    consumer: &str,
    ids: &[i64],
) -> Result<u64, StoreError> {
    client
        .execute(
            "DELETE FROM hubsync.outbox WHERE id = ANY($1) AND claimed_by = $2",
            &[&ids, &consumer],
        )
        .await
        .during("ack outbox entries")
}

/// Marks entries as failed with a reason. With `retry_after` they become pending again
/// after that delay; without, they stay `failed` until the record changes again (the next
/// claim of that record takes them along).
///
/// # Errors
/// Database errors.
pub async fn fail(
    client: &impl GenericClient,
    consumer: &str,
    ids: &[i64],
    error: &str,
    retry_after: Option<Duration>,
) -> Result<u64, StoreError> {
    let retry = retry_after.map(seconds);
    client
        .execute(
            "UPDATE hubsync.outbox SET \
               status = CASE WHEN $4::float8 IS NULL THEN 'failed' ELSE 'pending' END, \
               available_at = now() + make_interval(secs => coalesce($4, 0)), \
               last_error = $3, claimed_by = NULL, claimed_until = NULL \
             WHERE id = ANY($1) AND claimed_by = $2",
            &[&ids, &consumer, &error, &retry],
        )
        .await
        .during("fail outbox entries")
}

/// Gives claimed entries back untouched (shutdown); the attempt is not counted.
///
/// # Errors
/// Database errors.
pub async fn release(
    client: &impl GenericClient,
    consumer: &str,
    ids: &[i64],
) -> Result<u64, StoreError> {
    client
        .execute(
            "UPDATE hubsync.outbox SET status = 'pending', claimed_by = NULL, \
               claimed_until = NULL, attempts = greatest(attempts - 1, 0) \
             WHERE id = ANY($1) AND claimed_by = $2",
            &[&ids, &consumer],
        )
        .await
        .during("release outbox entries")
}

/// Gives back every entry `consumer` has in flight, when it is known to be gone (a process
/// of this machine killed with claims outstanding): they become claimable at once instead of
/// when their claim lapses. Safe because every write is idempotent (creates are upserts on
/// `hubsync_row_id`, an unrecorded write's echo is recognised); the attempt stays counted.
///
/// # Errors
/// Database errors.
pub async fn release_all_of(
    client: &impl GenericClient,
    consumer: &str,
) -> Result<u64, StoreError> {
    client
        .execute(
            "UPDATE hubsync.outbox SET status = 'pending', claimed_by = NULL, claimed_until = NULL \
             WHERE status = 'in_flight' AND claimed_by = $1",
            &[&consumer],
        )
        .await
        .during("release a gone consumer's outbox entries")
}

/// Gives claimed entries back because they cannot be sent yet (e.g. an association whose
/// record is not yet created in HubSpot), noting why in `last_error`; they are claimable
/// again at once and the attempt is not counted.
///
/// # Errors
/// Database errors.
pub async fn defer(
    client: &impl GenericClient,
    consumer: &str,
    ids: &[i64],
    reason: &str,
) -> Result<u64, StoreError> {
    client
        .execute(
            "UPDATE hubsync.outbox SET status = 'pending', claimed_by = NULL, \
               claimed_until = NULL, attempts = greatest(attempts - 1, 0), last_error = $3 \
             WHERE id = ANY($1) AND claimed_by = $2",
            &[&ids, &consumer, &reason],
        )
        .await
        .during("defer outbox entries")
}

/// Entries per status for one object or all: `(pending, in_flight, failed)`.
///
/// # Errors
/// Database errors.
pub async fn counts(
    client: &impl GenericClient,
    object: Option<&str>,
) -> Result<(i64, i64, i64), StoreError> {
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'pending'), \
               count(*) FILTER (WHERE status = 'in_flight'), \
               count(*) FILTER (WHERE status = 'failed') \
             FROM hubsync.outbox WHERE $1::text IS NULL OR object = $1",
            &[&object],
        )
        .await
        .during("count outbox entries")?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// What a record's claimed entries add up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetOp {
    /// The row is new to HubSpot: create it.
    Create,
    /// Update the changed fields.
    Update,
    /// Delete (archive) it.
    Delete,
    /// Inserted and deleted again before being sent: nothing to do.
    Nothing,
}

/// One record's claimed entries folded into a single change.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordChange {
    /// HubSpot object.
    pub object: String,
    /// The row's key as text.
    pub row_key: String,
    /// The latest HubSpot id seen in the entries.
    pub hs_object_id: Option<i64>,
    /// The net effect.
    pub op: NetOp,
    /// Union of changed columns, in order of first change.
    pub changed_columns: Vec<String>,
    /// The row before the first entry.
    pub old_row: Option<Value>,
    /// The row after the last entry.
    pub new_row: Option<Value>,
    /// The last entry's id (the PostgreSQL version of the change).
    pub version: i64,
    /// When the last entry's statement ran.
    pub changed_at: DateTime<Utc>,
    /// Every entry folded in (ack or fail them together).
    pub entry_ids: Vec<i64>,
}

/// Folds entries (as returned by [`claim`]) into one change per record, in the order of
/// each record's first entry.
pub fn coalesce(entries: &[OutboxEntry]) -> Vec<RecordChange> {
    let mut sorted: Vec<&OutboxEntry> = entries.iter().collect();
    sorted.sort_by_key(|e| e.id);
    let mut out: Vec<RecordChange> = Vec::new();
    let mut first_ops: Vec<Op> = Vec::new();
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    for e in sorted {
        let Some(&i) = index.get(&(e.object.as_str(), e.row_key.as_str())) else {
            index.insert((e.object.as_str(), e.row_key.as_str()), out.len());
            first_ops.push(e.op);
            out.push(RecordChange {
                object: e.object.clone(),
                row_key: e.row_key.clone(),
                hs_object_id: e.hs_object_id,
                op: net_op(e.op, e.op),
                changed_columns: e.changed_columns.clone(),
                old_row: e.old_row.clone(),
                new_row: e.new_row.clone(),
                version: e.id,
                changed_at: e.changed_at,
                entry_ids: vec![e.id],
            });
            continue;
        };
        let change = &mut out[i];
        change.op = net_op(first_ops[i], e.op);
        for c in &e.changed_columns {
            if !change.changed_columns.contains(c) {
                change.changed_columns.push(c.clone());
            }
        }
        change.hs_object_id = e.hs_object_id.or(change.hs_object_id);
        change.new_row.clone_from(&e.new_row);
        change.version = e.id;
        change.changed_at = e.changed_at;
        change.entry_ids.push(e.id);
    }
    out
}

fn net_op(first: Op, last: Op) -> NetOp {
    match (first, last) {
        (Op::Insert, Op::Delete) => NetOp::Nothing,
        (Op::Insert, _) => NetOp::Create,
        (_, Op::Delete) => NetOp::Delete,
        _ => NetOp::Update,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(id: i64, key: &str, op: Op, cols: &[&str], new: Option<Value>) -> OutboxEntry {
        OutboxEntry {
            id,
            object: "contacts".into(),
            source_table: "hubspot.contacts".into(),
            op,
            row_key: key.into(),
            hs_object_id: key.parse().ok(),
            changed_columns: cols.iter().map(|c| (*c).to_owned()).collect(),
            old_row: None,
            new_row: new,
            changed_at: Utc::now(),
            attempts: 1,
        }
    }

    #[test]
    fn rapid_edits_fold_into_one_change_per_record() {
        let changes = coalesce(&[
            entry(3, "1", Op::Update, &["email"], Some(json!({"email": "a"}))),
            entry(
                4,
                "2",
                Op::Insert,
                &["email", "phone"],
                Some(json!({"email": "x"})),
            ),
            entry(
                5,
                "1",
                Op::Update,
                &["phone", "email"],
                Some(json!({"email": "b"})),
            ),
            entry(6, "2", Op::Delete, &["email", "phone"], None),
            entry(7, "3", Op::Update, &["email"], None),
            entry(8, "3", Op::Delete, &["email"], None),
        ]);
        assert_eq!(changes.len(), 3);
        assert_eq!(changes[0].op, NetOp::Update);
        assert_eq!(changes[0].changed_columns, ["email", "phone"]);
        assert_eq!(changes[0].new_row, Some(json!({"email": "b"})));
        assert_eq!(changes[0].entry_ids, [3, 5]);
        assert_eq!(changes[0].version, 5);
        assert_eq!(changes[1].op, NetOp::Nothing);
        assert_eq!(changes[2].op, NetOp::Delete);
    }

    #[test]
    fn insert_then_updates_is_a_create_with_the_final_row() {
        let changes = coalesce(&[
            entry(1, "k", Op::Insert, &["email"], Some(json!({"email": "a"}))),
            entry(2, "k", Op::Update, &["email"], Some(json!({"email": "b"}))),
        ]);
        assert_eq!(changes[0].op, NetOp::Create);
        assert_eq!(changes[0].new_row, Some(json!({"email": "b"})));
    }
}
