//! Typed access to hubsync's state tables in the `hubsync` schema (created by the
//! migrations). Every function takes any [`GenericClient`](crate::GenericClient) — a pooled
//! connection or a transaction — so callers can write state in the same transaction as the
//! data it describes (a cursor with the page it covers, the shadow with the row it mirrors).

use std::time::Duration;

/// Defines an enum stored as text in a CHECK-constrained column, with `as_str` and `parse`.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The text stored in the table.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// Parses the stored text.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }
    };
}
// Child modules below see the macro by textual scope.

pub mod audit;
pub mod conflicts;
pub mod cursors;
pub mod inbox;
pub mod issues;
pub mod leases;
pub mod mapping_overrides;
pub mod outbox;
pub mod records;
pub mod shadow;
pub mod summary;

use crate::error::StoreError;

/// A duration as the seconds PostgreSQL's `make_interval(secs => …)` takes.
pub(crate) fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Parses a text status column into its enum, or reports corrupt state.
pub(crate) fn parse_text<T>(
    column: &'static str,
    value: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(value).ok_or_else(|| StoreError::Corrupt(format!("unknown {column} {value:?}")))
}
