//! The shared bKash token: one grant serves every customer; refresh before expiry; grant again only when needed.

use crate::helpers::*;
use deshpay_server::clock::Clock;
use serde_json::json;

#[tokio::test]
async fn one_token_serves_many_payments() {
    let app = spawn_app().await;
    for _ in 0..5 {
        let (_, _, back) = app.pay("10.00", WALLET).await;
        assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("paid"));
        app.advance(301).await; // keep the sandbox's duplicate guard out of the way
    }
    let c = app.counters().await;
    assert_eq!(c["grant"], 1, "{c}");
    assert_eq!(c["refresh"], 0, "25 minutes is well inside the hour: {c}");
}

#[tokio::test]
async fn concurrent_first_callers_wait_for_one_grant() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..15 {
        ids.push(app.create_session("10.00").await);
    }
    let starts = ids.iter().map(|id| app.http.post(format!("{}/v1/checkout/{id}/bkash", app.url)).send());
    for r in futures::future::join_all(starts).await {
        assert_eq!(r.unwrap().status(), 201);
    }
    let c = app.counters().await;
    assert_eq!(c["grant"], 1, "{c}");
    assert_eq!(c["create"], 15);
}

#[tokio::test]
async fn the_token_is_refreshed_before_expiry_and_regranted_when_the_refresh_token_ages() {
    let app = spawn_app().await;
    app.pay("10.00", WALLET).await;
    app.advance(3600 - 299).await;
    app.start_bkash(&app.create_session("10.00").await).await;
    let c = app.counters().await;
    assert_eq!((c["grant"].as_i64(), c["refresh"].as_i64()), (Some(1), Some(1)), "{c}");

    // Past the refresh_token's 28 days (less a day of safety): a new grant, not a refresh.
    app.advance(27 * 24 * 3600).await;
    app.start_bkash(&app.create_session("10.00").await).await;
    let c = app.counters().await;
    assert_eq!((c["grant"].as_i64(), c["refresh"].as_i64()), (Some(2), Some(1)), "{c}");
}

#[tokio::test]
async fn a_restart_reuses_the_stored_token() {
    let app = spawn_app().await;
    app.pay("10.00", WALLET).await;
    let settings = sandbox_settings(&app.sandbox, &app.db_url);
    let (url, _) = start_backend(settings, Clock::system()).await;
    let r =
        app.http.post(format!("{url}/v1/checkout/{}/bkash", app.create_session("11.00").await)).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(app.counters().await["grant"], 1);
}

#[tokio::test]
async fn a_rejected_token_is_renewed_once_and_the_call_succeeds() {
    let app = spawn_app().await;
    app.start_bkash(&app.create_session("10.00").await).await;
    app.fault(json!({"endpoint": "create", "response": "message", "status": 401, "message": "Unauthorized", "process": false}))
        .await;
    app.start_bkash(&app.create_session("10.00").await).await;
    let c = app.counters().await;
    assert_eq!(c["create"], 3, "{c}");
    assert_eq!(c["refresh"], 1, "renewed by refresh, not a new grant: {c}");
    assert_eq!(c["grant"], 1);
}

#[tokio::test]
async fn when_bkash_refuses_grants_the_backend_reports_unavailable_without_hammering() {
    let app = spawn_app().await;
    app.fault(json!({"endpoint": "grant", "response": "message", "status": 429, "message": "Too Many Requests", "process": false, "times": 1}))
        .await;
    let id = app.create_session("10.00").await;
    let r = app.http.post(format!("{}/v1/checkout/{id}/bkash", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(body.contains("provider_unavailable"), "{body}");
    assert_eq!(app.counters().await["grant"], 1, "one grant call per request, no retry loop");
}
