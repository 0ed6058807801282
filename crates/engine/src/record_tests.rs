//! Unit tests of the record-level merge: creates, deletes, tombstones and restores.

use std::collections::BTreeMap;

use super::*;
use crate::merge::FieldOutcome;
use crate::model::{FieldValue, Observed, Version};
use crate::policy::{ConflictPolicy, Direction, FieldRule};

fn rules(direction: Direction) -> FieldRules {
    FieldRules::new(FieldRule {
        direction,
        policy: ConflictPolicy::LastWriteWins,
    })
}

fn fields(side: Side, pairs: &[(&str, &str, i64)]) -> BTreeMap<String, Observed> {
    pairs
        .iter()
        .map(|(name, value, at)| {
            let version = match side {
                Side::HubSpot => Version::hubspot(*at),
                Side::Postgres => Version::postgres(*at, *at),
            };
            (
                (*name).to_owned(),
                Observed::new(Some((*value).to_owned()), version),
            )
        })
        .collect()
}

fn input(
    hs_id: Option<HsObjectId>,
    hubspot: Option<SideRecord>,
    postgres: Option<SideRecord>,
) -> RecordInput {
    RecordInput {
        key: RecordKey("r1".into()),
        hs_id,
        shadow: None,
        hubspot,
        postgres,
    }
}

fn ctx() -> MergeContext {
    MergeContext::default()
}

/// A record synced with `email = a` on both sides.
fn synced() -> ShadowRecord {
    let both = input(
        Some(7),
        Some(SideRecord::Live(fields(
            Side::HubSpot,
            &[("email", "a", 10)],
        ))),
        Some(SideRecord::Live(fields(
            Side::Postgres,
            &[("email", "a", 10)],
        ))),
    );
    merge_record(&both, &rules(Direction::TwoWay), &ctx())
        .shadow
        .unwrap_or_default()
}

fn value(m: &RecordMerge, field: &str) -> Option<FieldValue> {
    m.shadow
        .as_ref()
        .and_then(|s| s.fields.get(field))
        .map(|f| f.value.clone())
}

#[test]
fn new_hubspot_record_is_inserted_into_postgres() {
    let m = merge_record(
        &input(
            Some(7),
            Some(SideRecord::Live(fields(
                Side::HubSpot,
                &[("email", "a", 1)],
            ))),
            None,
        ),
        &rules(Direction::TwoWay),
        &ctx(),
    );
    assert_eq!(m.action, RecordAction::CreateInPostgres);
    assert_eq!(m.shadow.as_ref().and_then(|s| s.hs_id), Some(7));
}

#[test]
fn new_row_is_created_in_hubspot_unless_mirror_only() {
    let row = Some(SideRecord::Live(fields(
        Side::Postgres,
        &[("email", "a", 1)],
    )));
    let m = merge_record(
        &input(None, None, row.clone()),
        &rules(Direction::TwoWay),
        &ctx(),
    );
    assert_eq!(m.action, RecordAction::CreateInHubSpot);
    assert_eq!(
        m.fields.get("email"),
        Some(&FieldOutcome::ApplyToHubSpot(Some("a".into())))
    );
    let m = merge_record(
        &input(None, None, row),
        &rules(Direction::HubSpotToPostgres),
        &ctx(),
    );
    assert_eq!(
        m.action,
        RecordAction::Conflict(RecordConflict::AgainstDirection {
            side: Side::Postgres,
            change: RecordChange::Create
        })
    );
    assert_eq!(
        m.shadow.and_then(|s| s.conflict),
        Some(RecordConflict::AgainstDirection {
            side: Side::Postgres,
            change: RecordChange::Create
        })
    );
}

#[test]
fn delete_wins_over_a_concurrent_update_and_is_audited() {
    let mut i = input(
        Some(7),
        Some(SideRecord::Archived(Version::hubspot(50))),
        Some(SideRecord::Live(fields(
            Side::Postgres,
            &[("email", "b", 40)],
        ))),
    );
    i.shadow = Some(synced());
    let m = merge_record(&i, &rules(Direction::TwoWay), &ctx());
    assert_eq!(m.action, RecordAction::ArchiveInPostgres);
    assert_eq!(m.audit.len(), 1);
    assert_eq!(m.audit[0].1.reason, ResolvedBy::Deleted);
    assert_eq!(m.audit[0].1.overridden, Some("b".into()));
    let tomb = m.shadow.as_ref().and_then(|s| s.tombstone);
    assert_eq!(
        tomb,
        Some(Tombstone {
            side: Side::HubSpot,
            version: Version::hubspot(50)
        })
    );

    // The same late update again: ignored, not audited twice, nothing written.
    let again = RecordInput {
        shadow: m.shadow,
        hubspot: None,
        ..i
    };
    let m2 = merge_record(&again, &rules(Direction::TwoWay), &ctx());
    assert_eq!((m2.action, m2.audit.len()), (RecordAction::Deleted, 0));
}

#[test]
fn postgres_delete_archives_in_hubspot_and_no_update_resurrects() {
    let mut i = input(
        Some(7),
        None,
        Some(SideRecord::Archived(Version::postgres(60, 60))),
    );
    i.shadow = Some(synced());
    let m = merge_record(&i, &rules(Direction::TwoWay), &ctx());
    assert_eq!(m.action, RecordAction::ArchiveInHubSpot);
    // A late HubSpot update arrives: the record stays deleted, the update is audited.
    let late = RecordInput {
        shadow: m.shadow,
        hubspot: Some(SideRecord::Live(fields(
            Side::HubSpot,
            &[("email", "z", 70)],
        ))),
        postgres: None,
        ..i
    };
    let m2 = merge_record(&late, &rules(Direction::TwoWay), &ctx());
    assert_eq!(m2.action, RecordAction::Deleted);
    assert!(m2.fields.is_empty());
    assert_eq!(m2.audit.len(), 1);
    // Its archive echo from HubSpot changes nothing.
    let echo = RecordInput {
        hubspot: Some(SideRecord::Archived(Version::hubspot(61))),
        ..late
    };
    assert_eq!(
        merge_record(&echo, &rules(Direction::TwoWay), &ctx()).action,
        RecordAction::Deleted
    );
}

#[test]
fn hubspot_restore_restores_the_row_and_postgres_restore_is_queued() {
    let mut i = input(
        Some(7),
        Some(SideRecord::Archived(Version::hubspot(50))),
        None,
    );
    i.shadow = Some(synced());
    let deleted = merge_record(&i, &rules(Direction::TwoWay), &ctx()).shadow;
    let restore = RecordInput {
        shadow: deleted.clone(),
        hubspot: Some(SideRecord::Restored(
            Version::hubspot(80),
            fields(Side::HubSpot, &[("email", "c", 80)]),
        )),
        ..i.clone()
    };
    let m = merge_record(&restore, &rules(Direction::TwoWay), &ctx());
    assert_eq!(m.action, RecordAction::RestoreInPostgres);
    assert_eq!(value(&m, "email"), Some(Some("c".into())));
    assert_eq!(m.shadow.as_ref().and_then(|s| s.tombstone), None);
    // A duplicate of the old archive event does not delete it again.
    let dup = RecordInput {
        shadow: m.shadow,
        ..i.clone()
    };
    assert_eq!(
        merge_record(&dup, &rules(Direction::TwoWay), &ctx()).action,
        RecordAction::Update
    );

    let pg_restore = RecordInput {
        shadow: deleted,
        hubspot: None,
        postgres: Some(SideRecord::Restored(
            Version::postgres(90, 90),
            BTreeMap::new(),
        )),
        ..i
    };
    let m = merge_record(&pg_restore, &rules(Direction::TwoWay), &ctx());
    assert_eq!(
        m.action,
        RecordAction::Conflict(RecordConflict::RestoreNotPossibleInHubSpot)
    );
}

#[test]
fn delete_against_direction_is_queued_not_applied() {
    let mut i = input(
        Some(7),
        None,
        Some(SideRecord::Archived(Version::postgres(60, 60))),
    );
    i.shadow = Some(synced());
    let m = merge_record(&i, &rules(Direction::HubSpotToPostgres), &ctx());
    assert!(matches!(
        m.action,
        RecordAction::Conflict(RecordConflict::AgainstDirection { .. })
    ));
    assert!(m.fields.is_empty());
    // The conflict holds later edits too, until a person clears it.
    let later = RecordInput {
        shadow: m.shadow.clone(),
        hubspot: Some(SideRecord::Live(fields(
            Side::HubSpot,
            &[("email", "q", 99)],
        ))),
        postgres: None,
        ..i
    };
    let m2 = merge_record(&later, &rules(Direction::HubSpotToPostgres), &ctx());
    assert_eq!(m2.action, m.action);
    assert_eq!(m2.shadow, m.shadow);
}

#[test]
fn archived_never_synced_record_leaves_a_tombstone() {
    let m = merge_record(
        &input(
            Some(7),
            Some(SideRecord::Archived(Version::hubspot(5))),
            None,
        ),
        &rules(Direction::TwoWay),
        &ctx(),
    );
    assert_eq!(m.action, RecordAction::Deleted);
    assert!(m.shadow.is_some_and(|s| s.tombstone.is_some()));
}
