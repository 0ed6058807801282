//! Associations v4 (hubspot-api.md §11): batch read with per-source paging, batch create
//! (labelled and default), batch archive (whole pairs or single labels), and labels.
//!
//! Quirks handled here: ids are JSON numbers in v4 answers; a source record with no
//! associations comes back as a 207 error item (`NO_ASSOCIATIONS_FOUND`) rather than an empty
//! list, and is reported in [`AssociationRead::no_associations`]; batch create succeeds with
//! 201 or (since 2025) 200. Association batch endpoints are exempt from the 10-second bucket.

use std::collections::{BTreeMap, HashMap};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::batch::{ItemError, WireItemError};
use crate::client::{HubSpotClient, decode};
use crate::endpoint::Endpoint;
use crate::error::HubSpotError;
use crate::objects::AssociationSpec;
use crate::pagination::{Collection, Paging};
use crate::wire;

/// Most source ids per association batch read (HubSpot's ceiling since 2025-02-10,
/// hubspot-api.md §11.4); the client's `association_read_batch` picks the size used.
pub const MAX_ASSOCIATION_READ_INPUTS: usize = 1_000;
/// Inputs per association batch write.
pub const MAX_ASSOCIATION_WRITE_INPUTS: usize = 100;

/// An association type as v4 reads return it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociationType {
    /// `HUBSPOT_DEFINED`, `USER_DEFINED`, `INTEGRATOR_DEFINED`.
    pub category: String,
    /// Type id.
    pub type_id: u32,
    /// Label; `None` for the unlabeled type.
    #[serde(default)]
    pub label: Option<String>,
}

/// One associated record with the types linking it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociatedRecord {
    /// The target record.
    #[serde(deserialize_with = "wire::id")]
    pub to_object_id: u64,
    /// The types between the pair.
    #[serde(default)]
    pub association_types: Vec<AssociationType>,
}

/// The result of [`HubSpotClient::read_associations`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssociationRead {
    /// Source id → its associated records (all pages).
    pub results: BTreeMap<u64, Vec<AssociatedRecord>>,
    /// Source ids HubSpot reported as having no associations of this kind.
    pub no_associations: Vec<u64>,
    /// Other per-source failures (invalid ids, …); `indices` point into the input ids.
    pub errors: Vec<ItemError>,
}

/// The result of an association batch write.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssociationWriteOutcome {
    /// Inputs reported as written.
    pub written: usize,
    /// Failed inputs; `indices` point into the caller's slice.
    pub errors: Vec<ItemError>,
}

/// One pair to associate with explicit types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationCreate {
    /// Source record id.
    pub from: u64,
    /// Target record id.
    pub to: u64,
    /// The types (labels) to create.
    pub types: Vec<AssociationSpec>,
}

/// A label definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelCreate {
    /// Internal name.
    pub name: String,
    /// Label.
    pub label: String,
    /// Label of the reverse direction (paired labels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inverse_label: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireReadResult {
    from: WireFrom,
    #[serde(default)]
    to: Vec<AssociatedRecord>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Debug, Deserialize)]
struct WireFrom {
    #[serde(deserialize_with = "wire::id")]
    id: u64,
}

#[derive(Debug, Deserialize)]
struct WireRead {
    #[serde(default)]
    results: Vec<WireReadResult>,
    #[serde(default)]
    errors: Vec<WireItemError>,
}

#[derive(Debug, Deserialize)]
struct WireWrite {
    #[serde(default)]
    results: Vec<Value>,
    #[serde(default)]
    errors: Vec<WireItemError>,
}

fn is_no_associations(e: &WireItemError) -> bool {
    e.sub_category()
        .is_some_and(|s| s.ends_with("NO_ASSOCIATIONS_FOUND"))
}

/// Source ids named by an item error (`fromObjectId`, `ids`, `id`).
fn named_ids(e: &WireItemError) -> Vec<u64> {
    ["fromObjectId", "ids", "id"]
        .iter()
        .flat_map(|k| e.context.get(*k).into_iter().flatten())
        .filter_map(|v| v.parse().ok())
        .collect()
}

impl HubSpotClient {
    fn association_url(&self, from: &str, to: &str, tail: &[&str]) -> url::Url {
        let mut segments = vec!["crm", "v4", "associations", from, to];
        segments.extend_from_slice(tail);
        self.url(&segments, &[])
    }

    /// Reads the `to_type` associations of `ids` (of `from_type`), `association_read_batch`
    /// (default 1,000) sources per call,
    /// following each source's paging until complete.
    ///
    /// # Errors
    /// Transport failures and exhausted retries; a rejected chunk fails the read.
    pub async fn read_associations(
        &self,
        from_type: &str,
        to_type: &str,
        ids: &[u64],
    ) -> Result<AssociationRead, HubSpotError> {
        let position: HashMap<u64, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let url = self.association_url(from_type, to_type, &["batch", "read"]);
        let mut read = AssociationRead::default();
        let mut pending: Vec<(u64, Option<String>)> = ids.iter().map(|id| (*id, None)).collect();
        while !pending.is_empty() {
            let mut next_round = Vec::new();
            for chunk in pending.chunks(self.association_read_batch()) {
                let inputs: Vec<Value> = chunk
                    .iter()
                    .map(|(id, after)| match after {
                        Some(a) => json!({ "id": id.to_string(), "after": a }),
                        None => json!({ "id": id.to_string() }),
                    })
                    .collect();
                let answer = self
                    .send_body(
                        Endpoint::ASSOCIATIONS_BATCH_READ,
                        Method::POST,
                        url.clone(),
                        &json!({ "inputs": inputs }),
                    )
                    .await?;
                let wire: WireRead = decode(Endpoint::ASSOCIATIONS_BATCH_READ, &answer.body)?;
                for result in wire.results {
                    let after = result.paging.and_then(|p| p.next).map(|n| n.after);
                    read.results
                        .entry(result.from.id)
                        .or_default()
                        .extend(result.to);
                    if let Some(after) = after {
                        next_round.push((result.from.id, Some(after)));
                    }
                }
                for error in wire.errors {
                    let named = named_ids(&error);
                    if is_no_associations(&error) {
                        read.no_associations
                            .extend(named.iter().filter(|id| !read.results.contains_key(id)));
                    } else {
                        let indices = named
                            .iter()
                            .filter_map(|id| position.get(id).copied())
                            .collect();
                        read.errors.push(error.into_item_error(indices));
                    }
                }
            }
            pending = next_round;
        }
        read.no_associations.sort_unstable();
        read.no_associations.dedup();
        Ok(read)
    }

    async fn association_write(
        &self,
        endpoint: Endpoint,
        url: url::Url,
        inputs: Vec<Value>,
    ) -> Result<AssociationWriteOutcome, HubSpotError> {
        let mut outcome = AssociationWriteOutcome::default();
        for (n, chunk) in inputs.chunks(MAX_ASSOCIATION_WRITE_INPUTS).enumerate() {
            let offset = n * MAX_ASSOCIATION_WRITE_INPUTS;
            let answer = self
                .send_body(
                    endpoint,
                    Method::POST,
                    url.clone(),
                    &json!({ "inputs": chunk }),
                )
                .await?;
            if answer.status == 204 || answer.body.is_empty() {
                outcome.written += chunk.len();
                continue;
            }
            let wire: WireWrite = decode(endpoint, &answer.body)?;
            outcome.written += wire.results.len();
            for error in wire.errors {
                // Errors name records, not inputs; attribute to inputs whose from/to match.
                let named = named_ids(&error);
                let indices = chunk
                    .iter()
                    .enumerate()
                    .filter(|(_, input)| {
                        let ids = [&input["from"]["id"], &input["to"]["id"]];
                        ids.iter().any(|v| {
                            v.as_str()
                                .and_then(|s| s.parse().ok())
                                .is_some_and(|id: u64| named.contains(&id))
                        })
                    })
                    .map(|(i, _)| offset + i)
                    .collect();
                outcome.errors.push(error.into_item_error(indices));
            }
        }
        Ok(outcome)
    }

    /// Creates labelled associations, 100 per call.
    ///
    /// # Errors
    /// Transport failures, exhausted retries, whole-call rejections.
    pub async fn create_associations(
        &self,
        from_type: &str,
        to_type: &str,
        inputs: &[AssociationCreate],
    ) -> Result<AssociationWriteOutcome, HubSpotError> {
        let body = labelled_inputs(inputs);
        let url = self.association_url(from_type, to_type, &["batch", "create"]);
        self.association_write(Endpoint::ASSOCIATIONS_BATCH_CREATE, url, body)
            .await
    }

    /// Creates the default (unlabeled) association for each `(from, to)` pair, 100 per call.
    ///
    /// # Errors
    /// Transport failures, exhausted retries, whole-call rejections.
    pub async fn create_default_associations(
        &self,
        from_type: &str,
        to_type: &str,
        pairs: &[(u64, u64)],
    ) -> Result<AssociationWriteOutcome, HubSpotError> {
        let body = pair_inputs(pairs, |to| json!({ "id": to }));
        let url = self.association_url(from_type, to_type, &["batch", "associate", "default"]);
        self.association_write(Endpoint::ASSOCIATIONS_BATCH_DEFAULT, url, body)
            .await
    }

    /// Removes every association type between each `(from, to)` pair, 100 per call.
    ///
    /// # Errors
    /// Transport failures, exhausted retries, whole-call rejections.
    pub async fn archive_associations(
        &self,
        from_type: &str,
        to_type: &str,
        pairs: &[(u64, u64)],
    ) -> Result<AssociationWriteOutcome, HubSpotError> {
        let body = pair_inputs(pairs, |to| json!([{ "id": to }]));
        let url = self.association_url(from_type, to_type, &["batch", "archive"]);
        self.association_write(Endpoint::ASSOCIATIONS_BATCH_ARCHIVE, url, body)
            .await
    }

    /// Removes only the listed types between each pair (removing the unlabeled type removes
    /// all), 100 per call.
    ///
    /// # Errors
    /// Transport failures, exhausted retries, whole-call rejections.
    pub async fn archive_association_labels(
        &self,
        from_type: &str,
        to_type: &str,
        inputs: &[AssociationCreate],
    ) -> Result<AssociationWriteOutcome, HubSpotError> {
        let body = labelled_inputs(inputs);
        let url = self.association_url(from_type, to_type, &["batch", "labels", "archive"]);
        self.association_write(Endpoint::ASSOCIATIONS_BATCH_ARCHIVE, url, body)
            .await
    }

    /// The association types (labels) defined from `from_type` to `to_type`.
    ///
    /// # Errors
    /// As for every call.
    pub async fn association_labels(
        &self,
        from_type: &str,
        to_type: &str,
    ) -> Result<Vec<AssociationType>, HubSpotError> {
        let url = self.association_url(from_type, to_type, &["labels"]);
        let page: Collection<AssociationType> =
            self.get_json(Endpoint::ASSOCIATION_LABELS, url).await?;
        Ok(page.results)
    }

    /// Defines a new label; returns the created type(s) (two for paired labels).
    ///
    /// # Errors
    /// As for every call.
    pub async fn create_association_label(
        &self,
        from_type: &str,
        to_type: &str,
        label: &LabelCreate,
    ) -> Result<Vec<AssociationType>, HubSpotError> {
        let url = self.association_url(from_type, to_type, &["labels"]);
        let page: Collection<AssociationType> = self
            .send_json(Endpoint::ASSOCIATION_LABELS, Method::POST, url, label)
            .await?;
        Ok(page.results)
    }
}

/// Write inputs naming explicit association types: `{from, to, types}`.
fn labelled_inputs(inputs: &[AssociationCreate]) -> Vec<Value> {
    inputs
        .iter()
        .map(|a| json!({ "from": { "id": a.from.to_string() }, "to": { "id": a.to.to_string() }, "types": a.types }))
        .collect()
}

/// Write inputs for `(from, to)` pairs; `to` shapes the target id (an object or a list of one,
/// by endpoint).
fn pair_inputs(pairs: &[(u64, u64)], to: impl Fn(String) -> Value) -> Vec<Value> {
    pairs
        .iter()
        .map(|(f, t)| json!({ "from": { "id": f.to_string() }, "to": to(t.to_string()) }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_read_answer_with_no_associations_item() {
        let body = r#"{"status":"COMPLETE","results":[{"from":{"id":"501"},
            "to":[{"toObjectId":29022297485,"associationTypes":[{"category":"HUBSPOT_DEFINED","typeId":1,"label":"Primary"},
                  {"category":"HUBSPOT_DEFINED","typeId":279,"label":null}]}],
            "paging":{"next":{"after":"MC0yLTE1OTc0MDA2NTg%3D"}}}],
          "errors":[{"status":"error","category":"OBJECT_NOT_FOUND","subCategory":"crm.associations.NO_ASSOCIATIONS_FOUND",
            "message":"No company is associated with contact 103107104018.",
            "context":{"fromObjectId":["103107104018"],"fromObjectType":["contact"],"toObjectType":["company"]}}]}"#;
        let wire: WireRead = serde_json::from_str(body).expect("parses");
        assert_eq!(wire.results[0].from.id, 501);
        assert_eq!(wire.results[0].to[0].to_object_id, 29_022_297_485);
        assert_eq!(wire.results[0].to[0].association_types[1].label, None);
        assert!(
            wire.results[0]
                .paging
                .as_ref()
                .and_then(|p| p.next.as_ref())
                .is_some()
        );
        assert!(is_no_associations(&wire.errors[0]));
        assert_eq!(named_ids(&wire.errors[0]), vec![103_107_104_018]);
    }
}
