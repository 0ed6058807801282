//! Per-property source versions: when each property of a record got its current value,
//! from HubSpot's property history (`propertiesWithHistory` on batch read, hubspot-api.md
//! §4.6 and §5). A record's `updatedAt` moves whenever *any* property changes, so it only
//! bounds a property's timestamp from above; two-way sync orders a conflict on one field by
//! that field's own timestamp, read here for the records and properties in conflict only.
//!
//! Calls: one batch read per 50 records (HubSpot's limit with history), on the general
//! limiter. Ids HubSpot no longer has are simply absent from the answer.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::{BatchRead, HubSpotClient, HubSpotError, objects::ValueWithTimestamp};

/// The property histories of some records, as HubSpot returned them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PropertyHistory {
    records: HashMap<u64, BTreeMap<String, Vec<ValueWithTimestamp>>>,
}

impl PropertyHistory {
    /// When `property` of record `id` was last set to `value` (`None` or `""`: cleared): the
    /// newest history entry holding that value, whatever order HubSpot lists them in. `None`
    /// when the history was not read or has no such entry (the value changed again since
    /// it was observed, or was never written).
    #[must_use]
    pub fn written_at(
        &self,
        id: u64,
        property: &str,
        value: Option<&str>,
    ) -> Option<DateTime<Utc>> {
        let wanted = value.unwrap_or_default();
        self.records
            .get(&id)?
            .get(property)?
            .iter()
            .filter(|e| e.value == wanted)
            .map(|e| e.timestamp)
            .max()
    }

    /// Whether the history of record `id` was returned.
    #[must_use]
    pub fn has_record(&self, id: u64) -> bool {
        self.records.contains_key(&id)
    }

    /// Histories of records read one by one (e.g. from a read that asked for history).
    #[must_use]
    pub fn from_records(records: impl IntoIterator<Item = crate::SimpleObject>) -> Self {
        PropertyHistory {
            records: records
                .into_iter()
                .map(|r| (r.id, r.properties_with_history))
                .collect(),
        }
    }
}

impl HubSpotClient {
    /// Reads the history of `properties` of the records `ids` (batch read with
    /// `propertiesWithHistory`, 50 records per call). Missing or archived ids are left out.
    ///
    /// # Errors
    /// Transport failures and exhausted retries.
    pub async fn property_history(
        &self,
        object_type: &str,
        ids: &[u64],
        properties: &[String],
    ) -> Result<PropertyHistory, HubSpotError> {
        if ids.is_empty() || properties.is_empty() {
            return Ok(PropertyHistory::default());
        }
        let request = BatchRead {
            ids: ids.iter().map(u64::to_string).collect(),
            properties: properties.to_vec(),
            properties_with_history: properties.to_vec(),
            ..BatchRead::default()
        };
        let outcome = self.batch_read(object_type, &request).await?;
        Ok(PropertyHistory::from_records(outcome.results))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(value: &str, at: &str) -> ValueWithTimestamp {
        serde_json::from_value(serde_json::json!({
            "value": value, "timestamp": at, "sourceType": "CRM_UI"
        }))
        .unwrap_or_else(|e| panic!("entry: {e}"))
    }

    fn history() -> PropertyHistory {
        let firstname = vec![
            // Listed oldest first on purpose: the order is not relied on.
            entry("Ann", "2024-01-01T00:00:00.000Z"),
            entry("", "2024-01-02T00:00:00.000Z"),
            entry("Ann", "2024-01-03T00:00:00.000Z"),
            entry("Bea", "2024-01-04T00:00:00.000Z"),
        ];
        PropertyHistory {
            records: HashMap::from([(7, BTreeMap::from([("firstname".to_owned(), firstname)]))]),
        }
    }

    #[test]
    fn the_newest_entry_with_the_value_dates_it() {
        let h = history();
        let at = |v: Option<&str>| h.written_at(7, "firstname", v).map(|t| t.to_rfc3339());
        assert_eq!(
            at(Some("Ann")).as_deref(),
            Some("2024-01-03T00:00:00+00:00")
        );
        assert_eq!(
            at(Some("Bea")).as_deref(),
            Some("2024-01-04T00:00:00+00:00")
        );
        assert_eq!(at(None).as_deref(), Some("2024-01-02T00:00:00+00:00"));
        assert_eq!(at(Some("Cy")), None);
        assert_eq!(h.written_at(7, "lastname", Some("Ann")), None);
        assert_eq!(h.written_at(8, "firstname", Some("Ann")), None);
        assert!(h.has_record(7) && !h.has_record(8));
    }
}
