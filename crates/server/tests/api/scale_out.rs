//! Several backend instances on one store and one sandbox: one shared token, exactly-once execute and refunds
//! under duplicate callbacks that land on different instances. Runs on PostgreSQL when DESHPAY_TEST_POSTGRES is
//! set (as CI does), else on one SQLite file shared by the instances.

use crate::helpers::*;
use deshpay_sandbox::{Sandbox, SandboxConfig};
use deshpay_server::clock::Clock;
use serde_json::{Value, json};
use std::sync::Arc;

struct Cluster {
    _sandbox: Sandbox,
    control: SandboxControl,
    instances: Vec<String>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

async fn cluster(n: usize) -> Cluster {
    let sandbox = Sandbox::spawn(SandboxConfig::default()).await.expect("sandbox");
    let dir = tempfile::tempdir().unwrap();
    let (db_url, pg) = test_database(dir.path()).await;
    let mut instances = Vec::new();
    for _ in 0..n {
        let mut settings = sandbox_settings(&sandbox, &db_url);
        settings.bkash.timeout_ms = 20_000;
        // A load test from one address: the per-IP limit would (rightly) refuse it.
        settings.limits.ip_burst = 100_000;
        let (url, _) = start_backend(settings, Clock::system()).await;
        instances.push(url);
    }
    let control = SandboxControl::new(sandbox.url());
    Cluster { _sandbox: sandbox, control, instances, http: client(), _dir: dir, _pg: pg }
}

impl Cluster {
    fn any(&self, salt: usize) -> &str {
        // A cheap spread over instances that differs per call site.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as usize;
        &self.instances[(nanos / 1000 + salt) % self.instances.len()]
    }

    async fn session(&self, instance: &str, id: &str) -> Value {
        let r = self.http.get(format!("{instance}/v1/sessions/{id}")).bearer_auth(API_KEY).send().await.unwrap();
        r.json().await.unwrap()
    }

    /// One customer: session, start, approval at bKash, and the callback delivered twice to two instances.
    async fn pay_once(&self, i: usize) -> (String, String) {
        let r = self
            .http
            .post(format!("{}/v1/sessions", self.any(i)))
            .bearer_auth(API_KEY)
            .json(&json!({"amount": format!("{}.00", 10 + i), "currency": "BDT", "invoice": format!("SCALE-{i}-{}", rand_suffix()),
                          "return_url": "http://shop.test/r"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        let r = self.http.post(format!("{}/v1/checkout/{id}/bkash", self.any(i + 1))).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        let url = r.json::<Value>().await.unwrap()["redirect_url"].as_str().unwrap().to_owned();
        let payment_id = query_param(&url, "paymentID").unwrap();
        // Each customer uses a wallet and amount of their own, so bKash's duplicate guard stays out of the way.
        let callback = self.control.approve_bkash(&payment_id, WALLET).await;
        let path = callback.split_once("/v1/bkash/callback").unwrap().1.to_owned();
        let a = self.http.get(format!("{}/v1/bkash/callback{path}", self.instances[i % self.instances.len()])).send();
        let b =
            self.http.get(format!("{}/v1/bkash/callback{path}", self.instances[(i + 1) % self.instances.len()])).send();
        let (a, b) = tokio::join!(a, b);
        assert_eq!(a.unwrap().status(), 303);
        assert_eq!(b.unwrap().status(), 303);
        (id, payment_id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_pay_two_hundred_sessions_exactly_once_with_one_grant() {
    let cluster = Arc::new(cluster(3).await);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let c = cluster.clone();
            tokio::spawn(async move { c.pay_once(i).await })
        })
        .collect();
    let mut paid = Vec::new();
    for t in tasks {
        paid.push(t.await.expect("payment task"));
    }
    // A duplicate that lost the claim may redirect while the winner is still executing: wait for the outcomes.
    for (id, payment_id) in &paid {
        let status = eventually(WAIT, || async {
            let status = cluster.session(cluster.any(0), id).await;
            if status["status"] == "paid" { Ok(status) } else { Err(format!("not paid: {status}")) }
        })
        .await;
        assert_eq!(status["status"], "paid", "{status}");
        assert_eq!(status["payment"]["payment_id"], payment_id.as_str(), "no record lost");
        let p = cluster.control.bkash_payment(payment_id).await;
        assert_eq!(p["execute_calls"], 1, "{payment_id} executed once");
    }
    let counters = cluster.control.bkash_counters().await;
    assert_eq!(counters["execute"], 200, "{counters}");
    assert_eq!(counters["grant"], 1, "one grant for all instances: {counters}");
    assert_eq!(counters["create"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refunds_on_different_instances_never_exceed_the_payment() {
    let cluster = Arc::new(cluster(3).await);
    let (id, _) = cluster.pay_once(7).await;
    let paid = eventually(WAIT, || async {
        let paid = cluster.session(&cluster.instances[0], &id).await;
        if paid["status"] == "paid" { Ok(paid) } else { Err(format!("not paid: {paid}")) }
    })
    .await;
    assert_eq!(paid["amount"], "17.00");
    let refunds = (0..9).map(|i| {
        let c = cluster.clone();
        let id = id.clone();
        async move {
            c.http
                .post(format!("{}/v1/sessions/{id}/refunds", c.instances[i % 3]))
                .bearer_auth(API_KEY)
                .json(&json!({"amount": "10.00"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(refunds).await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 8, "{statuses:?}");
    let counters = cluster.control.bkash_counters().await;
    assert_eq!(counters["refund"], 1, "{counters}");
}
