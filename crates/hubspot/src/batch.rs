//! v3 batch endpoints: read, create, update, upsert and archive, chunked to HubSpot's 100
//! inputs per call, with per-item results.
//!
//! HubSpot answers 200/201 when every input succeeded, 207 with `results` plus `errors` when
//! some failed, and (batch create without unique `objectWriteTraceId`s) a whole-call error
//! for the first failure. We always send a trace id (the input's index unless the caller gave
//! one), so failures come back per item; each [`ItemError`] names the input indices it
//! belongs to (lessons.md #25, #26). A whole chunk rejected by HubSpot (e.g. 400 duplicate
//! ids) becomes one [`ItemError`] covering that chunk's inputs; transport failures and
//! exhausted retries fail the call.
//!
//! Every HTTP call of a chunked batch is kept in [`BatchOutcome::calls`] with the inputs it
//! carried and HubSpot's correlation id (the `X-HubSpot-Correlation-Id` header, or the
//! error body's `correlationId`), so a write can be traced to the exact call HubSpot's
//! support can look up ([`BatchOutcome::correlation_id`]).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::client::{HubSpotClient, decode};
use crate::endpoint::Endpoint;
use crate::error::{HubSpotError, existing_id_in};
use crate::objects::{ObjectInput, SimpleObject};
use crate::wire;

/// HubSpot's inputs-per-call ceiling for batch endpoints.
pub const MAX_BATCH_INPUTS: usize = 100;
/// The ceiling for batch read with property history.
pub const MAX_BATCH_READ_WITH_HISTORY: usize = 50;

/// The outcome of a (possibly chunked) batch call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    /// Records written or read.
    pub results: Vec<SimpleObject>,
    /// Inputs that failed.
    pub errors: Vec<ItemError>,
    /// The HTTP calls made, in order (one per chunk).
    pub calls: Vec<BatchCall>,
}

impl BatchOutcome {
    fn absorb(&mut self, other: Self) {
        self.results.extend(other.results);
        self.errors.extend(other.errors);
        self.calls.extend(other.calls);
    }

    /// HubSpot's correlation id of the call that carried input `index` (an index into the
    /// caller's input slice), when HubSpot sent one.
    pub fn correlation_id(&self, index: usize) -> Option<&str> {
        self.calls
            .iter()
            .find(|c| c.inputs.contains(&index))
            .and_then(|c| c.correlation_id.as_deref())
    }
}

/// One HTTP call of a (possibly chunked) batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchCall {
    /// The indices into the caller's input slice that this call carried.
    pub inputs: Range<usize>,
    /// HubSpot's correlation id of the call (`X-HubSpot-Correlation-Id`, or `correlationId`
    /// of a whole-call error body).
    pub correlation_id: Option<String>,
}

/// One failed input (or a rejected chunk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    /// HTTP status: the chunk's status for whole-chunk rejections, otherwise derived from the
    /// category (400 validation, 404 not found, 409 conflict; 207 when unknown).
    pub status: u16,
    /// `category` (`CONFLICT`, `OBJECT_NOT_FOUND`, `VALIDATION_ERROR`, …).
    pub category: Option<String>,
    /// `subCategory`.
    pub sub_category: Option<String>,
    /// Message (may contain values; don't log it above debug).
    pub message: String,
    /// `context` (`ids`, `existingId`, `objectWriteTraceId`, …).
    pub context: BTreeMap<String, Vec<String>>,
    /// Indices into the caller's input slice that this error concerns.
    pub indices: Vec<usize>,
    /// Ids named by the error (`context.ids`/`context.id`).
    pub ids: Vec<String>,
}

impl ItemError {
    /// For duplicate-value conflicts: the record already holding the value.
    pub fn existing_id(&self) -> Option<u64> {
        existing_id_in(&self.context, &self.message)
    }
}

/// The item error JSON inside a 207.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireItemError {
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    sub_category: Option<Value>,
    #[serde(default)]
    message: String,
    #[serde(default, deserialize_with = "wire::lenient_context")]
    pub(crate) context: BTreeMap<String, Vec<String>>,
}

impl WireItemError {
    /// The sub-category as text.
    pub(crate) fn sub_category(&self) -> Option<String> {
        self.sub_category.as_ref().map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// The item error, attributed to `indices`.
    pub(crate) fn into_item_error(self, indices: Vec<usize>) -> ItemError {
        let ids = ["ids", "id"]
            .iter()
            .flat_map(|k| self.context.get(*k).cloned().unwrap_or_default())
            .collect();
        ItemError {
            status: status_for_category(self.category.as_deref()),
            sub_category: self.sub_category(),
            category: self.category,
            message: self.message,
            context: self.context,
            indices,
            ids,
        }
    }
}

#[derive(Debug, Deserialize)]
struct WireBatch {
    #[serde(default)]
    results: Vec<SimpleObject>,
    #[serde(default)]
    errors: Vec<WireItemError>,
}

fn status_for_category(category: Option<&str>) -> u16 {
    match category {
        Some("VALIDATION_ERROR") => 400,
        Some("OBJECT_NOT_FOUND") => 404,
        Some("CONFLICT" | "OBJECT_ALREADY_EXISTS") => 409,
        Some("RATE_LIMIT" | "RATE_LIMITS") => 429,
        _ => 207,
    }
}

/// How an input is named in error contexts: its write trace id and its id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct InputKeys {
    trace: Option<String>,
    id: Option<String>,
}

/// Lookup from trace ids and ids to input indices within the whole call.
#[derive(Debug, Default)]
struct KeyIndex {
    traces: HashMap<String, usize>,
    ids: HashMap<String, usize>,
}

impl KeyIndex {
    fn new<'a>(keys: impl Iterator<Item = (usize, &'a InputKeys)>) -> Self {
        let mut index = Self::default();
        for (i, k) in keys {
            if let Some(t) = &k.trace {
                index.traces.insert(t.clone(), i);
            }
            if let Some(id) = &k.id {
                index.ids.insert(id.clone(), i);
            }
        }
        index
    }

    fn indices(&self, context: &BTreeMap<String, Vec<String>>) -> Vec<usize> {
        let lookup = |key: &str, map: &HashMap<String, usize>| -> Vec<usize> {
            context
                .get(key)
                .into_iter()
                .flatten()
                .filter_map(|v| map.get(v).copied())
                .collect()
        };
        let mut out = lookup("objectWriteTraceId", &self.traces);
        out.extend(lookup("ids", &self.ids));
        out.extend(lookup("id", &self.ids));
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Turns one batch answer into an outcome, mapping errors to input indices through `keys`.
fn parse_outcome(
    endpoint: Endpoint,
    status: u16,
    body: &[u8],
    keys: &KeyIndex,
) -> Result<BatchOutcome, HubSpotError> {
    if status == 204 || body.is_empty() {
        return Ok(BatchOutcome::default());
    }
    let wire: WireBatch = decode(endpoint, body)?;
    let errors = wire
        .errors
        .into_iter()
        .map(|e| {
            let indices = keys.indices(&e.context);
            e.into_item_error(indices)
        })
        .collect();
    Ok(BatchOutcome {
        results: wire.results,
        errors,
        calls: Vec::new(),
    })
}

/// A whole-chunk rejection as one item error with the call's correlation id, or the error
/// itself when it isn't HubSpot's verdict on the inputs (transport, budget).
fn chunk_rejection(
    err: HubSpotError,
    indices: Vec<usize>,
) -> Result<(ItemError, Option<String>), HubSpotError> {
    let Some(api) = err.api().cloned() else {
        return Err(err);
    };
    if api.retryable {
        return Err(err);
    }
    let item = ItemError {
        status: api.status,
        category: api.category,
        sub_category: api.sub_category,
        message: api.message,
        ids: api.context.get("ids").cloned().unwrap_or_default(),
        context: api.context,
        indices,
    };
    Ok((item, api.correlation_id))
}

/// Batch read request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchRead {
    /// Ids (or values of `id_property`).
    pub ids: Vec<String>,
    /// A unique property the ids are values of.
    pub id_property: Option<String>,
    /// Properties to return.
    pub properties: Vec<String>,
    /// Properties to return with history (lowers the chunk size to 50).
    pub properties_with_history: Vec<String>,
    /// Read archived records.
    pub archived: bool,
}

/// One record to update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateInput {
    /// Id (or value of `id_property`).
    pub id: String,
    /// A unique property `id` is a value of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_property: Option<String>,
    /// Properties to set.
    pub properties: BTreeMap<String, String>,
    /// Write trace id (filled with the input index when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_write_trace_id: Option<String>,
}

/// One record to create or update by a unique property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsertInput {
    /// The unique value.
    pub id: String,
    /// The unique property (e.g. `email`, or a hubsync-managed `hasUniqueValue` property).
    pub id_property: String,
    /// Properties to set.
    pub properties: BTreeMap<String, String>,
    /// Write trace id (filled with the input index when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_write_trace_id: Option<String>,
}

impl HubSpotClient {
    /// Runs a batch endpoint over `inputs` in chunks of `chunk`, mapping errors to indices.
    async fn run_batch(
        &self,
        endpoint: Endpoint,
        url: &url::Url,
        inputs: Vec<(Value, InputKeys)>,
        chunk: usize,
        extra: &serde_json::Map<String, Value>,
    ) -> Result<BatchOutcome, HubSpotError> {
        let mut outcome = BatchOutcome::default();
        let mut offset = 0;
        let mut rest = inputs.into_iter().peekable();
        while rest.peek().is_some() {
            let (values, part): (Vec<Value>, Vec<InputKeys>) =
                rest.by_ref().take(chunk.max(1)).unzip();
            let keys = KeyIndex::new(part.iter().enumerate().map(|(i, k)| (offset + i, k)));
            let mut body = extra.clone();
            body.insert("inputs".to_owned(), Value::Array(values));
            let inputs = offset..offset + part.len();
            let correlation_id = match self
                .send_body(endpoint, Method::POST, url.clone(), &body)
                .await
            {
                Ok(answer) => {
                    outcome.absorb(parse_outcome(endpoint, answer.status, &answer.body, &keys)?);
                    answer.correlation_id
                }
                Err(err) => {
                    let (item, correlation_id) = chunk_rejection(err, inputs.clone().collect())?;
                    outcome.errors.push(item);
                    correlation_id
                }
            };
            offset = inputs.end;
            outcome.calls.push(BatchCall {
                inputs,
                correlation_id,
            });
        }
        Ok(outcome)
    }

    fn batch_url(&self, object_type: &str, action: &str, archived: bool) -> url::Url {
        let query: &[(&str, &str)] = if archived {
            &[("archived", "true")]
        } else {
            &[]
        };
        self.url(
            &["crm", "v3", "objects", object_type, "batch", action],
            query,
        )
    }

    /// Reads records by id (or unique value), 100 per call (50 with history). Missing ids
    /// come back as [`ItemError`]s with status 404.
    ///
    /// # Errors
    /// Transport failures and exhausted retries.
    pub async fn batch_read(
        &self,
        object_type: &str,
        request: &BatchRead,
    ) -> Result<BatchOutcome, HubSpotError> {
        let chunk = if request.properties_with_history.is_empty() {
            MAX_BATCH_INPUTS
        } else {
            MAX_BATCH_READ_WITH_HISTORY
        };
        let inputs = by_id(request.ids.iter().cloned());
        let mut extra = serde_json::Map::new();
        extra.insert("properties".to_owned(), json!(request.properties));
        extra.insert(
            "propertiesWithHistory".to_owned(),
            json!(request.properties_with_history),
        );
        if let Some(p) = &request.id_property {
            extra.insert("idProperty".to_owned(), json!(p));
        }
        let url = self.batch_url(object_type, "read", request.archived);
        self.run_batch(Endpoint::BATCH_READ, &url, inputs, chunk, &extra)
            .await
    }

    /// Creates records, 100 per call, each with a write trace id so failures are per item
    /// (a duplicate email is an [`ItemError`] with [`ItemError::existing_id`]).
    ///
    /// # Errors
    /// Transport failures and exhausted retries.
    pub async fn batch_create(
        &self,
        object_type: &str,
        inputs: &[ObjectInput],
    ) -> Result<BatchOutcome, HubSpotError> {
        self.write_batch(
            Endpoint::BATCH_CREATE,
            object_type,
            "create",
            traced(inputs)?,
        )
        .await
    }

    /// Updates records, 100 per call.
    ///
    /// # Errors
    /// Transport failures and exhausted retries.
    pub async fn batch_update(
        &self,
        object_type: &str,
        inputs: &[UpdateInput],
    ) -> Result<BatchOutcome, HubSpotError> {
        self.write_batch(
            Endpoint::BATCH_UPDATE,
            object_type,
            "update",
            traced(inputs)?,
        )
        .await
    }

    /// Creates or updates records by a unique property, 100 per call; results carry
    /// [`SimpleObject::created`]. The idempotent way to write (lessons.md #12).
    ///
    /// # Errors
    /// Transport failures and exhausted retries.
    pub async fn batch_upsert(
        &self,
        object_type: &str,
        inputs: &[UpsertInput],
    ) -> Result<BatchOutcome, HubSpotError> {
        self.write_batch(
            Endpoint::BATCH_UPSERT,
            object_type,
            "upsert",
            traced(inputs)?,
        )
        .await
    }

    /// Archives records by id, 100 per call.
    ///
    /// # Errors
    /// Transport failures and exhausted retries.
    pub async fn batch_archive(
        &self,
        object_type: &str,
        ids: &[u64],
    ) -> Result<BatchOutcome, HubSpotError> {
        let inputs = by_id(ids.iter().map(u64::to_string));
        self.write_batch(Endpoint::BATCH_ARCHIVE, object_type, "archive", inputs)
            .await
    }

    /// Runs a write `action` (no extra body fields) in chunks of [`MAX_BATCH_INPUTS`].
    async fn write_batch(
        &self,
        endpoint: Endpoint,
        object_type: &str,
        action: &str,
        inputs: Vec<(Value, InputKeys)>,
    ) -> Result<BatchOutcome, HubSpotError> {
        let url = self.batch_url(object_type, action, false);
        self.run_batch(
            endpoint,
            &url,
            inputs,
            MAX_BATCH_INPUTS,
            &serde_json::Map::new(),
        )
        .await
    }
}

/// A batch write input that carries an optional write trace id (and maybe a record id).
trait TracedInput: Clone + Serialize {
    /// The input's `objectWriteTraceId` slot.
    fn trace_slot(&mut self) -> &mut Option<String>;
    /// The id the input names, when it names one.
    fn id(&self) -> Option<String>;
}

impl TracedInput for ObjectInput {
    fn trace_slot(&mut self) -> &mut Option<String> {
        &mut self.object_write_trace_id
    }
    fn id(&self) -> Option<String> {
        None
    }
}

impl TracedInput for UpdateInput {
    fn trace_slot(&mut self) -> &mut Option<String> {
        &mut self.object_write_trace_id
    }
    fn id(&self) -> Option<String> {
        Some(self.id.clone())
    }
}

impl TracedInput for UpsertInput {
    fn trace_slot(&mut self) -> &mut Option<String> {
        &mut self.object_write_trace_id
    }
    fn id(&self) -> Option<String> {
        Some(self.id.clone())
    }
}

/// Serializes inputs with their trace id filled in (the input's index unless the caller gave
/// one); returns (json, keys) per input.
fn traced<I: TracedInput>(inputs: &[I]) -> Result<Vec<(Value, InputKeys)>, HubSpotError> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let mut input = input.clone();
            let trace = input
                .trace_slot()
                .get_or_insert_with(|| i.to_string())
                .clone();
            let keys = InputKeys {
                trace: Some(trace),
                id: input.id(),
            };
            serde_json::to_value(input).map(|v| (v, keys)).map_err(|e| {
                HubSpotError::InvalidInput(format!("batch input {i} not encodable: {e}"))
            })
        })
        .collect()
}

/// `{"id": …}` inputs (read, archive), named in error contexts by their id.
fn by_id(ids: impl Iterator<Item = String>) -> Vec<(Value, InputKeys)> {
    ids.map(|id| {
        (
            json!({ "id": id }),
            InputKeys {
                trace: None,
                id: Some(id),
            },
        )
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_status_maps_errors_to_indices() {
        let body = br#"{"completedAt":"2025-11-04T20:29:54.897Z","status":"COMPLETE","startedAt":"2025-11-04T20:29:54.816Z",
         "results":[{"id":"171596044870","properties":{"email":"siena.dyer@hubspot.com"},
           "createdAt":"2025-11-03T23:36:13.632Z","updatedAt":"2025-11-03T23:36:13.632Z","archived":false}],
         "errors":[{"status":"error","category":"CONFLICT",
           "message":"Contact already exists. Existing ID: 171591000198",
           "context":{"objectWriteTraceId":["3"],"existingId":["171591000198"]}},
           {"status":"error","category":"OBJECT_NOT_FOUND","message":"Could not get some CONTACT objects",
           "context":{"ids":["77","78"]}}],
         "numErrors":2}"#;
        let inputs = [
            (
                3,
                InputKeys {
                    trace: Some("3".into()),
                    id: Some("78".into()),
                },
            ),
            (
                5,
                InputKeys {
                    trace: None,
                    id: Some("77".into()),
                },
            ),
            (
                6,
                InputKeys {
                    trace: Some("77".into()),
                    id: Some("78".into()),
                },
            ),
        ];
        let keys = KeyIndex::new(inputs.iter().map(|(i, k)| (*i, k)));
        let out = parse_outcome(Endpoint::BATCH_CREATE, 207, body, &keys).expect("parses");
        assert_eq!(out.results.len(), 1);
        assert_eq!(out.errors[0].indices, vec![3]);
        assert_eq!(out.errors[0].status, 409);
        assert_eq!(out.errors[0].existing_id(), Some(171_591_000_198));
        assert_eq!(out.errors[1].indices, vec![5, 6]);
        assert_eq!(out.errors[1].ids, vec!["77", "78"]);
        assert_eq!(out.errors[1].status, 404);
    }

    #[test]
    fn no_content_is_an_empty_outcome() {
        let out =
            parse_outcome(Endpoint::BATCH_ARCHIVE, 204, b"", &KeyIndex::default()).expect("ok");
        assert_eq!(out, BatchOutcome::default());
    }

    #[test]
    fn whole_chunk_rejection_keeps_the_chunk_indices() {
        let err = HubSpotError::from_response(
            "batch.update",
            400,
            br#"{"status":"error","message":"Duplicate IDs found in batch input: [1]. IDs must be unique","correlationId":"c","context":{"ids":["1"]},"category":"VALIDATION_ERROR"}"#,
            None,
            None,
        );
        let (item, correlation) = chunk_rejection(err, vec![100, 101]).expect("an item error");
        assert_eq!(correlation.as_deref(), Some("c"));
        assert_eq!(item.status, 400);
        assert_eq!(item.indices, vec![100, 101]);
        assert_eq!(item.ids, vec!["1"]);
        let retryable = HubSpotError::from_response("batch.update", 503, b"", None, None);
        assert!(chunk_rejection(retryable, vec![0]).is_err());
    }

    #[test]
    fn each_input_has_the_correlation_id_of_its_call() {
        let mut outcome = BatchOutcome::default();
        for (inputs, id) in [
            (0..100, Some("first")),
            (100..150, None),
            (150..151, Some("x")),
        ] {
            outcome.absorb(BatchOutcome {
                calls: vec![BatchCall {
                    inputs,
                    correlation_id: id.map(str::to_owned),
                }],
                ..BatchOutcome::default()
            });
        }
        assert_eq!(outcome.correlation_id(0), Some("first"));
        assert_eq!(outcome.correlation_id(99), Some("first"));
        assert_eq!(outcome.correlation_id(100), None);
        assert_eq!(outcome.correlation_id(150), Some("x"));
        assert_eq!(outcome.correlation_id(151), None);
    }

    #[test]
    fn traces_default_to_the_index() {
        let inputs = vec![
            ObjectInput::new([("a", "1")]),
            ObjectInput {
                object_write_trace_id: Some("mine".into()),
                ..ObjectInput::default()
            },
        ];
        let out = traced(&inputs).expect("encodes");
        assert_eq!(out[0].0["objectWriteTraceId"], "0");
        assert_eq!(out[1].1.trace.as_deref(), Some("mine"));
    }
}
