//! Three-way merge of one field against the shadow copy (the last value both sides agreed
//! on): decides whether a side's value is a change, an echo or stale, propagates one-sided
//! changes in the allowed direction, and resolves two-sided conflicts by policy.
//!
//! Rules (docs/conflicts.md has the user-facing version):
//! - A side's observation is *stale* if its version is not newer than the newest version of
//!   that side the shadow has seen; it is ignored (late/duplicate webhooks, lessons 15, 24).
//! - A newer observation equal to the shadow value is an *echo* (typically of hubsync's own
//!   write): dropped, only the shadow's version advances. This holds even when the other
//!   side has a newer local edit: that edit still propagates.
//! - Changed on one side only → copied to the other side, if the field's direction allows
//!   it; a change against the direction is reverted (the source side's value is written
//!   back) and recorded for audit.
//! - Changed on both sides to the same value → agreed, nothing written.
//! - Changed on both sides to different values → conflict: a one-way field's source wins;
//!   otherwise the policy decides (`last-write-wins` under [`SkewRule`], `hubspot-wins`,
//!   `postgres-wins`), or `manual` writes nothing and keeps both values in the shadow's
//!   [`OpenConflict`] until a person decides (merge again with
//!   [`ConflictPolicy::side_wins`]).
//! - An unobserved side is assumed unchanged since the shadow (or, while a conflict is open,
//!   to still hold the value stored in it).
//!
//! Invariant (property-tested): after the planned write lands and its echo is observed, the
//! merge plans no further write: a change makes exactly one trip.

use serde::{Deserialize, Serialize};

use crate::clock::{SkewRule, is_newer};
use crate::model::{FieldValue, Observed, OpenConflict, ShadowField, Side, Version};
use crate::policy::{ConflictPolicy, FieldRule};

/// Everything known about one field of one record.
#[derive(Debug, Clone, Copy, Default)]
pub struct FieldInput<'a> {
    /// The shadow copy, if the field was ever agreed on.
    pub shadow: Option<&'a ShadowField>,
    /// HubSpot's current value, if observed in this round.
    pub hubspot: Option<&'a Observed>,
    /// PostgreSQL's current value, if observed in this round.
    pub postgres: Option<&'a Observed>,
}

/// Inputs to a merge that are not about one field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeContext {
    /// The cross-side ordering rule for `last-write-wins`.
    pub clock: SkewRule,
    /// The time stamped on new agreements (`ShadowField::agreed_at_ms`), ms since the epoch.
    /// Passed in so the merge stays a pure function.
    pub now_ms: i64,
}

/// Why one side's value was overridden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResolvedBy {
    /// `last-write-wins`; `concurrent` if within the skew window (the tie side won).
    LastWriteWins {
        /// The two writes were within the skew window.
        concurrent: bool,
    },
    /// `hubspot-wins`.
    HubSpotWins,
    /// `postgres-wins`.
    PostgresWins,
    /// The field is one-way (or HubSpot read-only): the change on the other side is reverted.
    Direction,
}

/// A conflict settled without a person: which value is kept and which is overwritten.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resolution {
    /// The side whose value is kept.
    pub winner: Side,
    /// The kept value; it is written to the other side.
    pub value: FieldValue,
    /// The other side's value, overwritten (kept for audit).
    pub overridden: FieldValue,
    /// The rule that decided.
    pub reason: ResolvedBy,
}

/// What to do with one field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FieldOutcome {
    /// Nothing new on either side.
    NoOp,
    /// A side reported the agreed value again (an echo): dropped.
    Echo(Side),
    /// A side reported a value older than one already seen: ignored.
    Stale(Side),
    /// Both sides changed to the same value: nothing to write.
    Agreed,
    /// Write this value to PostgreSQL (changed in HubSpot only).
    ApplyToPostgres(FieldValue),
    /// Write this value to HubSpot (changed in PostgreSQL only).
    ApplyToHubSpot(FieldValue),
    /// Conflicting or disallowed change settled automatically: write `value` to the loser.
    Conflict(Resolution),
    /// A `manual` conflict: nothing written; both values queued for a person.
    Manual(OpenConflict),
}

impl FieldOutcome {
    /// The write this outcome asks for: the target side and the value.
    #[must_use]
    pub fn write(&self) -> Option<(Side, &FieldValue)> {
        match self {
            FieldOutcome::ApplyToPostgres(v) => Some((Side::Postgres, v)),
            FieldOutcome::ApplyToHubSpot(v) => Some((Side::HubSpot, v)),
            FieldOutcome::Conflict(r) => Some((r.winner.other(), &r.value)),
            _ => None,
        }
    }
}

/// The result of merging one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMerge {
    /// What to do.
    pub outcome: FieldOutcome,
    /// The shadow after the outcome is applied (`None`: still nothing agreed). Persist it
    /// only once the write it depends on has succeeded.
    pub shadow: Option<ShadowField>,
}

/// How one side's observation relates to the shadow.
#[derive(Debug, Clone, Copy)]
enum Seen<'a> {
    Unobserved,
    Stale,
    Echo(Version),
    Changed(&'a Observed),
}

fn classify<'a>(side: Side, obs: Option<&'a Observed>, shadow: Option<&ShadowField>) -> Seen<'a> {
    let Some(obs) = obs else {
        return Seen::Unobserved;
    };
    let Some(shadow) = shadow else {
        return Seen::Changed(obs);
    };
    if !is_newer(obs.version, shadow.version(side)) {
        // Not newer than what was seen: the same state again (no news), or an older one.
        if obs.value == shadow.value {
            Seen::Unobserved
        } else {
            Seen::Stale
        }
    } else if obs.value == shadow.value {
        Seen::Echo(obs.version)
    } else {
        Seen::Changed(obs)
    }
}

/// Picks the newer of this round's observation and the one stored in an open conflict.
fn effective<'a>(
    observed: Option<&'a Observed>,
    stored: Option<&'a Observed>,
) -> Option<&'a Observed> {
    match (observed, stored) {
        (Some(o), Some(s)) if s.version > o.version => Some(s),
        (Some(o), _) => Some(o),
        (None, s) => s,
    }
}

/// Merges one field. Pure and deterministic: the same inputs give the same outcome.
#[must_use]
pub fn merge_field(input: FieldInput<'_>, rule: FieldRule, ctx: &MergeContext) -> FieldMerge {
    let open = input.shadow.and_then(|s| s.conflict.as_ref());
    let hs_obs = effective(input.hubspot, open.map(|c| &c.hubspot));
    let pg_obs = effective(input.postgres, open.map(|c| &c.postgres));
    // A conflict open since first sight has no agreed value to diff against.
    let base = if open.is_some_and(|c| c.no_base) {
        None
    } else {
        input.shadow
    };
    let hs = classify(Side::HubSpot, hs_obs, base);
    let pg = classify(Side::Postgres, pg_obs, base);

    match (hs, pg) {
        (Seen::Changed(h), Seen::Changed(p)) if h.value == p.value => FieldMerge {
            outcome: FieldOutcome::Agreed,
            shadow: Some(agreed(
                h.value.clone(),
                Some(h.version),
                Some(p.version),
                None,
                ctx,
            )),
        },
        (Seen::Changed(h), Seen::Changed(p)) => conflict(input.shadow, base, h, p, rule, ctx),
        (Seen::Changed(h), other) => one_sided(Side::HubSpot, h, other, base, rule, ctx),
        (other, Seen::Changed(p)) => one_sided(Side::Postgres, p, other, base, rule, ctx),
        (hs, pg) => quiet(hs, pg, base),
    }
}

/// Neither side changed: report echoes (advancing the shadow's versions) or staleness.
fn quiet(hs: Seen<'_>, pg: Seen<'_>, shadow: Option<&ShadowField>) -> FieldMerge {
    let mut next = shadow.cloned();
    let mut outcome = FieldOutcome::NoOp;
    for (side, seen) in [(Side::Postgres, pg), (Side::HubSpot, hs)] {
        match seen {
            Seen::Echo(v) => {
                if let Some(s) = next.as_mut() {
                    s.acknowledge(side, v);
                }
                outcome = FieldOutcome::Echo(side);
            }
            Seen::Stale if outcome == FieldOutcome::NoOp => outcome = FieldOutcome::Stale(side),
            _ => {}
        }
    }
    FieldMerge {
        outcome,
        shadow: next,
    }
}

/// `from` changed and the other side did not.
fn one_sided(
    from: Side,
    changed: &Observed,
    other: Seen<'_>,
    shadow: Option<&ShadowField>,
    rule: FieldRule,
    ctx: &MergeContext,
) -> FieldMerge {
    let other_version = match other {
        Seen::Echo(v) => Some(
            shadow
                .and_then(|s| s.version(from.other()))
                .map_or(v, |s| s.max(v)),
        ),
        _ => shadow.and_then(|s| s.version(from.other())),
    };
    if rule.direction.allows_from(from) {
        let (hs_v, pg_v) = by_side(from, Some(changed.version), other_version);
        let outcome = match from {
            Side::HubSpot => FieldOutcome::ApplyToPostgres(changed.value.clone()),
            Side::Postgres => FieldOutcome::ApplyToHubSpot(changed.value.clone()),
        };
        let next = agreed(changed.value.clone(), hs_v, pg_v, Some(from), ctx);
        return FieldMerge {
            outcome,
            shadow: Some(next),
        };
    }
    // A change against the direction: write the agreed value back over it. Without a shadow
    // the source's value is unknown, so nothing can be done until it is observed.
    let Some(base) = shadow else {
        return FieldMerge {
            outcome: FieldOutcome::NoOp,
            shadow: None,
        };
    };
    let (hs_v, pg_v) = by_side(from, Some(changed.version), other_version);
    let mut next = agreed(base.value.clone(), hs_v, pg_v, base.origin, ctx);
    next.agreed_at_ms = base.agreed_at_ms;
    FieldMerge {
        outcome: FieldOutcome::Conflict(Resolution {
            winner: from.other(),
            value: base.value.clone(),
            overridden: changed.value.clone(),
            reason: ResolvedBy::Direction,
        }),
        shadow: Some(next),
    }
}

/// Both sides changed to different values.
fn conflict(
    shadow: Option<&ShadowField>,
    base: Option<&ShadowField>,
    hs: &Observed,
    pg: &Observed,
    rule: FieldRule,
    ctx: &MergeContext,
) -> FieldMerge {
    let (winner, reason) = match (rule.direction.source(), rule.policy) {
        (Some(source), _) => (source, ResolvedBy::Direction),
        (None, ConflictPolicy::HubSpotWins) => (Side::HubSpot, ResolvedBy::HubSpotWins),
        (None, ConflictPolicy::PostgresWins) => (Side::Postgres, ResolvedBy::PostgresWins),
        (None, ConflictPolicy::LastWriteWins) => {
            let d = ctx.clock.last_writer(hs.version, pg.version);
            (
                d.winner,
                ResolvedBy::LastWriteWins {
                    concurrent: d.concurrent,
                },
            )
        }
        (None, ConflictPolicy::Manual) => {
            let open = OpenConflict {
                hubspot: hs.clone(),
                postgres: pg.clone(),
                no_base: base.is_none(),
            };
            // Keep the base and its versions so both values stay "changed" next time.
            let mut next = shadow
                .cloned()
                .unwrap_or_else(|| ShadowField::blank(ctx.now_ms));
            next.conflict = Some(open.clone());
            return FieldMerge {
                outcome: FieldOutcome::Manual(open),
                shadow: Some(next),
            };
        }
    };
    let (kept, lost) = match winner {
        Side::HubSpot => (hs, pg),
        Side::Postgres => (pg, hs),
    };
    FieldMerge {
        outcome: FieldOutcome::Conflict(Resolution {
            winner,
            value: kept.value.clone(),
            overridden: lost.value.clone(),
            reason,
        }),
        shadow: Some(agreed(
            kept.value.clone(),
            Some(hs.version),
            Some(pg.version),
            Some(winner),
            ctx,
        )),
    }
}

/// Orders a (changed side, other side) pair of versions as (HubSpot, PostgreSQL).
fn by_side(
    first: Side,
    a: Option<Version>,
    b: Option<Version>,
) -> (Option<Version>, Option<Version>) {
    match first {
        Side::HubSpot => (a, b),
        Side::Postgres => (b, a),
    }
}

fn agreed(
    value: FieldValue,
    hubspot_version: Option<Version>,
    postgres_version: Option<Version>,
    origin: Option<Side>,
    ctx: &MergeContext,
) -> ShadowField {
    ShadowField {
        value,
        hubspot_version,
        postgres_version,
        agreed_at_ms: ctx.now_ms,
        origin,
        conflict: None,
    }
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
