//! Unit tests of the association store.

use super::*;

const CONTACT: ObjectTypeId = ObjectTypeId::CONTACT;
const DEAL: ObjectTypeId = ObjectTypeId::DEAL;

fn kinds(store: &AssociationStore, a: (ObjectTypeId, u64), b: (ObjectTypeId, u64)) -> Vec<u32> {
    store
        .kinds_between(a.0, a.1, b.0, b.1)
        .iter()
        .map(|k| k.type_id)
        .collect()
}

#[test]
fn default_association_makes_first_company_primary_both_ways() {
    let mut store = AssociationStore::default();
    let changes = store
        .associate_default((CONTACT, 1), (COMPANY, 10))
        .unwrap_or_default();
    assert_eq!(changes.len(), 4);
    assert_eq!(kinds(&store, (CONTACT, 1), (COMPANY, 10)), vec![1, 279]);
    assert_eq!(kinds(&store, (COMPANY, 10), (CONTACT, 1)), vec![2, 280]);
    let _ = store.associate_default((CONTACT, 1), (COMPANY, 11));
    assert_eq!(kinds(&store, (CONTACT, 1), (COMPANY, 11)), vec![279]);
    assert_eq!(store.primary_company(CONTACT, 1), Some(10));
}

#[test]
fn new_primary_demotes_the_old_one() {
    let mut store = AssociationStore::default();
    let _ = store.associate_default((CONTACT, 1), (COMPANY, 10));
    // Set primary from the company side (type 2 is the inverse of 1).
    let changes = store
        .associate((COMPANY, 11), (CONTACT, 1), &[AssociationKind::hubspot(2)])
        .unwrap_or_default();
    assert!(
        changes
            .iter()
            .any(|c| c.removed && c.to_id == 10 && c.kind.type_id == 1)
    );
    assert_eq!(store.primary_company(CONTACT, 1), Some(11));
    assert_eq!(kinds(&store, (CONTACT, 1), (COMPANY, 10)), vec![279]);
    assert_eq!(kinds(&store, (COMPANY, 10), (CONTACT, 1)), vec![280]);
}

#[test]
fn v3_expansion_lists_primary_company_twice() {
    let mut store = AssociationStore::default();
    let _ = store.associate_default((CONTACT, 1), (COMPANY, 10));
    let refs = store.expand_v3(CONTACT, 1, COMPANY);
    let names: Vec<&str> = refs.iter().map(|r| r.type_name.as_str()).collect();
    assert_eq!(
        names,
        vec!["contact_to_company", "contact_to_company_unlabeled"]
    );
    assert!(refs.iter().all(|r| r.id == 10));
}

#[test]
fn invalid_types_and_self_links_are_refused() {
    let mut store = AssociationStore::default();
    let wrong = store.associate((CONTACT, 1), (DEAL, 2), &[AssociationKind::hubspot(279)]);
    assert!(matches!(
        wrong,
        Err(AssociationError::InvalidType { type_id: 279, .. })
    ));
    let own = store.associate((CONTACT, 1), (CONTACT, 1), &[]);
    assert_eq!(own, Err(AssociationError::SelfAssociation(1)));
}

#[test]
fn removing_unlabeled_removes_everything() {
    let mut store = AssociationStore::default();
    let _ = store.associate_default((CONTACT, 1), (COMPANY, 10));
    let changes = store.remove_kinds((CONTACT, 1), (COMPANY, 10), &[AssociationKind::hubspot(1)]);
    assert_eq!(changes.len(), 2);
    assert_eq!(kinds(&store, (CONTACT, 1), (COMPANY, 10)), vec![279]);
    let _ = store.remove_kinds(
        (CONTACT, 1),
        (COMPANY, 10),
        &[AssociationKind::hubspot(279)],
    );
    assert!(kinds(&store, (COMPANY, 10), (CONTACT, 1)).is_empty());
    assert_eq!(store.link_count(), 0);
}

#[test]
fn targets_page_in_id_order_and_stop_at_the_type() {
    let mut store = AssociationStore::default();
    for id in [30, 10, 20] {
        let _ = store.associate_default((CONTACT, 1), (COMPANY, id));
    }
    let _ = store.associate_default((CONTACT, 1), (DEAL, 5));
    let all: Vec<u64> = store
        .targets(CONTACT, 1, COMPANY, None)
        .map(|t| t.0)
        .collect();
    assert_eq!(all, vec![10, 20, 30]);
    let rest: Vec<u64> = store
        .targets(CONTACT, 1, COMPANY, Some(10))
        .map(|t| t.0)
        .collect();
    assert_eq!(rest, vec![20, 30]);
    assert_eq!(store.targets(CONTACT, 1, DEAL, None).count(), 1);
}

#[test]
fn repoint_moves_links_to_the_winner() {
    let mut store = AssociationStore::default();
    let _ = store.associate_default((CONTACT, 1), (COMPANY, 10));
    let _ = store.associate_default((CONTACT, 2), (COMPANY, 11));
    let _ = store.associate_default((CONTACT, 2), (DEAL, 7));
    let _ = store.associate_default((CONTACT, 1), (CONTACT, 2));
    let _ = store.repoint(CONTACT, 2, 1);
    assert_eq!(store.primary_company(CONTACT, 1), Some(10));
    assert_eq!(kinds(&store, (CONTACT, 1), (COMPANY, 11)), vec![279]);
    assert_eq!(kinds(&store, (DEAL, 7), (CONTACT, 1)), vec![3]);
    assert!(store.targets(CONTACT, 2, COMPANY, None).next().is_none());
    assert!(store.targets(CONTACT, 1, CONTACT, None).next().is_none());
}

#[test]
fn remove_object_clears_both_directions() {
    let mut store = AssociationStore::default();
    let _ = store.associate_default((CONTACT, 1), (COMPANY, 10));
    let _ = store.associate_default((DEAL, 3), (COMPANY, 10));
    let _ = store.remove_object(COMPANY, 10);
    assert_eq!(store.link_count(), 0);
}

mod invariants {
    use proptest::prelude::*;

    use super::*;

    /// One random operation on a small universe of contacts (1–4), companies (10–13), deals (20–21).
    #[derive(Debug, Clone)]
    enum Op {
        Default(ObjectTypeId, u64, ObjectTypeId, u64),
        Primary(u64, u64),
        RemovePair(ObjectTypeId, u64, ObjectTypeId, u64),
        RemoveKind(u64, u64, u32),
        RemoveObject(ObjectTypeId, u64),
        Repoint(u64, u64),
    }

    fn node() -> impl Strategy<Value = (ObjectTypeId, u64)> {
        prop_oneof![
            (1u64..5).prop_map(|id| (CONTACT, id)),
            (10u64..14).prop_map(|id| (COMPANY, id)),
            (20u64..22).prop_map(|id| (DEAL, id)),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (node(), node()).prop_map(|(a, b)| Op::Default(a.0, a.1, b.0, b.1)),
            (1u64..5, 10u64..14).prop_map(|(c, co)| Op::Primary(c, co)),
            (node(), node()).prop_map(|(a, b)| Op::RemovePair(a.0, a.1, b.0, b.1)),
            (1u64..5, 10u64..14, prop_oneof![Just(1u32), Just(279)])
                .prop_map(|(c, co, k)| Op::RemoveKind(c, co, k)),
            node().prop_map(|(t, id)| Op::RemoveObject(t, id)),
            (1u64..5, 1u64..5).prop_map(|(a, b)| Op::Repoint(a, b)),
        ]
    }

    fn apply(store: &mut AssociationStore, op: &Op) {
        match *op {
            Op::Default(a, ai, b, bi) => {
                let _ = store.associate_default((a, ai), (b, bi));
            }
            Op::Primary(c, co) => {
                let _ =
                    store.associate((CONTACT, c), (COMPANY, co), &[AssociationKind::hubspot(1)]);
            }
            Op::RemovePair(a, ai, b, bi) => {
                let _ = store.remove_pair((a, ai), (b, bi));
            }
            Op::RemoveKind(c, co, k) => {
                let _ =
                    store.remove_kinds((CONTACT, c), (COMPANY, co), &[AssociationKind::hubspot(k)]);
            }
            Op::RemoveObject(t, id) => {
                let _ = store.remove_object(t, id);
            }
            Op::Repoint(loser, winner) if loser != winner => {
                let _ = store.repoint(CONTACT, loser, winner);
            }
            Op::Repoint(..) => {}
        }
    }

    proptest! {
        #[test]
        fn links_stay_symmetric_with_one_primary_and_an_unlabeled_base(
            ops in proptest::collection::vec(op(), 1..40)
        ) {
            let mut store = AssociationStore::default();
            for op in &ops {
                apply(&mut store, op);
            }
            let types = [CONTACT, COMPANY, DEAL];
            for from in types {
                for id in (1..5).chain(10..14).chain(20..22) {
                    for to in types {
                        for (to_id, kinds) in store.targets(from, id, to, None) {
                            let default = store.definitions().default_kind(from, to);
                            prop_assert!(kinds.iter().any(|k| Some(*k) == default), "unlabeled base");
                            for kind in kinds {
                                let inverse = store.definitions().get(*kind).map(|d| d.inverse);
                                let back = store.kinds_between(to, to_id, from, id);
                                prop_assert!(inverse.is_some_and(|i| back.contains(&i)), "inverse stored");
                            }
                        }
                    }
                    let primaries = store
                        .targets(from, id, COMPANY, None)
                        .filter(|(_, kinds)| kinds.iter().any(|k| store.definitions().get(*k).is_some_and(|d| d.is_primary)))
                        .count();
                    prop_assert!(from == COMPANY || primaries <= 1, "at most one primary company");
                }
            }
        }
    }
}
