//! The real `deshpay-server` binary, killed in the middle of Execute and started again on the same database.

use crate::helpers::*;
use deshpay_sandbox::BkashCredentials;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Backend {
    child: Child,
    url: String,
    /// The process's stderr, drained as it comes: a full pipe would block the server's logging.
    logs: std::sync::Arc<std::sync::Mutex<String>>,
}

fn start_binary(app: &TestApp, timeout_ms: u64) -> Backend {
    let creds = BkashCredentials::public_sandbox();
    let mut child = Command::new(env!("CARGO_BIN_EXE_deshpay-server"))
        .env("DESHPAY_SERVER__LISTEN", "127.0.0.1:0")
        .env("DESHPAY_DATABASE__URL", &app.db_url)
        .env("DESHPAY_MERCHANT__API_KEY", API_KEY)
        .env("DESHPAY_BKASH__BASE_URL", app.sandbox.bkash_base_url())
        .env("DESHPAY_BKASH__USERNAME", &creds.username)
        .env("DESHPAY_BKASH__PASSWORD", &creds.password)
        .env("DESHPAY_BKASH__APP_KEY", &creds.app_key)
        .env("DESHPAY_BKASH__APP_SECRET", &creds.app_secret)
        .env("DESHPAY_BKASH__TIMEOUT_MS", timeout_ms.to_string())
        .env("DESHPAY_RECONCILER__INTERVAL_SECS", "1")
        .env("DESHPAY_RECONCILER__STALE_AFTER_SECS", "1")
        .env("RUST_LOG", "debug,hyper=info,reqwest=info,h2=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("deshpay-server binary");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("backend: ").expect("prints its URL").to_owned();
    let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let sink = logs.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    Backend { child, url, logs }
}

fn stop(mut b: Backend) -> String {
    let _ = b.child.kill();
    let _ = b.child.wait();
    std::thread::sleep(Duration::from_millis(100));
    b.logs.lock().unwrap().clone()
}

#[tokio::test]
async fn a_payment_interrupted_by_a_crash_is_resolved_after_restart() {
    let app = spawn_app().await;
    let first = start_binary(&app, 10_000);
    let http = client();
    let r = http
        .post(format!("{}/v1/sessions", first.url))
        .bearer_auth(API_KEY)
        .json(
            &json!({"amount": "210.00", "currency": "BDT", "invoice": "ORD-CRASH", "return_url": "http://shop.test/r"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let r = http.post(format!("{}/v1/checkout/{id}/bkash", first.url)).send().await.unwrap();
    let bkash_url = r.json::<Value>().await.unwrap()["redirect_url"].as_str().unwrap().to_owned();
    let payment_id = query_param(&bkash_url, "paymentID").unwrap();
    let callback = app.pay_on_page(&bkash_url, WALLET, OTP, PIN).await;

    // Execute is slow at bKash; the backend dies while waiting for it.
    app.fault(json!({"endpoint": "execute", "delay_ms": 1500, "process": true})).await;
    let pending = tokio::spawn(async move { client().get(callback).send().await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first_logs = stop(first);
    let _ = pending.await;

    // The restarted process waits until the attempt is stale: two provider timeouts plus the token wait
    // (3 x 2 s + 15 s), so that it never races a callback that is still waiting for bKash.
    let second = start_binary(&app, 2_000);
    let deadline = Instant::now() + Duration::from_secs(45);
    let status = loop {
        let s: Value = http
            .get(format!("{}/v1/sessions/{id}", second.url))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if s["status"] == "paid" || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let second_logs = stop(second);
    assert_eq!(status["status"], "paid", "{status}\n{second_logs}");
    assert_eq!(app.sandbox_payment(&payment_id).await["execute_calls"], 1, "resolved by Query, not a second Execute");
    assert!(app.counters().await["query"].as_i64().unwrap() >= 1);
    assert_eq!(app.counters().await["grant"], 1, "the second process reused the stored token");

    let creds = BkashCredentials::public_sandbox();
    for logs in [&first_logs, &second_logs] {
        assert!(logs.contains("bkash"), "debug logs were captured");
        for secret in [creds.password.as_str(), creds.app_secret.as_str(), API_KEY] {
            assert!(!logs.contains(secret), "a secret leaked into the logs");
        }
    }
}
