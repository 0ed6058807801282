//! What one junction row's coalesced outbox change asks of HubSpot's associations v4: read
//! the row's ends (a HubSpot id, or a record named by its `hubsync_row_id` that may not be
//! created yet), resolve the association type (type 0 = the pair's default unlabeled type,
//! or the type with the row's label), and decide: archive the old association, create the
//! new one, both (the row was changed), nothing, wait or refuse. Pure: the I/O is
//! [`super::associations`]'.

use std::collections::HashMap;

use hubsync_hubspot::{AssociationSpec, AssociationType};
use hubsync_store::{
    associations::AssociationMapping,
    state::outbox::{NetOp, RecordChange},
};
use serde_json::Value;
use uuid::Uuid;

/// One side of a junction row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// The record's HubSpot id.
    Id(i64),
    /// The record's `hubsync_row_id` (an application's row, maybe not yet in HubSpot).
    Row(Uuid),
    /// Neither is set.
    Missing,
}

/// A junction row as captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Link {
    pub(super) from: End,
    pub(super) to: End,
    pub(super) type_id: i32,
    pub(super) label: Option<String>,
}

impl Link {
    /// Reads the captured columns of a junction row.
    pub(super) fn of(row: &Value, m: &AssociationMapping) -> Link {
        let end = |id_col: &str, row_col: &str| {
            if let Some(id) = row.get(id_col).and_then(Value::as_i64) {
                End::Id(id)
            } else if let Some(r) = row
                .get(row_col)
                .and_then(Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok())
            {
                End::Row(r)
            } else {
                End::Missing
            }
        };
        Link {
            from: end(&m.from_column, &m.from_row_column()),
            to: end(&m.to_column, &m.to_row_column()),
            type_id: row
                .get("type_id")
                .and_then(Value::as_i64)
                .and_then(|t| i32::try_from(t).ok())
                .unwrap_or(0),
            label: row
                .get("label")
                .and_then(Value::as_str)
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        }
    }
}

/// An association HubSpot can be sent: both ids and the exact type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Resolved {
    pub(super) from: i64,
    pub(super) to: i64,
    pub(super) kind: AssociationType,
}

impl Resolved {
    /// The v4 type for write calls.
    pub(super) fn spec(&self) -> AssociationSpec {
        AssociationSpec {
            association_category: self.kind.category.clone(),
            association_type_id: self.kind.type_id,
        }
    }

    fn same_as(&self, other: &Resolved) -> bool {
        (self.from, self.to, self.kind.type_id) == (other.from, other.to, other.kind.type_id)
    }
}

/// What a junction row's change needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// Nothing to send: acknowledge.
    Nothing,
    /// Send these (archive first, then create).
    Send {
        archive: Option<Resolved>,
        create: Option<Resolved>,
    },
    /// A record is not created in HubSpot yet: keep the entries for later.
    Wait(String),
    /// Cannot be sent as it is: mark the row failed.
    Refuse(String),
}

/// What the planner knows besides the change: the HubSpot ids behind row ids (`None`:
/// not created yet; absent: no such row), and the pair's association types.
pub(super) struct Known<'a> {
    pub(super) mapping: &'a AssociationMapping,
    pub(super) from_rows: &'a HashMap<Uuid, Option<i64>>,
    pub(super) to_rows: &'a HashMap<Uuid, Option<i64>>,
    pub(super) types: &'a [AssociationType],
}

enum Ends {
    Ready(i64, i64),
    Wait(String),
    Refuse(String),
}

impl Known<'_> {
    fn end(&self, end: End, rows: &HashMap<Uuid, Option<i64>>, object: &str) -> Ends {
        match end {
            End::Id(id) => Ends::Ready(id, id),
            End::Row(r) => match rows.get(&r) {
                Some(Some(id)) => Ends::Ready(*id, *id),
                Some(None) => Ends::Wait(format!(
                    "waiting for {object} row {r} to be created in HubSpot"
                )),
                None => Ends::Refuse(format!("no {object} row has hubsync_row_id {r}")),
            },
            End::Missing => Ends::Refuse(format!("neither the {object} id nor its row id is set")),
        }
    }

    fn ends(&self, link: &Link) -> Ends {
        let m = self.mapping;
        let from = self.end(link.from, self.from_rows, &m.from_object);
        let to = self.end(link.to, self.to_rows, &m.to_object);
        match (from, to) {
            (Ends::Refuse(r), _) | (_, Ends::Refuse(r)) => Ends::Refuse(r),
            (Ends::Wait(w), _) | (_, Ends::Wait(w)) => Ends::Wait(w),
            (Ends::Ready(f, _), Ends::Ready(t, _)) => Ends::Ready(f, t),
        }
    }

    /// The association type a row means: its type id, or for 0 the type with its label,
    /// or the pair's unlabeled HubSpot-defined type.
    pub(super) fn kind(&self, link: &Link) -> Result<AssociationType, String> {
        let m = self.mapping;
        let pair = format!("from {} to {}", m.from_object, m.to_object);
        if link.type_id != 0 {
            return u32::try_from(link.type_id)
                .ok()
                .and_then(|id| self.types.iter().find(|t| t.type_id == id))
                .cloned()
                .ok_or_else(|| format!("association type {} is not defined {pair}", link.type_id));
        }
        match &link.label {
            Some(label) => self
                .types
                .iter()
                .find(|t| t.label.as_deref() == Some(label.as_str()))
                .or_else(|| {
                    self.types.iter().find(|t| {
                        t.label
                            .as_deref()
                            .is_some_and(|l| l.eq_ignore_ascii_case(label))
                    })
                })
                .cloned()
                .ok_or_else(|| format!("no association label {label:?} is defined {pair}")),
            None => self
                .types
                .iter()
                .filter(|t| t.label.is_none() && t.category == "HUBSPOT_DEFINED")
                .min_by_key(|t| t.type_id)
                .cloned()
                .ok_or_else(|| format!("HubSpot has no default association type {pair}")),
        }
    }

    fn resolve(&self, link: &Link) -> Result<Resolved, Blocked> {
        match self.ends(link) {
            Ends::Refuse(r) => Err(Blocked::Refuse(r)),
            Ends::Wait(w) => Err(Blocked::Wait(w)),
            Ends::Ready(from, to) => {
                let kind = self.kind(link).map_err(Blocked::Refuse)?;
                Ok(Resolved { from, to, kind })
            }
        }
    }

    /// The step for one junction row's coalesced change.
    pub(super) fn step(&self, change: &RecordChange) -> Step {
        let old = match change.op {
            NetOp::Create | NetOp::Nothing => None,
            NetOp::Update | NetOp::Delete => change.old_row.as_ref(),
        };
        let new = match change.op {
            NetOp::Create | NetOp::Update => change.new_row.as_ref(),
            NetOp::Delete | NetOp::Nothing => None,
        };
        let m = self.mapping;
        // The old association only needs archiving if it was ever sent, so an end that is
        // still waiting (or gone) means there is nothing to remove.
        let old = old.and_then(|row| self.resolve(&Link::of(row, m)).ok());
        let new = match new.map(|row| self.resolve(&Link::of(row, m))) {
            None => None,
            Some(Ok(resolved)) => Some(resolved),
            Some(Err(Blocked::Wait(w))) => return Step::Wait(w),
            Some(Err(Blocked::Refuse(r))) => return Step::Refuse(r),
        };
        match (old, new) {
            (Some(o), Some(n)) if o.same_as(&n) => Step::Send {
                archive: None,
                create: Some(n),
            },
            (None, None) => Step::Nothing,
            (archive, create) => Step::Send { archive, create },
        }
    }
}

/// Why a row cannot be resolved now.
enum Blocked {
    Wait(String),
    Refuse(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;

    fn mapping() -> AssociationMapping {
        AssociationMapping {
            schema: "hubspot".into(),
            table: "contacts_companies".into(),
            from_object: "contacts".into(),
            to_object: "companies".into(),
            from_column: "contact_id".into(),
            to_column: "company_id".into(),
            from_table: "contacts".into(),
            to_table: "companies".into(),
            primary: None,
        }
    }

    fn kind(type_id: u32, label: Option<&str>, category: &str) -> AssociationType {
        AssociationType {
            category: category.into(),
            type_id,
            label: label.map(str::to_owned),
        }
    }

    fn types() -> Vec<AssociationType> {
        vec![
            kind(1, Some("Primary"), "HUBSPOT_DEFINED"),
            kind(279, None, "HUBSPOT_DEFINED"),
            kind(37, Some("Decision maker"), "USER_DEFINED"),
        ]
    }

    fn change(op: NetOp, old: Option<Value>, new: Option<Value>) -> RecordChange {
        RecordChange {
            object: "associations:contacts:companies".into(),
            row_key: Uuid::nil().to_string(),
            hs_object_id: None,
            op,
            changed_columns: vec![],
            old_row: old,
            new_row: new,
            version: 1,
            changed_at: Utc::now(),
            entry_ids: vec![1],
        }
    }

    fn plan(c: &RecordChange, rows: &HashMap<Uuid, Option<i64>>) -> Step {
        let m = mapping();
        let types = types();
        Known {
            mapping: &m,
            from_rows: rows,
            to_rows: rows,
            types: &types,
        }
        .step(c)
    }

    fn created(step: &Step) -> Option<(i64, i64, u32, String)> {
        match step {
            Step::Send {
                create: Some(r), ..
            } => Some((r.from, r.to, r.kind.type_id, r.kind.category.clone())),
            _ => None,
        }
    }

    #[test]
    fn type_zero_means_the_default_or_the_labelled_type() {
        let none = HashMap::new();
        let row = json!({"contact_id": 1, "company_id": 2, "type_id": 0});
        let step = plan(&change(NetOp::Create, None, Some(row)), &none);
        assert_eq!(created(&step), Some((1, 2, 279, "HUBSPOT_DEFINED".into())));
        let row =
            json!({"contact_id": 1, "company_id": 2, "type_id": 0, "label": "decision maker"});
        let step = plan(&change(NetOp::Create, None, Some(row)), &none);
        assert_eq!(created(&step), Some((1, 2, 37, "USER_DEFINED".into())));
        let row = json!({"contact_id": 1, "company_id": 2, "type_id": 999});
        let step = plan(&change(NetOp::Create, None, Some(row)), &none);
        assert!(
            matches!(step, Step::Refuse(ref r) if r.contains("999")),
            "{step:?}"
        );
    }

    #[test]
    fn a_row_id_end_waits_for_its_record_and_unknown_rows_are_refused() {
        let (pending, created_row, unknown) =
            (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let rows = HashMap::from([(pending, None), (created_row, Some(77))]);
        let row =
            |r: Uuid| json!({"contact_row_id": r.to_string(), "company_id": 5, "type_id": 279});
        assert!(matches!(
            plan(&change(NetOp::Create, None, Some(row(pending))), &rows),
            Step::Wait(_)
        ));
        assert_eq!(
            created(&plan(
                &change(NetOp::Create, None, Some(row(created_row))),
                &rows
            )),
            Some((77, 5, 279, "HUBSPOT_DEFINED".into()))
        );
        assert!(matches!(
            plan(&change(NetOp::Create, None, Some(row(unknown))), &rows),
            Step::Refuse(_)
        ));
        let missing = json!({"company_id": 5, "type_id": 279});
        assert!(matches!(
            plan(&change(NetOp::Create, None, Some(missing)), &rows),
            Step::Refuse(_)
        ));
    }

    #[test]
    fn deletes_archive_updates_move_and_net_nothing_sends_nothing() {
        let none = HashMap::new();
        let a = json!({"contact_id": 1, "company_id": 2, "type_id": 279});
        let b = json!({"contact_id": 1, "company_id": 3, "type_id": 279});
        match plan(&change(NetOp::Delete, Some(a.clone()), None), &none) {
            Step::Send {
                archive: Some(r),
                create: None,
            } => assert_eq!((r.from, r.to, r.kind.type_id), (1, 2, 279)),
            other => panic!("{other:?}"),
        }
        match plan(&change(NetOp::Update, Some(a.clone()), Some(b)), &none) {
            Step::Send {
                archive: Some(o),
                create: Some(n),
            } => assert_eq!((o.to, n.to), (2, 3)),
            other => panic!("{other:?}"),
        }
        // A label-only edit re-sends the same association (harmless) and archives nothing.
        let relabelled = json!({"contact_id": 1, "company_id": 2, "type_id": 279, "label": "x"});
        assert!(matches!(
            plan(&change(NetOp::Update, Some(a), Some(relabelled)), &none),
            Step::Send {
                archive: None,
                create: Some(_)
            }
        ));
        assert_eq!(
            plan(&change(NetOp::Nothing, None, None), &none),
            Step::Nothing
        );
    }
}
