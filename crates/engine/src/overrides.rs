//! Field-mapping overrides made at run time (`hubsync.mapping_overrides`, set from the
//! dashboard or by SQL) applied over the configured [`ObjectSettings`].
//!
//! [`HsToPg::prepare`](crate::hs_to_pg::HsToPg::prepare) calls [`apply_stored`] at the start
//! of every pass, so an override takes effect at the next catalog refresh of every instance
//! (the daemon refreshes at once when it is notified on `hubsync_mapping`):
//!
//! - `included = false`: the property is no longer requested from HubSpot nor written
//!   either way (its column stays, with the values it had);
//! - `included = true`: the property is synced even if the configured list omits it (its
//!   column is created by discovery; values arrive as records change or are re-read);
//! - `direction` / `conflict`: replace the field's configured rule (read-only HubSpot
//!   properties still only flow HubSpot → PostgreSQL).
//!
//! Spellings the engine does not know are ignored with a warning (the table's CHECK
//! constraints normally refuse them).

use std::collections::BTreeSet;

use hubsync_store::{
    Store,
    state::mapping_overrides::{self, MappingOverride},
};

use crate::hs_to_pg::SyncError;
use crate::policy::FieldOverride;
use crate::settings::{ObjectSettings, PropertySelection};

/// Reads every stored override and applies it to `objects`.
///
/// # Errors
/// PostgreSQL failures.
pub async fn apply_stored(store: &Store, objects: &mut [ObjectSettings]) -> Result<(), SyncError> {
    let store_err = |source| SyncError::Store {
        object: "mapping overrides".to_owned(),
        source,
    };
    let conn = store.client().await.map_err(store_err)?;
    let overrides = mapping_overrides::list(&conn, None)
        .await
        .map_err(store_err)?;
    for object in objects.iter_mut() {
        apply(object, &overrides);
    }
    Ok(())
}

/// Applies the overrides of `settings.name` among `overrides`.
pub fn apply(settings: &mut ObjectSettings, overrides: &[MappingOverride]) {
    for o in overrides.iter().filter(|o| o.object == settings.name) {
        match o.included {
            Some(true) => include(&mut settings.properties, &o.property),
            Some(false) => exclude(&mut settings.properties, &o.property),
            None => {}
        }
        if o.direction.is_none() && o.conflict.is_none() {
            continue;
        }
        let current = settings.rules.override_for(&o.property).unwrap_or_default();
        let direction = o.direction.as_deref().and_then(|d| {
            d.parse()
                .inspect_err(
                    |e| tracing::warn!(property = %o.property, error = %e, "override ignored"),
                )
                .ok()
        });
        let policy = o.conflict.as_deref().and_then(|c| {
            c.parse()
                .inspect_err(
                    |e| tracing::warn!(property = %o.property, error = %e, "override ignored"),
                )
                .ok()
        });
        let rule = FieldOverride {
            direction: direction.or(current.direction),
            policy: policy.or(current.policy),
        };
        settings.rules = std::mem::take(&mut settings.rules).with_override(&o.property, rule);
    }
}

fn include(selection: &mut PropertySelection, property: &str) {
    match selection {
        PropertySelection::All => {}
        PropertySelection::Only(names) => {
            names.insert(property.to_owned());
        }
        PropertySelection::AllExcept(names) => {
            names.remove(property);
        }
    }
}

fn exclude(selection: &mut PropertySelection, property: &str) {
    match selection {
        PropertySelection::All => {
            *selection = PropertySelection::AllExcept(BTreeSet::from([property.to_owned()]));
        }
        PropertySelection::Only(names) => {
            names.remove(property);
        }
        PropertySelection::AllExcept(names) => {
            names.insert(property.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{ConflictPolicy, Direction, FieldRule, FieldRules};

    fn over(property: &str) -> MappingOverride {
        MappingOverride {
            object: "contacts".to_owned(),
            property: property.to_owned(),
            ..MappingOverride::default()
        }
    }

    #[test]
    fn include_and_exclude_change_the_selection() {
        let mut s = ObjectSettings::new("contacts");
        s.properties = PropertySelection::Only(["email".to_owned()].into());
        let mut phone = over("phone");
        phone.included = Some(true);
        let mut email = over("email");
        email.included = Some(false);
        let mut other = over("phone");
        other.object = "deals".to_owned();
        other.included = Some(false);
        apply(&mut s, &[phone, email, other]);
        assert!(s.properties.allows("phone"));
        assert!(!s.properties.allows("email"));

        let mut all = ObjectSettings::new("contacts");
        let mut secret = over("secret");
        secret.included = Some(false);
        apply(&mut all, &[secret]);
        assert!(!all.properties.allows("secret"));
        assert!(all.properties.allows("email"));
    }

    #[test]
    fn rules_merge_with_the_configured_override() {
        let mut s = ObjectSettings::new("contacts");
        s.rules = FieldRules::new(FieldRule {
            direction: Direction::TwoWay,
            policy: ConflictPolicy::LastWriteWins,
        })
        .with_override(
            "phone",
            FieldOverride {
                direction: Some(Direction::HubSpotToPostgres),
                policy: None,
            },
        );
        let mut o = over("phone");
        o.conflict = Some("manual".to_owned());
        apply(&mut s, &[o]);
        let rule = s.rules.resolve("phone");
        assert_eq!(rule.direction, Direction::HubSpotToPostgres);
        assert_eq!(rule.policy, ConflictPolicy::Manual);
        let mut bad = over("email");
        bad.direction = Some("sideways".to_owned());
        apply(&mut s, &[bad]);
        assert_eq!(s.rules.resolve("email").direction, Direction::TwoWay);
    }
}
