//! The validated configuration turned into what the library crates take: the engine's
//! [`SyncSettings`] and a [`HubSpotClient`] with the portal's limits.

use std::{num::NonZeroU32, time::Duration};

use anyhow::Context;
use hubsync_engine::{
    policy::{ConflictPolicy, Direction, FieldOverride, FieldRule, FieldRules},
    settings::{ObjectSettings, PropertySelection, SyncSettings},
};
use hubsync_hubspot::{HubSpotClient, HubSpotClientConfig, RateQuota};

use super::{Config, ObjectConfig};

impl Config {
    /// The engine's settings: one [`ObjectSettings`] per `[[object]]`, with its direction,
    /// properties, conflict rules and sweep intervals derived from `[server]`.
    ///
    /// Directions and policies were validated against the engine's spellings, so parsing
    /// them cannot fail here; the defaults below are never reached.
    pub(crate) fn sync_settings(&self) -> SyncSettings {
        let objects = self
            .objects
            .iter()
            .map(|o| self.object_settings(o))
            .collect();
        SyncSettings::new(&self.postgres.schema, objects)
    }

    fn object_settings(&self, o: &ObjectConfig) -> ObjectSettings {
        let direction = o.direction.parse().unwrap_or(Direction::HubSpotToPostgres);
        let policy = o.conflict.parse().unwrap_or(ConflictPolicy::LastWriteWins);
        let mut rules = FieldRules::new(FieldRule { direction, policy });
        for (field, (d, c)) in &o.fields {
            let rule = FieldOverride {
                direction: d.as_deref().and_then(|d| d.parse().ok()),
                policy: c.as_deref().and_then(|c| c.parse().ok()),
            };
            rules = rules.with_override(field.clone(), rule);
        }
        let mut s = ObjectSettings::new(&o.name);
        s.direction = direction;
        s.properties = match &o.properties {
            None => PropertySelection::All,
            Some(list) => PropertySelection::Only(list.iter().cloned().collect()),
        };
        s.hard_delete = self.postgres.hard_delete;
        s.rules = rules;
        // The archived listing is part of every reconciliation round (webhooks for deletes
        // can be lost like any other, lessons.md 7); the id-set comparison stays daily.
        s.archived_sweep_every = self.sweep_every(o);
        s
    }

    /// How often `o` is reconciled with HubSpot: its own `every`, else `server.reconcile_every`.
    pub(crate) fn sweep_every(&self, o: &ObjectConfig) -> Duration {
        o.schedule.every.unwrap_or(self.server.reconcile_every)
    }

    /// The HubSpot client with the configured base URL, token and limits.
    ///
    /// # Errors
    /// The client cannot be built (bad base URL, TLS).
    pub(crate) fn hubspot_client(&self) -> anyhow::Result<HubSpotClient> {
        hubsync_hubspot::install_tls_provider();
        let h = &self.hubspot;
        let mut c = HubSpotClientConfig::new(h.base_url.clone(), h.token.clone());
        if let Some((requests, per)) = h.rate_limit {
            if let Some(requests) = NonZeroU32::new(requests) {
                c.burst = RateQuota { requests, per };
            }
        } else {
            c.burst = RateQuota {
                requests: NonZeroU32::MAX,
                per: Duration::from_secs(1),
            };
        }
        if let Some(n) = NonZeroU32::new(h.search_per_second) {
            c.search_per_second = n;
        }
        c.daily_limit = h.daily_limit;
        HubSpotClient::new(c).context("cannot build the HubSpot client")
    }
}
