//! What the inbound merge does with one field of a HubSpot record on its way into
//! PostgreSQL: the decision of [`crate::merge::merge_field`] turned into the row value to
//! write (or not), the shadow to store, a conflict to queue, an audit entry and a re-send.
//! Pure: [`super::inbound`] reads the inputs and carries the decision out; the property
//! tests of the whole round trip (`round_trip_tests.rs`) run the same function.

use crate::merge::{FieldInput, FieldOutcome, MergeContext, Resolution, ResolvedBy, merge_field};
use crate::model::{FieldValue, Observed, OpenConflict, ShadowField, Side};
use crate::policy::FieldRule;

/// Everything known about one field of one incoming record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InboundField<'a> {
    /// The shadow as stored.
    pub(crate) stored: Option<&'a ShadowField>,
    /// The shadow to merge against instead when HubSpot holds an unrecorded write of
    /// hubsync's own ([`super::unrecorded::echo_shadow`]).
    pub(crate) echo: Option<&'a ShadowField>,
    /// HubSpot's value (canonical) and the version that wrote it.
    pub(crate) hubspot: &'a Observed,
    /// PostgreSQL's pending (not yet sent) change of the field, if any.
    pub(crate) postgres: Option<&'a Observed>,
}

/// What happens to the field's value in the row written to PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum RowValue {
    /// Leave HubSpot's value in the row (it equals the agreed value, or nothing guards it).
    #[default]
    Leave,
    /// Write this value.
    Set(FieldValue),
    /// Take the field out of the row: PostgreSQL's value stays.
    Drop,
}

/// Which counter of [`super::InboundOutcome`] the field adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Tally {
    /// Nothing to count.
    #[default]
    None,
    /// An echo dropped.
    Echo,
    /// A stale value held back.
    HeldBack,
    /// A conflict settled by the policy or the direction.
    Resolved,
    /// A conflict queued for a person.
    Manual,
}

/// The decision for one field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct InboundDecision {
    /// The row's value.
    pub(crate) row: RowValue,
    /// The shadow to store (`None`: keep the stored one).
    pub(crate) shadow: Option<ShadowField>,
    /// A manual conflict to queue, with the base it was found against.
    pub(crate) conflict: Option<(Option<ShadowField>, OpenConflict)>,
    /// An overridden value for the audit log.
    pub(crate) audit: Option<Resolution>,
    /// PostgreSQL's value must be sent to HubSpot again (HubSpot changed a field PostgreSQL
    /// owns).
    pub(crate) resend: bool,
    /// The counter.
    pub(crate) tally: Tally,
}

impl InboundDecision {
    fn new(row: RowValue, tally: Tally) -> Self {
        InboundDecision {
            row,
            shadow: None,
            conflict: None,
            audit: None,
            resend: false,
            tally,
        }
    }

    /// True if `last-write-wins` gave HubSpot the field by a HubSpot version that may be
    /// later than the field's own write (the record's `updatedAt` moves with every
    /// property). An earlier version can only favour PostgreSQL more, so only these
    /// decisions need the field's own timestamp (its property history).
    pub(crate) fn hubspot_won_by_time(&self) -> bool {
        matches!(
            &self.audit,
            Some(Resolution {
                winner: Side::HubSpot,
                reason: ResolvedBy::LastWriteWins { .. },
                ..
            })
        )
    }
}

/// Decides one field. Pure and deterministic.
pub(crate) fn decide(
    input: InboundField<'_>,
    rule: FieldRule,
    ctx: &MergeContext,
) -> InboundDecision {
    let base = input.echo.or(input.stored);
    let merged = merge_field(
        FieldInput {
            shadow: base,
            hubspot: Some(input.hubspot),
            postgres: input.postgres,
        },
        rule,
        ctx,
    );
    let pending = input.postgres.is_some();
    // The merged shadow, if it differs from the stored one.
    let changed = merged.shadow.clone().filter(|s| Some(s) != input.stored);
    let mut d = match merged.outcome {
        FieldOutcome::ApplyToPostgres(v) => InboundDecision::new(RowValue::Set(v), Tally::None),
        FieldOutcome::Agreed | FieldOutcome::NoOp if !pending => {
            InboundDecision::new(RowValue::Leave, Tally::None)
        }
        FieldOutcome::Agreed | FieldOutcome::NoOp => {
            InboundDecision::new(RowValue::Drop, Tally::None)
        }
        FieldOutcome::Echo(_) if !pending => InboundDecision::new(RowValue::Leave, Tally::Echo),
        FieldOutcome::Echo(_) => InboundDecision::new(RowValue::Drop, Tally::Echo),
        FieldOutcome::Stale(_) => InboundDecision::new(RowValue::Drop, Tally::HeldBack),
        FieldOutcome::ApplyToHubSpot(_) => {
            // PostgreSQL's pending change goes out with the writer, which updates the
            // shadow once HubSpot accepted it. An unrecorded write of hubsync's that HubSpot
            // holds is recorded as agreed first.
            let mut d = InboundDecision::new(RowValue::Drop, Tally::None);
            d.shadow = input.echo.cloned();
            return d;
        }
        FieldOutcome::Manual(open) => {
            let mut d = InboundDecision::new(RowValue::Drop, Tally::Manual);
            d.conflict = Some((base.cloned(), open));
            return d;
        }
        FieldOutcome::Conflict(r) if r.winner == Side::HubSpot => {
            let mut d = InboundDecision::new(RowValue::Set(r.value.clone()), Tally::Resolved);
            d.audit = Some(r);
            d
        }
        FieldOutcome::Conflict(r) => {
            // PostgreSQL wins. The shadow stays as it was: the writer then sees
            // PostgreSQL's value as a change and sends it.
            let mut d = InboundDecision::new(RowValue::Drop, Tally::Resolved);
            d.audit = Some(r);
            if !pending {
                // HubSpot changed a field PostgreSQL owns: remember HubSpot's value as the
                // agreed one, so the queued re-send is a change.
                let mut s = merged
                    .shadow
                    .unwrap_or_else(|| ShadowField::blank(ctx.now_ms));
                s.value.clone_from(&input.hubspot.value);
                d.shadow = Some(s);
                d.resend = true;
            }
            return d;
        }
    };
    d.shadow = changed;
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SkewRule;
    use crate::model::Version;
    use crate::policy::{ConflictPolicy, Direction};

    fn agreed(value: &str) -> ShadowField {
        ShadowField {
            value: Some(value.into()),
            hubspot_version: Some(Version::hubspot(1_000)),
            postgres_version: Some(Version::postgres(1_000, 1)),
            ..ShadowField::blank(1_000)
        }
    }

    fn lww() -> FieldRule {
        FieldRule {
            direction: Direction::TwoWay,
            policy: ConflictPolicy::LastWriteWins,
        }
    }

    /// Only a `last-write-wins` win of HubSpot's asks for the field's own timestamp; an
    /// earlier HubSpot timestamp then turns it into PostgreSQL's win.
    #[test]
    fn only_hubspot_wins_by_time_need_the_field_timestamp() {
        let ctx = MergeContext {
            clock: SkewRule::default(),
            now_ms: 50_000,
        };
        let shadow = agreed("base");
        let pg = Observed::new(Some("pg".into()), Version::postgres(20_000, 2));
        let decide_at = |hs_ms| {
            let hs = Observed::new(Some("hs".into()), Version::hubspot(hs_ms));
            decide(
                InboundField {
                    stored: Some(&shadow),
                    echo: None,
                    hubspot: &hs,
                    postgres: Some(&pg),
                },
                lww(),
                &ctx,
            )
        };
        let by_updated_at = decide_at(40_000);
        assert!(by_updated_at.hubspot_won_by_time());
        assert_eq!(by_updated_at.row, RowValue::Set(Some("hs".into())));
        let by_field = decide_at(10_000);
        assert!(!by_field.hubspot_won_by_time());
        assert_eq!(by_field.row, RowValue::Drop);
        assert_eq!(by_field.tally, Tally::Resolved);
        assert_eq!(by_field.shadow, None);
        // Within the skew window HubSpot wins the tie, whichever side is later.
        let tie = decide_at(20_900);
        assert_eq!(tie.row, RowValue::Set(Some("hs".into())));
    }
}
