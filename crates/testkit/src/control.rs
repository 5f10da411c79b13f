//! A typed client for the sandbox's control endpoints (`/__sandbox/...`, see crates/sandbox/src/control.rs and
//! bestin_control.rs). Only what the suites use is typed; every call asserts a 2xx answer.

use serde_json::{Value, json};

/// Drives one sandbox: approve payments, queue faults, move its clock, read its records.
#[derive(Debug, Clone)]
pub struct SandboxControl {
    base: String,
    http: reqwest::Client,
}

impl SandboxControl {
    /// A client for the sandbox at `base` (e.g. `Sandbox::url()`).
    pub fn new(base: impl Into<String>) -> SandboxControl {
        SandboxControl { base: base.into(), http: reqwest::Client::new() }
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> reqwest::Response {
        let r = request.send().await.unwrap_or_else(|e| panic!("sandbox {what}: {e}"));
        assert!(r.status().is_success(), "sandbox {what}: {}", r.status());
        r
    }

    /// GETs a control path (e.g. `/__sandbox/bkash/counters`) as JSON.
    pub async fn get(&self, path: &str) -> Value {
        self.send(self.http.get(format!("{}{path}", self.base)), path).await.json().await.expect("sandbox JSON")
    }

    async fn post(&self, path: &str, body: Option<&Value>) -> reqwest::Response {
        let mut request = self.http.post(format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request, path).await
    }

    /// bKash call counters (`grant`, `create`, `execute`, ...).
    pub async fn bkash_counters(&self) -> Value {
        self.get("/__sandbox/bkash/counters").await
    }

    /// The sandbox's record of one bKash payment (status, `execute_calls`, ...).
    pub async fn bkash_payment(&self, payment_id: &str) -> Value {
        self.get(&format!("/__sandbox/bkash/payments/{payment_id}")).await
    }

    /// The customer approves a bKash payment with `wallet` (the hosted page's shortcut); returns the
    /// callback URL bKash redirects the browser to.
    pub async fn approve_bkash(&self, payment_id: &str, wallet: &str) -> String {
        let path = format!("/__sandbox/bkash/payments/{payment_id}/approve");
        let r = self.post(&path, Some(&json!({"wallet": wallet}))).await;
        r.json::<Value>().await.expect("approve answer")["redirect_url"].as_str().expect("redirect_url").to_owned()
    }

    /// Queues a bKash fault, e.g. `{"endpoint": "execute", "delay_ms": 1500, "process": true}`.
    pub async fn bkash_fault(&self, fault: &Value) {
        self.post("/__sandbox/bkash/faults", Some(fault)).await;
    }

    /// Drops every queued bKash fault.
    pub async fn clear_bkash_faults(&self) {
        self.send(self.http.delete(format!("{}/__sandbox/bkash/faults", self.base)), "clear faults").await;
    }

    /// Queues a Bestin Pay fault, e.g. `{"endpoint": "notify", "response": "drop", "times": 100}`.
    pub async fn bestin_fault(&self, fault: &Value) {
        self.post("/__sandbox/bestin/faults", Some(fault)).await;
    }

    /// GETs `/__sandbox/bestin/{path}` (`counters`, `balance`, `notifications?trx_id=...`, `payins/{id}`).
    pub async fn bestin(&self, path: &str) -> Value {
        self.get(&format!("/__sandbox/bestin/{path}")).await
    }

    /// Sends a recorded Bestin Pay notification again.
    pub async fn resend_notification(&self, notify_id: &str) {
        self.post(&format!("/__sandbox/bestin/notifications/{notify_id}/resend"), None).await;
    }

    /// Moves the sandbox's clock forward (token and payment expiry on its side).
    pub async fn advance_clock(&self, seconds: i64) {
        self.post("/__sandbox/clock/advance", Some(&json!({"seconds": seconds}))).await;
    }
}
