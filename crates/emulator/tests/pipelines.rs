//! Pipelines and stages over HTTP (`/crm/v3/pipelines/{deals|tickets}`, hubspot-api.md §13), and
//! deal-stage validation against them (§16.11).

use serde_json::json;

use crate::emulator_kit::{Calls, start_unlimited};

#[tokio::test]
async fn default_pipelines_are_listed_with_string_metadata() {
    let live = start_unlimited().await;
    let (status, body) = live.json("GET", "/crm/v3/pipelines/deals", None).await;
    assert_eq!(status, 200);
    let sales = &body["results"][0];
    assert_eq!(sales["id"], "default");
    let stages = sales["stages"].as_array().cloned().unwrap_or_default();
    let won = stages
        .iter()
        .find(|s| s["id"] == "closedwon")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        won["metadata"],
        json!({"isClosed": "true", "probability": "1.0"})
    );
    let (status, body) = live
        .json("GET", "/crm/v3/pipelines/0-5/0/stages", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["results"][0]["metadata"]["ticketState"], "OPEN");
    assert_eq!(
        live.json("GET", "/crm/v3/pipelines/contacts", None).await.0,
        400
    );
}

#[tokio::test]
async fn created_pipelines_and_stages_validate_deal_writes() {
    let live = start_unlimited().await;
    let pipeline = json!({"label": "Renewals", "displayOrder": 1,
        "stages": [{"label": "Up for renewal", "displayOrder": 0, "metadata": {"probability": 0.5}}]});
    let (status, created) = live
        .json("POST", "/crm/v3/pipelines/deals", Some(pipeline))
        .await;
    assert_eq!(status, 201, "{created}");
    let pipeline_id = created["id"].as_str().unwrap_or_default().to_owned();
    let stage_id = created["stages"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(created["stages"][0]["metadata"]["probability"], "0.5");

    let deal = json!({"dealname": "Renewal", "pipeline": pipeline_id, "dealstage": stage_id});
    let (status, body) = live
        .json(
            "POST",
            "/crm/v3/objects/deals",
            Some(json!({"properties": deal})),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let stage = json!({"label": "Renewed", "metadata": {"isClosed": "true", "probability": "1.0"}});
    let path = format!("/crm/v3/pipelines/deals/{pipeline_id}/stages");
    let (status, added) = live.json("POST", &path, Some(stage)).await;
    assert_eq!(status, 201);
    let added_id = added["id"].as_str().unwrap_or_default().to_owned();
    let (status, patched) = live
        .json(
            "PATCH",
            &format!("{path}/{added_id}"),
            Some(json!({"label": "Done"})),
        )
        .await;
    assert_eq!((status, patched["label"].clone()), (200, json!("Done")));
    assert_eq!(
        live.json("DELETE", &format!("{path}/{added_id}"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        live.json("GET", &format!("{path}/{added_id}"), None)
            .await
            .0,
        404
    );

    let bad = json!({"dealname": "Wrong", "pipeline": "default", "dealstage": stage_id});
    let (status, body) = live
        .json(
            "POST",
            "/crm/v3/objects/deals",
            Some(json!({"properties": bad})),
        )
        .await;
    assert_eq!(
        status, 400,
        "a stage of another pipeline is refused: {body}"
    );
}

#[tokio::test]
async fn put_replaces_a_pipeline_and_a_stage() {
    let live = start_unlimited().await;
    let pipeline = json!({"label": "Old", "stages": [{"label": "A", "metadata": {}}]});
    let (_, created) = live
        .json("POST", "/crm/v3/pipelines/tickets", Some(pipeline))
        .await;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let old_stage = created["stages"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let stage_path = format!("/crm/v3/pipelines/tickets/{id}/stages/{old_stage}");
    let (status, stage) = live
        .json(
            "PUT",
            &stage_path,
            Some(json!({"label": "A2", "displayOrder": 3})),
        )
        .await;
    assert_eq!(status, 200, "{stage}");
    assert_eq!(
        (stage["label"].clone(), stage["metadata"].clone()),
        (json!("A2"), json!({}))
    );
    assert_eq!(
        live.json("PUT", &stage_path, Some(json!({"displayOrder": 1})))
            .await
            .0,
        400
    );

    let replacement = json!({"label": "New", "displayOrder": 2,
        "stages": [{"label": "B", "metadata": {"ticketState": "OPEN"}}, {"label": "C", "metadata": {}}]});
    let (status, replaced) = live
        .json(
            "PUT",
            &format!("/crm/v3/pipelines/tickets/{id}"),
            Some(replacement),
        )
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["label"], "New");
    let stages = replaced["stages"].as_array().cloned().unwrap_or_default();
    assert_eq!(stages.len(), 2);
    assert!(stages.iter().all(|s| s["id"] != json!(old_stage)));
    assert_eq!(live.json("GET", &stage_path, None).await.0, 404);
}
