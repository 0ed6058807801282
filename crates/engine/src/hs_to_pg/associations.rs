//! Associations: junction tables per object pair, filled from HubSpot's v4 batch read
//! (≤ 1,000 source ids per call, exempt from the burst budget), plus the primary company
//! column the store keeps beside them.
//!
//! Association changes do not bump a record's modified date (lessons.md 8), so they are
//! read in two ways: the associations of every record an incremental pass wrote are
//! re-read (the ids wait in the incremental checkpoint until then, so a crash cannot lose
//! them), and a periodic sweep re-reads every record's associations, walking the table's
//! ids with a checkpoint per batch.
//!
//! Each pair is stored once, from the child to the parent (`contacts_companies`,
//! `deals_companies`, `deals_contacts`, …): parents are synced first, and the child's
//! side is the one HubSpot marks primary.

use std::collections::BTreeSet;

use chrono::Utc;
use hubsync_hubspot::HubSpotClient;
use hubsync_store::{
    GenericClient, Store,
    associations::{
        AssociationMapping, AssociationRow, ensure_association_table, replace_associations,
    },
};
use tokio::sync::watch;

use super::checkpoint::{self, ASSOCIATIONS, INCREMENTAL, IncrementalPosition, SweepPosition};
use super::discovery::ObjectContext;
use super::error::{SyncError, on};
use super::progress::{Phase, Progress};

/// The order objects sync in and the direction of each pair: lower ranks are parents.
pub fn rank(object: &str) -> u8 {
    match object {
        "companies" => 0,
        "contacts" => 1,
        "deals" => 2,
        "tickets" => 3,
        _ => 4,
    }
}

/// The association pairs `(from, to)` among `objects`: every unordered pair once, from the
/// higher rank (child) to the lower (parent); equal ranks by name.
pub fn pairs(objects: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, a) in objects.iter().enumerate() {
        for b in objects.iter().skip(i + 1) {
            if a == b {
                continue;
            }
            let a_child = (rank(a), a.as_str()) > (rank(b), b.as_str());
            let (from, to) = if a_child { (a, b) } else { (b, a) };
            out.push((from.clone(), to.clone()));
        }
    }
    out.sort_by(|x, y| {
        (rank(&x.0), &x.0, rank(&x.1), &x.1).cmp(&(rank(&y.0), &y.0, rank(&y.1), &y.1))
    });
    out
}

/// Creates (or finds) the junction table of every pair among `contexts`.
///
/// # Errors
/// PostgreSQL failures.
pub async fn ensure_junctions(
    store: &Store,
    contexts: &[ObjectContext],
) -> Result<Vec<AssociationMapping>, SyncError> {
    let names: Vec<String> = contexts.iter().map(|c| c.name().to_owned()).collect();
    let mut junctions = Vec::new();
    for (from, to) in pairs(&names) {
        let (Some(f), Some(t)) = (
            contexts.iter().find(|c| c.name() == from),
            contexts.iter().find(|c| c.name() == to),
        ) else {
            continue;
        };
        let mut conn = store.client().await.map_err(on(&from))?;
        let mapping = ensure_association_table(&mut conn, &f.mapping, &t.mapping)
            .await
            .map_err(on(&from))?;
        junctions.push(mapping);
    }
    Ok(junctions)
}

/// Reads the associations of `ids` for one junction from HubSpot (in calls of at most
/// `batch` ids), as junction rows.
///
/// # Errors
/// The client's error.
pub async fn fetch(
    client: &HubSpotClient,
    junction: &AssociationMapping,
    ids: &[i64],
    batch: usize,
) -> Result<Vec<AssociationRow>, hubsync_hubspot::HubSpotError> {
    let mut rows = Vec::new();
    for chunk in ids.chunks(batch.clamp(1, 1_000)) {
        let from: Vec<u64> = chunk
            .iter()
            .filter_map(|id| u64::try_from(*id).ok())
            .collect();
        let read = client
            .read_associations(&junction.from_object, &junction.to_object, &from)
            .await?;
        for (from_id, targets) in read.results {
            let Ok(from_id) = i64::try_from(from_id) else {
                continue;
            };
            for target in targets {
                let Ok(to_id) = i64::try_from(target.to_object_id) else {
                    continue;
                };
                for kind in target.association_types {
                    rows.push(AssociationRow {
                        from_id,
                        to_id,
                        type_id: i32::try_from(kind.type_id).unwrap_or(i32::MAX),
                        category: kind.category,
                        label: kind.label.filter(|l| !l.is_empty()),
                    });
                }
            }
        }
    }
    Ok(rows)
}

/// Everything read for one batch of source ids, ready to store.
pub(crate) struct Fetched<'j> {
    batches: Vec<(&'j AssociationMapping, Vec<AssociationRow>)>,
}

/// Reads the associations of `ids` for every junction.
pub(crate) async fn fetch_all<'j>(
    client: &HubSpotClient,
    ctx: &ObjectContext,
    junctions: &[&'j AssociationMapping],
    ids: &[i64],
) -> Result<Fetched<'j>, SyncError> {
    let mut batches = Vec::with_capacity(junctions.len());
    for junction in junctions {
        let rows = fetch(client, junction, ids, ctx.settings.association_batch)
            .await
            .map_err(on(ctx.name()))?;
        batches.push((*junction, rows));
    }
    Ok(Fetched { batches })
}

/// Stores what [`fetch_all`] read: the associations of `ids` become exactly those.
pub(crate) async fn apply(
    tx: &impl GenericClient,
    object: &str,
    ids: &[i64],
    fetched: &Fetched<'_>,
) -> Result<(), SyncError> {
    for (junction, rows) in &fetched.batches {
        replace_associations(tx, junction, ids, rows)
            .await
            .map_err(on(object))?;
    }
    Ok(())
}

/// The junctions whose from-side is `object`.
pub fn outgoing<'a>(
    junctions: &'a [AssociationMapping],
    object: &str,
) -> Vec<&'a AssociationMapping> {
    junctions
        .iter()
        .filter(|j| j.from_object == object)
        .collect()
}

/// Re-reads the associations of the records waiting in the incremental checkpoint.
///
/// # Errors
/// HubSpot or PostgreSQL failures (what was stored stays stored).
pub async fn flush_pending(
    client: &HubSpotClient,
    store: &Store,
    ctx: &ObjectContext,
    junctions: &[AssociationMapping],
    progress: &dyn Progress,
) -> Result<u64, SyncError> {
    let object = ctx.name();
    let mine = outgoing(junctions, object);
    let mut conn = store.client().await.map_err(on(object))?;
    let mut pos: IncrementalPosition = checkpoint::load(&conn, object, INCREMENTAL)
        .await
        .map_err(on(object))?;
    if mine.is_empty() {
        if !pos.pending_associations.is_empty() {
            pos.pending_associations.clear();
            checkpoint::save(&conn, object, INCREMENTAL, &pos)
                .await
                .map_err(on(object))?;
        }
        return Ok(0);
    }
    let mut done = 0u64;
    let batch = ctx.settings.association_batch.clamp(1, 1_000);
    while !pos.pending_associations.is_empty() {
        let unique: BTreeSet<i64> = pos.pending_associations.iter().copied().collect();
        let chunk: Vec<i64> = unique.iter().copied().take(batch).collect();
        let fetched = fetch_all(client, ctx, &mine, &chunk).await?;
        let tx = conn.transaction().await.map_err(on(object))?;
        apply(&tx, object, &chunk, &fetched).await?;
        let taken: BTreeSet<i64> = chunk.iter().copied().collect();
        pos.pending_associations = unique
            .into_iter()
            .filter(|id| !taken.contains(id))
            .collect();
        checkpoint::save(&tx, object, INCREMENTAL, &pos)
            .await
            .map_err(on(object))?;
        tx.commit().await.map_err(on(object))?;
        done += chunk.len() as u64;
        progress.advance(object, Phase::Associations, chunk.len() as u64);
    }
    Ok(done)
}

/// Re-reads every association of the object's live records when the sweep is due, batch
/// by batch with a checkpoint after each.
///
/// With `follow` (the backfill's signal: records written, finished), the sweep runs
/// alongside a backfill: it trails the rows the backfill has committed (the list endpoint
/// delivers ids in ascending order), reading full batches of 1,000 as they become
/// available, so association reads (exempt from the burst budget) overlap the list calls.
/// It completes when the backfill finishes; if the backfill fails it stops and resumes from
/// its checkpoint with the next pass.
///
/// # Errors
/// HubSpot or PostgreSQL failures (the sweep continues from its checkpoint next time).
pub async fn sweep(
    client: &HubSpotClient,
    store: &Store,
    ctx: &ObjectContext,
    junctions: &[AssociationMapping],
    force: bool,
    mut follow: Option<watch::Receiver<(u64, bool)>>,
    progress: &dyn Progress,
) -> Result<u64, SyncError> {
    let object = ctx.name();
    let mine = outgoing(junctions, object);
    if mine.is_empty() {
        return Ok(0);
    }
    let mut conn = store.client().await.map_err(on(object))?;
    let pos: SweepPosition = checkpoint::load(&conn, object, ASSOCIATIONS)
        .await
        .map_err(on(object))?;
    let now = Utc::now();
    if !force && !pos.due(ctx.settings.association_sweep_every, now) {
        return Ok(0);
    }
    let mut run = pos.run_or_start(now);
    progress.start(object, Phase::Associations, None);
    let select = format!(
        "SELECT hs_object_id FROM {} WHERE hs_object_id > $1 AND archived_at IS NULL \
         ORDER BY hs_object_id LIMIT $2",
        ctx.mapping.qualified_table()
    );
    let limit = i64::try_from(ctx.settings.association_batch.clamp(1, 1_000)).unwrap_or(1_000);
    let mut done = 0u64;
    loop {
        let finished = follow.as_ref().is_none_or(|rx| rx.borrow().1);
        let ids: Vec<i64> = conn
            .query(&select, &[&run.after_id, &limit])
            .await
            .map_err(on(object))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let full = i64::try_from(ids.len()).unwrap_or(i64::MAX) >= limit;
        if !finished && !full {
            // Wait for the backfill to commit more rows (or to end).
            let Some(rx) = follow.as_mut() else { break };
            if rx.changed().await.is_err() && !rx.borrow().1 {
                return Ok(done); // the backfill failed; the sweep resumes next pass
            }
            continue;
        }
        let Some(&last) = ids.last() else { break };
        let fetched = fetch_all(client, ctx, &mine, &ids).await?;
        let tx = conn.transaction().await.map_err(on(object))?;
        apply(&tx, object, &ids, &fetched).await?;
        run.after_id = last;
        let position = SweepPosition {
            running: Some(run.clone()),
            ..pos.clone()
        };
        checkpoint::save(&tx, object, ASSOCIATIONS, &position)
            .await
            .map_err(on(object))?;
        tx.commit().await.map_err(on(object))?;
        done += ids.len() as u64;
        progress.advance(object, Phase::Associations, ids.len() as u64);
    }
    checkpoint::save(&conn, object, ASSOCIATIONS, &SweepPosition::completed(&run))
        .await
        .map_err(on(object))?;
    progress.finish(object, Phase::Associations);
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn pairs_run_from_child_to_parent_once() {
        let p = pairs(&names(&["deals", "contacts", "companies"]));
        let want = [
            ("contacts", "companies"),
            ("deals", "companies"),
            ("deals", "contacts"),
        ];
        let got: Vec<(&str, &str)> = p.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(got, want);
        assert!(pairs(&names(&["contacts"])).is_empty());
        let custom = pairs(&names(&["pets", "contacts"]));
        assert_eq!(custom, vec![("pets".to_owned(), "contacts".to_owned())]);
    }
}
