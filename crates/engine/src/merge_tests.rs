//! Unit and property tests of the field merge (kept beside `merge.rs` to keep it short).

use proptest::prelude::*;

use super::*;
use crate::policy::Direction;

fn v(s: &str) -> FieldValue {
    Some(s.to_owned())
}

fn hs(value: &str, at: i64) -> Observed {
    Observed::new(v(value), Version::hubspot(at))
}

fn pg(value: &str, at: i64, seq: i64) -> Observed {
    Observed::new(v(value), Version::postgres(at, seq))
}

fn shadow(value: &str) -> ShadowField {
    ShadowField {
        value: v(value),
        hubspot_version: Some(Version::hubspot(1_000)),
        postgres_version: Some(Version::postgres(1_000, 10)),
        agreed_at_ms: 1_000,
        origin: None,
        conflict: None,
    }
}

const TWO_WAY_LWW: FieldRule = FieldRule {
    direction: Direction::TwoWay,
    policy: ConflictPolicy::LastWriteWins,
};

fn rule(policy: ConflictPolicy) -> FieldRule {
    FieldRule {
        direction: Direction::TwoWay,
        policy,
    }
}

fn ctx() -> MergeContext {
    MergeContext {
        clock: SkewRule::default(),
        now_ms: 99_000,
    }
}

fn run(
    s: Option<&ShadowField>,
    h: Option<&Observed>,
    p: Option<&Observed>,
    rule: FieldRule,
) -> FieldMerge {
    merge_field(
        FieldInput {
            shadow: s,
            hubspot: h,
            postgres: p,
        },
        rule,
        &ctx(),
    )
}

#[test]
fn one_sided_change_propagates() {
    let base = shadow("a");
    let m = run(Some(&base), Some(&hs("b", 2_000)), None, TWO_WAY_LWW);
    assert_eq!(m.outcome, FieldOutcome::ApplyToPostgres(v("b")));
    let next = m
        .shadow
        .as_ref()
        .map(|s| (s.value.clone(), s.origin, s.hubspot_version));
    assert_eq!(
        next,
        Some((v("b"), Some(Side::HubSpot), Some(Version::hubspot(2_000))))
    );
    let m = run(
        Some(&base),
        Some(&hs("a", 2_000)),
        Some(&pg("c", 2_000, 11)),
        TWO_WAY_LWW,
    );
    assert_eq!(m.outcome, FieldOutcome::ApplyToHubSpot(v("c")));
}

#[test]
fn echo_is_dropped_even_after_a_newer_local_edit() {
    let base = shadow("a");
    let echo = hs("a", 3_000);
    let m = run(Some(&base), Some(&echo), None, TWO_WAY_LWW);
    assert_eq!(m.outcome, FieldOutcome::Echo(Side::HubSpot));
    assert_eq!(
        m.shadow.and_then(|s| s.hubspot_version),
        Some(Version::hubspot(3_000))
    );
    // The local edit (older than the echo) still propagates; the echo does not revert it.
    let m = run(
        Some(&base),
        Some(&echo),
        Some(&pg("b", 2_000, 11)),
        TWO_WAY_LWW,
    );
    assert_eq!(m.outcome, FieldOutcome::ApplyToHubSpot(v("b")));
}

#[test]
fn stale_observation_is_ignored() {
    let base = shadow("a");
    let m = run(Some(&base), Some(&hs("old", 900)), None, TWO_WAY_LWW);
    assert_eq!(m.outcome, FieldOutcome::Stale(Side::HubSpot));
    assert_eq!(m.shadow.as_ref(), Some(&base));
    let m = run(Some(&base), Some(&hs("a", 1_000)), None, TWO_WAY_LWW);
    assert_eq!(m.outcome, FieldOutcome::NoOp);
}

#[test]
fn both_changed_to_the_same_value_agree() {
    let m = run(
        Some(&shadow("a")),
        Some(&hs("b", 2_000)),
        Some(&pg("b", 5, 11)),
        TWO_WAY_LWW,
    );
    assert_eq!(m.outcome, FieldOutcome::Agreed);
    assert_eq!(m.shadow.map(|s| (s.value, s.origin)), Some((v("b"), None)));
}

#[test]
fn last_write_wins_with_skew_window() {
    let base = shadow("a");
    let m = run(
        Some(&base),
        Some(&hs("h", 5_000)),
        Some(&pg("p", 7_000, 11)),
        TWO_WAY_LWW,
    );
    assert_eq!(
        m.outcome,
        FieldOutcome::Conflict(Resolution {
            winner: Side::Postgres,
            value: v("p"),
            overridden: v("h"),
            reason: ResolvedBy::LastWriteWins { concurrent: false },
        })
    );
    let m = run(
        Some(&base),
        Some(&hs("h", 5_000)),
        Some(&pg("p", 5_900, 11)),
        TWO_WAY_LWW,
    );
    assert!(matches!(
        m.outcome,
        FieldOutcome::Conflict(Resolution {
            winner: Side::HubSpot,
            reason: ResolvedBy::LastWriteWins { concurrent: true },
            ..
        })
    ));
}

#[test]
fn side_wins_policies() {
    let base = shadow("a");
    let (h, p) = (hs("h", 9_000), pg("p", 1_500, 11));
    let m = run(
        Some(&base),
        Some(&h),
        Some(&p),
        rule(ConflictPolicy::PostgresWins),
    );
    assert_eq!(m.outcome.write(), Some((Side::HubSpot, &v("p"))));
    let m = run(
        Some(&base),
        Some(&h),
        Some(&p),
        rule(ConflictPolicy::HubSpotWins),
    );
    assert_eq!(m.outcome.write(), Some((Side::Postgres, &v("h"))));
}

#[test]
fn manual_queues_and_remembers_both_values() {
    let base = shadow("a");
    let manual = rule(ConflictPolicy::Manual);
    let m = run(
        Some(&base),
        Some(&hs("h", 2_000)),
        Some(&pg("p", 2_000, 11)),
        manual,
    );
    assert!(matches!(m.outcome, FieldOutcome::Manual(_)));
    assert_eq!(m.outcome.write(), None);
    let open = m.shadow;
    assert_eq!(open.as_ref().map(|s| s.value.clone()), Some(v("a")));
    // Later only HubSpot is observed again: still a conflict, PostgreSQL's value not lost.
    let m2 = run(open.as_ref(), Some(&hs("h", 2_000)), None, manual);
    assert!(matches!(m2.outcome, FieldOutcome::Manual(_)));
    // A person takes PostgreSQL's value.
    let take = rule(ConflictPolicy::side_wins(Side::Postgres));
    let m3 = run(open.as_ref(), None, None, take);
    assert_eq!(m3.outcome.write(), Some((Side::HubSpot, &v("p"))));
    assert_eq!(m3.shadow.and_then(|s| s.conflict), None);
    // Or HubSpot goes back to the base value: PostgreSQL's change simply propagates.
    let m4 = run(open.as_ref(), Some(&hs("a", 3_000)), None, manual);
    assert_eq!(m4.outcome, FieldOutcome::ApplyToHubSpot(v("p")));
}

#[test]
fn change_against_direction_is_reverted() {
    let base = shadow("a");
    let mirror = FieldRule {
        direction: Direction::HubSpotToPostgres,
        ..TWO_WAY_LWW
    };
    let m = run(Some(&base), None, Some(&pg("x", 2_000, 11)), mirror);
    assert_eq!(
        m.outcome,
        FieldOutcome::Conflict(Resolution {
            winner: Side::HubSpot,
            value: v("a"),
            overridden: v("x"),
            reason: ResolvedBy::Direction,
        })
    );
    // Both changed: the source wins whatever the policy says.
    let m = run(
        Some(&base),
        Some(&hs("h", 1_500)),
        Some(&pg("x", 9_000, 11)),
        mirror,
    );
    assert_eq!(m.outcome.write(), Some((Side::Postgres, &v("h"))));
    // No shadow: nothing known about HubSpot's value, nothing to do.
    let m = run(None, None, Some(&pg("x", 2_000, 11)), mirror);
    assert_eq!((m.outcome, m.shadow), (FieldOutcome::NoOp, None));
}

#[test]
fn first_sight_without_shadow() {
    let m = run(None, Some(&hs("h", 1)), None, TWO_WAY_LWW);
    assert_eq!(m.outcome, FieldOutcome::ApplyToPostgres(v("h")));
    let m = run(None, Some(&hs("h", 1)), Some(&pg("h", 1, 1)), TWO_WAY_LWW);
    assert_eq!(m.outcome, FieldOutcome::Agreed);
    let m = run(None, None, None, TWO_WAY_LWW);
    assert_eq!((m.outcome, m.shadow), (FieldOutcome::NoOp, None));
}

// ---- properties -------------------------------------------------------------------------

fn value() -> impl Strategy<Value = FieldValue> {
    prop_oneof![Just(None), Just(v("a")), Just(v("b")), Just(v("c"))]
}

fn version() -> impl Strategy<Value = Version> {
    (0i64..4, 0i64..4_000).prop_map(|(seq, at_ms)| Version { seq, at_ms })
}

fn observed() -> impl Strategy<Value = Observed> {
    (value(), version()).prop_map(|(value, version)| Observed { value, version })
}

fn shadow_field() -> impl Strategy<Value = ShadowField> {
    let conflict = proptest::option::weighted(
        0.2,
        (observed(), observed(), any::<bool>()).prop_map(|(hubspot, postgres, no_base)| {
            OpenConflict {
                hubspot,
                postgres,
                no_base,
            }
        }),
    );
    (
        value(),
        proptest::option::of(version()),
        proptest::option::of(version()),
        conflict,
    )
        .prop_map(
            |(value, hubspot_version, postgres_version, conflict)| ShadowField {
                value,
                hubspot_version,
                postgres_version,
                agreed_at_ms: 0,
                origin: None,
                conflict,
            },
        )
}

pub(crate) fn field_rule() -> impl Strategy<Value = FieldRule> {
    let direction = prop_oneof![
        Just(Direction::TwoWay),
        Just(Direction::HubSpotToPostgres),
        Just(Direction::PostgresToHubSpot)
    ];
    let policy = prop_oneof![
        Just(ConflictPolicy::LastWriteWins),
        Just(ConflictPolicy::HubSpotWins),
        Just(ConflictPolicy::PostgresWins),
        Just(ConflictPolicy::Manual),
    ];
    (direction, policy).prop_map(|(direction, policy)| FieldRule { direction, policy })
}

#[derive(Debug, Clone)]
struct Case {
    shadow: Option<ShadowField>,
    hubspot: Option<Observed>,
    postgres: Option<Observed>,
    rule: FieldRule,
    skew: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::option::of(shadow_field()),
        proptest::option::of(observed()),
        proptest::option::of(observed()),
        field_rule(),
        0u64..1_500,
    )
        .prop_map(|(shadow, hubspot, postgres, rule, skew)| Case {
            shadow,
            hubspot,
            postgres,
            rule,
            skew,
        })
}

impl Case {
    fn ctx(&self) -> MergeContext {
        MergeContext {
            clock: SkewRule {
                window_ms: self.skew,
                tie_winner: Side::HubSpot,
            },
            now_ms: 7,
        }
    }

    fn merge(
        &self,
        shadow: Option<&ShadowField>,
        h: Option<&Observed>,
        p: Option<&Observed>,
    ) -> FieldMerge {
        merge_field(
            FieldInput {
                shadow,
                hubspot: h,
                postgres: p,
            },
            self.rule,
            &self.ctx(),
        )
    }

    /// A version on `side` newer than any in the case: what the echo of a write carries.
    fn next_version(&self, side: Side) -> Version {
        let open = self.shadow.as_ref().and_then(|s| s.conflict.as_ref());
        let seen = [
            self.shadow.as_ref().and_then(|s| s.version(side)),
            open.map(|c| {
                if side == Side::HubSpot {
                    c.hubspot.version
                } else {
                    c.postgres.version
                }
            }),
            self.hubspot.as_ref().map(|o| o.version),
            self.postgres.as_ref().map(|o| o.version),
        ];
        let max = seen.into_iter().flatten().max().unwrap_or_default();
        Version {
            seq: max.seq + 1,
            at_ms: max.at_ms + 1,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// The merge is a pure function of its inputs.
    #[test]
    fn merge_is_deterministic(c in case()) {
        let a = c.merge(c.shadow.as_ref(), c.hubspot.as_ref(), c.postgres.as_ref());
        let b = c.merge(c.shadow.as_ref(), c.hubspot.as_ref(), c.postgres.as_ref());
        prop_assert_eq!(a, b);
    }

    /// No ping-pong: once the planned write lands and its echo comes back, re-merging (with
    /// the echo alone, or with the echo and the other side's unchanged observation) plans no
    /// further write, and both sides hold the shadow value.
    #[test]
    fn a_change_makes_one_trip(c in case()) {
        let first = c.merge(c.shadow.as_ref(), c.hubspot.as_ref(), c.postgres.as_ref());
        let Some((target, value)) = first.outcome.write() else {
            // Nothing written: merging the same inputs against the new shadow writes nothing.
            let again = c.merge(first.shadow.as_ref(), c.hubspot.as_ref(), c.postgres.as_ref());
            prop_assert_eq!(again.outcome.write(), None);
            return Ok(());
        };
        let shadow = first.shadow.clone();
        prop_assert_eq!(shadow.as_ref().map(|s| &s.value), Some(value));
        let echo = Observed { value: value.clone(), version: c.next_version(target) };
        let (h, p) = match target {
            Side::HubSpot => (Some(&echo), c.postgres.as_ref()),
            Side::Postgres => (c.hubspot.as_ref(), Some(&echo)),
        };
        let second = c.merge(shadow.as_ref(), h, p);
        prop_assert_eq!(second.outcome.write(), None, "second merge wrote: {:?}", second);
        let (h, p) = match target {
            Side::HubSpot => (Some(&echo), None),
            Side::Postgres => (None, Some(&echo)),
        };
        let echo_only = c.merge(shadow.as_ref(), h, p);
        prop_assert_eq!(&echo_only.outcome, &FieldOutcome::Echo(target));
        let third = c.merge(second.shadow.as_ref(), h, p);
        prop_assert_eq!(third.outcome.write(), None);
    }

    /// `manual` never writes on a conflict; `hubspot-wins` / `postgres-wins` always keep
    /// their own side's value on a two-way conflict.
    #[test]
    fn policies_pick_their_side(c in case()) {
        let m = c.merge(c.shadow.as_ref(), c.hubspot.as_ref(), c.postgres.as_ref());
        if let FieldOutcome::Conflict(r) = &m.outcome {
            match (c.rule.direction, c.rule.policy) {
                (Direction::TwoWay, ConflictPolicy::Manual) => {
                    prop_assert!(false, "manual resolved a conflict: {:?}", r);
                }
                (Direction::TwoWay, ConflictPolicy::HubSpotWins) => {
                    prop_assert_eq!(r.winner, Side::HubSpot);
                }
                (Direction::TwoWay, ConflictPolicy::PostgresWins) => {
                    prop_assert_eq!(r.winner, Side::Postgres);
                }
                (Direction::TwoWay, ConflictPolicy::LastWriteWins) => {
                    let lww = matches!(r.reason, ResolvedBy::LastWriteWins { .. });
                    prop_assert!(lww, "reason {:?}", r.reason);
                }
                (d, _) => prop_assert_eq!(Some(r.winner), d.source()),
            }
        }
        if let FieldOutcome::Manual(_) = &m.outcome {
            prop_assert_eq!(c.rule.policy, ConflictPolicy::Manual);
            prop_assert_eq!(m.outcome.write(), None);
        }
    }

    /// Nothing is written against a field's direction except to revert a change made on the
    /// wrong side back to the source's value.
    #[test]
    fn direction_is_respected(c in case()) {
        let m = c.merge(c.shadow.as_ref(), c.hubspot.as_ref(), c.postgres.as_ref());
        if let (Some(source), Some((target, _))) = (c.rule.direction.source(), m.outcome.write()) {
            prop_assert_eq!(target, source.other());
        }
    }
}

#[test]
fn manual_conflict_without_base_stays_open() {
    let manual = rule(ConflictPolicy::Manual);
    let (h, p) = (Observed::new(None, Version::hubspot(1)), pg("a", 1, 1));
    let m = run(None, Some(&h), Some(&p), manual);
    assert!(matches!(
        m.outcome,
        FieldOutcome::Manual(OpenConflict { no_base: true, .. })
    ));
    let again = run(m.shadow.as_ref(), Some(&h), None, manual);
    assert!(matches!(again.outcome, FieldOutcome::Manual(_)));
    let take = run(
        m.shadow.as_ref(),
        None,
        None,
        rule(ConflictPolicy::HubSpotWins),
    );
    assert_eq!(take.outcome.write(), Some((Side::Postgres, &None)));
}
