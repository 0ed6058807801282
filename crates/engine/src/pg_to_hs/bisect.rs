//! Batch calls that survive poison records: one result per input, and a batch HubSpot
//! rejected as a whole is split in halves and retried down to single inputs, so one bad
//! record never blocks the others (lessons 25, 26). Each result carries HubSpot's
//! correlation id of the call that answered it (for the audit log).

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use hubsync_hubspot::{BatchOutcome, HubSpotError, ItemError, SimpleObject};

/// HubSpot's answer for one input.
#[derive(Debug)]
pub(super) struct ItemResult {
    /// The record as HubSpot wrote it, or HubSpot's error.
    pub(super) result: Result<SimpleObject, Box<ItemError>>,
    /// HubSpot's correlation id of the call that answered this input.
    pub(super) correlation_id: Option<String>,
}

/// Per input, in order: HubSpot's answer.
pub(super) type ItemResults = Vec<ItemResult>;

/// HubSpot's message for a rejected record, with its category.
pub(super) fn item_message(e: &ItemError) -> String {
    match &e.category {
        Some(c) => format!("{c}: {}", e.message),
        None => e.message.clone(),
    }
}

/// Sends `inputs` with `call`; if HubSpot rejects the whole batch, sends each half on its
/// own, down to single inputs, so one poison record never blocks the others (lesson 25).
/// Returns one result per input, in order.
pub(super) fn bisect<'f, I: Clone + Send + Sync + 'f>(
    inputs: Vec<I>,
    call: &'f (dyn Fn(Vec<I>) -> BoxFuture<'f, Result<BatchOutcome, HubSpotError>> + Sync),
    key_of: &'f (dyn Fn(&[I], &SimpleObject) -> Option<usize> + Sync),
) -> BoxFuture<'f, Result<ItemResults, HubSpotError>> {
    Box::pin(async move {
        let n = inputs.len();
        let mut outcome = call(inputs.clone()).await?;
        let whole =
            outcome.results.is_empty() && outcome.errors.iter().any(|e| e.indices.len() == n);
        if n > 1 && whole {
            let mut left = inputs;
            let right = left.split_off(n / 2);
            let mut out = bisect(left, call, key_of).await?;
            out.extend(bisect(right, call, key_of).await?);
            return Ok(out);
        }
        let mut out: Vec<Option<Result<SimpleObject, Box<ItemError>>>> =
            (0..n).map(|_| None).collect();
        for e in &outcome.errors {
            for &i in &e.indices {
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(Err(Box::new(e.clone())));
                }
            }
        }
        for r in std::mem::take(&mut outcome.results) {
            let index = r
                .object_write_trace_id
                .as_deref()
                .and_then(|t| t.parse::<usize>().ok())
                .filter(|i| *i < n)
                .or_else(|| key_of(&inputs, &r));
            if let Some(slot) = index.and_then(|i| out.get_mut(i)) {
                *slot = Some(Ok(r));
            }
        }
        Ok(out
            .into_iter()
            .enumerate()
            .map(|(i, r)| ItemResult {
                correlation_id: outcome.correlation_id(i).map(str::to_owned),
                result: r.unwrap_or_else(|| {
                    Err(Box::new(ItemError {
                        status: 500,
                        category: None,
                        sub_category: None,
                        message: "HubSpot returned neither a result nor an error for this record"
                            .to_owned(),
                        context: BTreeMap::new(),
                        indices: Vec::new(),
                        ids: Vec::new(),
                    }))
                }),
            })
            .collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubsync_hubspot::batch::BatchCall;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn record(id: u64, trace: usize) -> SimpleObject {
        serde_json::from_value(serde_json::json!({
            "id": id.to_string(), "properties": {},
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
            "objectWriteTraceId": trace.to_string(),
        }))
        .unwrap_or_else(|e| panic!("record json: {e}"))
    }

    /// A batch holding the poison input is rejected whole (as HubSpot does with a 400 when
    /// inputs carry no trace ids); bisecting isolates it and the others go through.
    #[tokio::test]
    async fn a_poison_input_is_isolated_by_bisecting() {
        let calls = AtomicUsize::new(0);
        let call = |inputs: Vec<u64>| -> BoxFuture<'_, Result<BatchOutcome, HubSpotError>> {
            calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                let mut out = BatchOutcome::default();
                out.calls.push(BatchCall {
                    inputs: 0..inputs.len(),
                    correlation_id: Some(format!("call-{}-{}", inputs[0], inputs.len())),
                });
                if inputs.contains(&13) {
                    out.errors.push(ItemError {
                        status: 400,
                        category: Some("VALIDATION_ERROR".into()),
                        sub_category: None,
                        message: "Property values were not valid".into(),
                        context: BTreeMap::new(),
                        indices: (0..inputs.len()).collect(),
                        ids: Vec::new(),
                    });
                } else {
                    out.results = inputs
                        .iter()
                        .enumerate()
                        .map(|(i, id)| record(*id, i))
                        .collect();
                }
                Ok(out)
            })
        };
        let key_of = |_: &[u64], _: &SimpleObject| None;
        let inputs: Vec<u64> = (0..20).collect();
        let results = bisect(inputs, &call, &key_of).await.unwrap_or_default();
        assert_eq!(results.len(), 20);
        for (i, r) in results.iter().enumerate() {
            match &r.result {
                Ok(rec) => {
                    assert_eq!(rec.id, i as u64);
                    assert!(
                        r.correlation_id
                            .as_deref()
                            .is_some_and(|c| c.starts_with("call-")),
                        "the answering call's id: {:?}",
                        r.correlation_id
                    );
                }
                Err(e) => {
                    assert_eq!(i, 13);
                    assert!(e.message.contains("not valid"));
                }
            }
        }
        assert_eq!(results.iter().filter(|r| r.result.is_err()).count(), 1);
        assert!(
            calls.load(Ordering::SeqCst) <= 11,
            "log2 splitting, not one call per input"
        );
    }
}
