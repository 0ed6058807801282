//! Ordering of versions: within one side (is this observation newer than what the shadow has
//! seen?) and across sides (who wrote last, for `last-write-wins`), with the clock-skew rule
//! stated in docs/conflicts.md.
//!
//! The rule: HubSpot's and PostgreSQL's clocks are different machines' clocks, so their
//! timestamps are only comparable up to a skew window (default 1 s). If the two writes'
//! timestamps differ by MORE than the window, the later one wins. If they are within the
//! window (inclusive) the writes are treated as concurrent and the fixed tie side wins
//! (default HubSpot). The result depends only on the two versions, never on the order in
//! which they were observed, so every replica of the decision agrees.

use serde::{Deserialize, Serialize};

use crate::model::{Side, Version};

/// The default skew window: 1 s.
pub const DEFAULT_SKEW_WINDOW_MS: u64 = 1_000;

/// How `last-write-wins` compares versions across the two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SkewRule {
    /// Timestamps this close (inclusive) are treated as concurrent.
    pub window_ms: u64,
    /// The side that wins concurrent writes. Default HubSpot: its timestamps come from one
    /// authoritative clock, and a near-simultaneous edit there is usually a person's.
    pub tie_winner: Side,
}

impl Default for SkewRule {
    fn default() -> Self {
        SkewRule {
            window_ms: DEFAULT_SKEW_WINDOW_MS,
            tie_winner: Side::HubSpot,
        }
    }
}

/// The outcome of comparing two sides' writes under [`SkewRule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LwwDecision {
    /// The side whose value is kept.
    pub winner: Side,
    /// True if the writes were within the skew window and the tie side won.
    pub concurrent: bool,
}

impl SkewRule {
    /// Decides `last-write-wins` between HubSpot's write at `hubspot` and PostgreSQL's write
    /// at `postgres`, comparing wall-clock times (`at_ms`) only.
    #[must_use]
    pub fn last_writer(&self, hubspot: Version, postgres: Version) -> LwwDecision {
        let gap = i128::from(hubspot.at_ms) - i128::from(postgres.at_ms);
        if gap.unsigned_abs() <= u128::from(self.window_ms) {
            LwwDecision {
                winner: self.tie_winner,
                concurrent: true,
            }
        } else if gap > 0 {
            LwwDecision {
                winner: Side::HubSpot,
                concurrent: false,
            }
        } else {
            LwwDecision {
                winner: Side::Postgres,
                concurrent: false,
            }
        }
    }
}

/// True if `observed` is strictly newer than the newest version the shadow has seen on that
/// side (`None`: nothing seen yet, so anything is newer). Within a side versions are totally
/// ordered (see [`Version`]).
#[must_use]
pub fn is_newer(observed: Version, seen: Option<Version>) -> bool {
    seen.is_none_or(|seen| observed > seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn outside_the_window_the_later_write_wins() {
        let rule = SkewRule::default();
        let d = rule.last_writer(Version::hubspot(10_000), Version::postgres(12_000, 1));
        assert_eq!(
            d,
            LwwDecision {
                winner: Side::Postgres,
                concurrent: false
            }
        );
        let d = rule.last_writer(Version::hubspot(12_000), Version::postgres(10_000, 1));
        assert_eq!(
            d,
            LwwDecision {
                winner: Side::HubSpot,
                concurrent: false
            }
        );
    }

    #[test]
    fn inside_the_window_the_tie_side_wins() {
        let rule = SkewRule::default();
        let d = rule.last_writer(Version::hubspot(10_000), Version::postgres(11_000, 1));
        assert_eq!(
            d,
            LwwDecision {
                winner: Side::HubSpot,
                concurrent: true
            }
        );
        let pg_ties = SkewRule {
            tie_winner: Side::Postgres,
            ..rule
        };
        let d = pg_ties.last_writer(Version::hubspot(10_999), Version::postgres(10_000, 1));
        assert_eq!(d.winner, Side::Postgres);
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let rule = SkewRule {
            window_ms: u64::MAX,
            tie_winner: Side::Postgres,
        };
        let d = rule.last_writer(Version::hubspot(i64::MAX), Version::postgres(i64::MIN, 0));
        assert!(d.concurrent);
        let d = SkewRule::default()
            .last_writer(Version::hubspot(i64::MIN), Version::postgres(i64::MAX, 0));
        assert_eq!(d.winner, Side::Postgres);
    }

    proptest! {
        /// The later write wins unless the gap is within the window; the decision never
        /// depends on anything but the two timestamps.
        #[test]
        fn later_write_wins_outside_window(hs in any::<i64>(), pg in any::<i64>(),
                                           window in 0u64..5_000, seq in any::<i64>()) {
            let rule = SkewRule { window_ms: window, tie_winner: Side::HubSpot };
            let d = rule.last_writer(Version::hubspot(hs), Version::postgres(pg, seq));
            let gap = (i128::from(hs) - i128::from(pg)).unsigned_abs();
            prop_assert_eq!(d.concurrent, gap <= u128::from(window));
            if !d.concurrent {
                prop_assert_eq!(d.winner, if hs > pg { Side::HubSpot } else { Side::Postgres });
            }
        }
    }
}
