//! `deshpay-bench` (run by `cargo xtask bench`): prints and writes the benchmark figures.
//!
//! 1. Widget transfer size: wasm, JS glue, loader (CSS is inside the wasm), raw / gzip -9 / shipped .gz / .br.
//! 2. Time from navigation start to `deshpay:ready` in headless Chromium, cache disabled, median of several
//!    runs, without and with 4x CPU throttling; and from the tap on "Pay with UPI" to the QR code.
//! 3. Backend load: complete bKash journeys per second (session, start, approval at the sandbox, callback),
//!    latency percentiles of the backend's endpoints, for SQLite and PostgreSQL with 1 and 3 instances; the
//!    backend's added latency over calling the sandbox directly; the backend's peak memory (VmHWM).
//!
//! Needs release binaries of deshpay-server and deshpay-sandbox (`cargo xtask bench` builds them) and the
//! built widget in pkg/. Writes target/bench/report.md.
//!
//! `--widget` (`cargo xtask bench --widget`) measures only the widget: sizes, page load (with where its time
//! goes) and the tap on "Pay with UPI"; no backend load, so no release backend or sandbox binaries are needed.

use anyhow::{Context, Result, bail};
use deshpay_e2e::{API_KEY, Browser, Device, Stack, root};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const READY_RUNS: usize = 7;
const JOURNEYS: u64 = 400;
const CONCURRENCY: usize = 16;

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(run())
}

async fn run() -> Result<()> {
    let widget_only = std::env::args().skip(1).any(|a| a == "--widget");
    let mut report = String::from("# DeshPay benchmark figures\n\n");
    let _ = writeln!(
        report,
        "Machine: {} cores. Command: `cargo xtask bench{}`.\n",
        std::thread::available_parallelism()?.get(),
        std::env::args().skip(1).map(|a| format!(" {a}")).collect::<String>()
    );
    // `--backend` (the binary's flag; `cargo xtask bench` builds the release backend for it) skips the widget.
    let backend_only = std::env::args().skip(1).any(|a| a == "--backend");
    if !backend_only {
        widget_sizes(&mut report)?;
        ready_times(&mut report).await?;
    }
    if !widget_only {
        backend_load(&mut report).await?;
    }
    println!("\n{report}");
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("report.md"), &report)?;
    println!("written to {}", dir.join("report.md").display());
    Ok(())
}

fn gzip(bytes: &[u8]) -> Result<usize> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes)?;
    Ok(e.finish()?.len())
}

fn kb(n: usize) -> String {
    format!("{:.1} KB", n as f64 / 1024.0)
}

fn widget_sizes(report: &mut String) -> Result<()> {
    let pkg = root().join("pkg");
    let read = |name: &str| -> Result<Vec<u8>> {
        std::fs::read(pkg.join(name)).with_context(|| format!("pkg/{name} missing: run cargo xtask build"))
    };
    report.push_str("## Widget transfer size\n\nEverything loaded before the first interaction (the CSS is compiled into the wasm; ");
    report.push_str(
        "Bengali and Hindi add their texts file; `split_upi.wasm`, the UPI screen's module, is loaded after the ",
    );
    report.push_str("first screen only when the session offers UPI). `.gz` and `.br` are the precompressed files `cargo xtask build` ships ");
    report.push_str(
        "in pkg/ (zopfli, brotli 11) and the demo shop sends; gzip -9 is what a server compressing on the fly at its ",
    );
    report.push_str("best level would send. Bytes.\n\n");
    report.push_str("| file | raw | gzip -9 | shipped .gz | shipped .br |\n|---|---:|---:|---:|---:|\n");
    let mut sizes = Vec::new();
    let files = [
        "deshpay_widget_bg.wasm",
        "deshpay_widget.js",
        "deshpay.js",
        "deshpay-bn.json",
        "deshpay-hi.json",
        "split_upi.wasm",
    ];
    for f in files {
        let bytes = read(f)?;
        let row = [bytes.len(), gzip(&bytes)?, read(&format!("{f}.gz"))?.len(), read(&format!("{f}.br"))?.len()];
        let _ = writeln!(report, "| {f} | {} | {} | {} | {} |", row[0], row[1], row[2], row[3]);
        sizes.push(row);
    }
    let add = |a: [usize; 4], b: [usize; 4]| [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]];
    let english = sizes[..3].iter().fold([0; 4], |a, b| add(a, *b));
    for (locale, total) in [("en", english), ("bn", add(english, sizes[3])), ("hi", add(english, sizes[4]))] {
        let _ = writeln!(
            report,
            "| **total, {locale}** | {} | {} | **{} ({})** | {} |",
            total[0],
            total[1],
            total[2],
            kb(total[2]),
            total[3]
        );
    }
    let _ = writeln!(
        report,
        "\nBudget before the first interaction, English: 85 KB (87,040 B) shipped .gz, 72 KB (73,728 B) shipped .br. \
         Shipped .gz {} B (headroom {} B), .br {} B (headroom {} B); with gzip -9 on the fly it would be {} B. \
         The UPI path adds {} B .gz, {} B .br.\n",
        english[2],
        87_040i64 - english[2] as i64,
        english[3],
        73_728i64 - english[3] as i64,
        english[1],
        sizes[5][2],
        sizes[5][3]
    );
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

async fn create_session(stack: &Stack, i: usize) -> Result<String> {
    create_session_for(stack, i, "BDT", "bkash").await
}

async fn create_session_for(stack: &Stack, i: usize, currency: &str, method: &str) -> Result<String> {
    let r: Value = reqwest::Client::new()
        .post(format!("{}/v1/sessions", stack.backend))
        .bearer_auth(API_KEY)
        .json(&json!({"amount": "250.00", "currency": currency,
                      "invoice": format!("BENCH-{method}-{i}-{}", std::process::id()),
                      "return_url": format!("{}/return", stack.shop), "methods": [method]}))
        .send()
        .await?
        .json()
        .await?;
    Ok(r["id"].as_str().context("session id")?.to_owned())
}

async fn ready_ms(browser: &Browser, stack: &Stack, i: usize) -> Result<f64> {
    let id = create_session(stack, i).await?;
    ready_at(browser, stack, &id).await
}

async fn ready_at(browser: &Browser, stack: &Stack, id: &str) -> Result<f64> {
    browser.goto(&format!("{}/checkout/{id}", stack.shop)).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = browser
            .client
            .execute(
                "const e = (window.deshpayEvents || []).find(e => e.type === 'deshpay:ready'); return e ? e.at : null;",
                vec![],
            )
            .await?;
        if let Some(at) = v.as_f64() {
            return Ok(at);
        }
        if Instant::now() > deadline {
            bail!("deshpay:ready never fired");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Moments of one page load, ms since navigation start, from the page's navigation and resource timing:
/// what arrived when, and when the widget asked for the session (it does once mounted, i.e. once the wasm is
/// compiled, instantiated and has rendered "Loading").
const PHASES: [(&str, &str); 8] = [
    ("page HTML received", "performance.getEntriesByType('navigation')[0].responseEnd"),
    ("loader `deshpay.js` received", "end('/deshpay.js')"),
    ("glue `deshpay_widget.js` received", "end('/deshpay_widget.js')"),
    ("wasm requested", "start('/deshpay_widget_bg.wasm')"),
    ("wasm received", "end('/deshpay_widget_bg.wasm')"),
    ("session requested (widget mounted)", "start('/v1/checkout/')"),
    ("session received", "end('/v1/checkout/')"),
    ("`deshpay:ready`", "window.deshpayEvents.find((e) => e.type === 'deshpay:ready').at"),
];

/// [`PHASES`] of the page just loaded (NaN for what it did not load).
async fn phases(browser: &Browser) -> Result<Vec<f64>> {
    let script = format!(
        "const r = performance.getEntriesByType('resource'); \
         const find = (p) => r.find((e) => e.name.includes(p)); \
         const start = (p) => find(p)?.startTime ?? null; const end = (p) => find(p)?.responseEnd ?? null; \
         return [{}];",
        PHASES.iter().map(|(_, js)| *js).collect::<Vec<_>>().join(", ")
    );
    let v = browser.client.execute(&script, vec![]).await?;
    Ok(v.as_array().context("phases")?.iter().map(|t| t.as_f64().unwrap_or(f64::NAN)).collect())
}

async fn ready_times(report: &mut String) -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start(Device::Desktop).await?;
    browser.cdp("Network.enable", json!({})).await?;
    browser.cdp("Network.setCacheDisabled", json!({"cacheDisabled": true})).await?;
    report.push_str("## Page load to `deshpay:ready`\n\nHeadless Chromium, localhost, HTTP cache disabled; ");
    let _ = writeln!(
        report,
        "median of {READY_RUNS} runs (ms since navigation start).\n\n| CPU | median | min | max |\n|---|---:|---:|---:|"
    );
    // Per rate, per phase: the runs' times.
    let mut moments = Vec::new();
    for rate in [1, 4] {
        browser.cdp("Emulation.setCPUThrottlingRate", json!({"rate": rate})).await?;
        let mut times = Vec::new();
        let mut runs = vec![Vec::new(); PHASES.len()];
        for i in 0..READY_RUNS {
            times.push(ready_ms(&browser, &stack, i + rate * 100).await?);
            for (phase, t) in runs.iter_mut().zip(phases(&browser).await?) {
                phase.push(t);
            }
        }
        moments.push(runs);
        let (min, max) = (times.iter().copied().fold(f64::MAX, f64::min), times.iter().copied().fold(0.0, f64::max));
        let label = if rate == 1 { "unthrottled".to_owned() } else { format!("{rate}x throttled") };
        let _ = writeln!(report, "| {label} | {:.0} | {min:.0} | {max:.0} |", median(times));
    }
    report.push_str(
        "\nWhere the time goes: median moment of each step of the same runs (ms since navigation start; the \
         session is requested once the wasm is compiled, instantiated and mounted).\n\n\
         | step | unthrottled | 4x throttled |\n|---|---:|---:|\n",
    );
    for (i, (name, _)) in PHASES.iter().enumerate() {
        let _ = writeln!(
            report,
            "| {name} | {:.0} | {:.0} |",
            median(moments[0][i].clone()),
            median(moments[1][i].clone())
        );
    }
    report.push('\n');
    upi_tap_times(&browser, &stack, report).await?;
    Ok(())
}

/// Time from the tap on "Pay with UPI" to the QR code in the widget, measured in the page: the UPI module's
/// download (unless the prefetch after `deshpay:ready` has it already), the backend's start of the payin and
/// the rendering. The tap comes right at `deshpay:ready`, the worst case for the prefetch.
async fn upi_tap_ms(browser: &Browser, stack: &Stack, i: usize) -> Result<f64> {
    let id = create_session_for(stack, i, "INR", "upi").await?;
    ready_at(browser, stack, &id).await?;
    let script = r#"
        const done = arguments[arguments.length - 1];
        const root = document.querySelector('[data-deshpay-host]').shadowRoot;
        const button = [...root.querySelectorAll('button')].find((b) => b.textContent.includes('Pay with UPI'));
        const start = performance.now();
        button.click();
        const check = () => root.querySelector('[data-testid=deshpay-qr]')
          ? done(performance.now() - start) : requestAnimationFrame(check);
        check();
    "#;
    browser.client.execute_async(script, vec![]).await?.as_f64().context("tap to QR code: no time")
}

async fn upi_tap_times(browser: &Browser, stack: &Stack, report: &mut String) -> Result<()> {
    let _ = writeln!(
        report,
        "## Tap on \"Pay with UPI\" to the QR code\n\nSame browser; median of {READY_RUNS} runs (ms), the UPI \
         module loaded on demand.\n\n| CPU | median | min | max |\n|---|---:|---:|---:|"
    );
    for rate in [1, 4] {
        browser.cdp("Emulation.setCPUThrottlingRate", json!({"rate": rate})).await?;
        let mut times = Vec::new();
        for i in 0..READY_RUNS {
            times.push(upi_tap_ms(browser, stack, i + rate * 100).await?);
        }
        let (min, max) = (times.iter().copied().fold(f64::MAX, f64::min), times.iter().copied().fold(0.0, f64::max));
        let label = if rate == 1 { "unthrottled".to_owned() } else { format!("{rate}x throttled") };
        let _ = writeln!(report, "| {label} | {:.0} | {min:.0} | {max:.0} |", median(times));
    }
    browser.cdp("Emulation.setCPUThrottlingRate", json!({"rate": 1})).await?;
    report.push('\n');
    Ok(())
}

// ----- backend load -----

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn release_bin(name: &str) -> PathBuf {
    let dir = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target"));
    dir.join("release").join(name)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_port(port: u16) -> Result<()> {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("nothing listens on {port}")
}

/// CPU time (user + system) a process has used so far, in ms ("self" for this one).
fn cpu_ms(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: f64 = rest.split_whitespace().skip(11).take(2).filter_map(|t| t.parse::<f64>().ok()).sum();
    ticks * 10.0 // USER_HZ is 100 on Linux
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

async fn start_backend(db_url: &str, sandbox: &str) -> Result<(Proc, String)> {
    let port = free_port()?;
    let child = Command::new(release_bin("deshpay-server"))
        .env("DESHPAY_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("DESHPAY_DATABASE__URL", db_url)
        .env("DESHPAY_DATABASE__MAX_CONNECTIONS", "8")
        .env("DESHPAY_MERCHANT__API_KEY", API_KEY)
        .env("DESHPAY_BKASH__BASE_URL", format!("{sandbox}/v1.2.0-beta"))
        .env("DESHPAY_BKASH__USERNAME", "sandboxTokenizedUser02")
        .env("DESHPAY_BKASH__PASSWORD", "sandboxTokenizedUser02@12345")
        .env("DESHPAY_BKASH__APP_KEY", "4f6o0cjiki2rfm34kfdadl1eqq")
        .env("DESHPAY_BKASH__APP_SECRET", "2is7hdktrekvrbljjh44ll3d9l1dtjo4pasmjvs5vl5qr3fug4b")
        // Every client of the load test has one address: lift the per-IP limit of payment starts.
        .env("DESHPAY_LIMITS__IP_BURST", "1000000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("release deshpay-server (cargo xtask bench builds it)")?;
    wait_port(port).await?;
    Ok((Proc(child), format!("http://127.0.0.1:{port}")))
}

#[derive(Default)]
struct Latencies {
    create: Vec<f64>,
    start: Vec<f64>,
    callback: Vec<f64>,
    view: Vec<f64>,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

static AMOUNT: AtomicU64 = AtomicU64::new(1000);

/// One complete journey against the backend(s); returns the four latencies in ms.
async fn journey(http: &reqwest::Client, backends: &[String], sandbox: &str, i: usize) -> Result<[f64; 4]> {
    let b = |k: usize| &backends[(i + k) % backends.len()];
    // Unique amounts keep the sandbox's 5-minute duplicate guard out of the way.
    let amount = AMOUNT.fetch_add(1, Ordering::SeqCst);
    let t = Instant::now();
    let s: Value = http
        .post(format!("{}/v1/sessions", b(0)))
        .bearer_auth(API_KEY)
        .json(&json!({"amount": format!("{amount}.00"), "currency": "BDT", "invoice": format!("LOAD-{amount}"),
                      "return_url": "http://shop.test/r"}))
        .send()
        .await?
        .json()
        .await?;
    let create = t.elapsed().as_secs_f64() * 1000.0;
    let id = s["id"].as_str().context("session")?.to_owned();
    let t = Instant::now();
    let r: Value = http.post(format!("{}/v1/checkout/{id}/bkash", b(1))).send().await?.json().await?;
    let start = t.elapsed().as_secs_f64() * 1000.0;
    let url = r["redirect_url"].as_str().context("redirect_url")?;
    let payment_id = url.split("paymentID=").nth(1).and_then(|s| s.split('&').next()).context("paymentID")?;
    let approved: Value = http
        .post(format!("{sandbox}/__sandbox/bkash/payments/{payment_id}/approve"))
        .json(&json!({"wallet": "01770618575"}))
        .send()
        .await?
        .json()
        .await?;
    let callback = approved["redirect_url"].as_str().context("approve")?;
    let path = callback.split_once("/v1/bkash/callback").context("callback path")?.1;
    let t = Instant::now();
    let r = http.get(format!("{}/v1/bkash/callback{path}", b(2))).send().await?;
    let callback_ms = t.elapsed().as_secs_f64() * 1000.0;
    let to = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if !to.contains("deshpay_status=paid") {
        bail!("journey {i} ended {to}");
    }
    let t = Instant::now();
    let v: Value = http.get(format!("{}/v1/checkout/{id}", b(0))).send().await?.json().await?;
    let view = t.elapsed().as_secs_f64() * 1000.0;
    if v["status"] != "paid" {
        bail!("session {id} not paid");
    }
    Ok([create, start, callback_ms, view])
}

async fn load(backends: Vec<String>, sandbox: &str) -> Result<(f64, Latencies, u64)> {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    // Warm up: the first call grants the token.
    journey(&http, &backends, sandbox, 0).await?;
    let backends = Arc::new(backends);
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (http, backends, next, failures, sandbox) =
            (http.clone(), backends.clone(), next.clone(), failures.clone(), sandbox.to_owned());
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= JOURNEYS {
                    break;
                }
                match journey(&http, &backends, &sandbox, i as usize).await {
                    Ok(l) => mine.push(l),
                    Err(e) => {
                        eprintln!("journey failed: {e:#}");
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            mine
        }));
    }
    let mut lat = Latencies::default();
    let mut done = 0u64;
    for w in workers {
        for [c, s, cb, v] in w.await? {
            lat.create.push(c);
            lat.start.push(s);
            lat.callback.push(cb);
            lat.view.push(v);
            done += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok((done as f64 / elapsed, lat, failures.load(Ordering::SeqCst)))
}

/// Start + callback latency through the backend with one client: what the backend adds to the provider calls.
async fn sequential(backends: &[String], sandbox: &str) -> Result<Vec<f64>> {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let mut out = Vec::new();
    for i in 0..100 {
        let [_, start, callback, _] = journey(&http, backends, sandbox, i).await?;
        out.push(start + callback);
    }
    Ok(out)
}

/// The same provider calls made directly against the sandbox (create + approve + execute), for the ratio.
async fn direct(sandbox: &str) -> Result<f64> {
    let http = reqwest::Client::new();
    let base = format!("{sandbox}/v1.2.0-beta/tokenized/checkout");
    let grant: Value = http
        .post(format!("{base}/token/grant"))
        .header("username", "sandboxTokenizedUser02")
        .header("password", "sandboxTokenizedUser02@12345")
        .json(&json!({"app_key": "4f6o0cjiki2rfm34kfdadl1eqq", "app_secret": "2is7hdktrekvrbljjh44ll3d9l1dtjo4pasmjvs5vl5qr3fug4b"}))
        .send()
        .await?
        .json()
        .await?;
    let token = grant["id_token"].as_str().context("grant")?.to_owned();
    let mut total = Vec::new();
    for _ in 0..100 {
        let amount = AMOUNT.fetch_add(1, Ordering::SeqCst);
        let t = Instant::now();
        let created: Value = http
            .post(format!("{base}/create"))
            .header("authorization", &token)
            .header("x-app-key", "4f6o0cjiki2rfm34kfdadl1eqq")
            .json(&json!({"mode": "0011", "payerReference": " ", "callbackURL": "http://shop.test/cb", "amount": format!("{amount}.00"),
                          "currency": "BDT", "intent": "sale", "merchantInvoiceNumber": format!("DIRECT-{amount}")}))
            .send()
            .await?
            .json()
            .await?;
        let mut ms = t.elapsed().as_secs_f64() * 1000.0;
        let payment_id = created["paymentID"].as_str().context("create")?.to_owned();
        http.post(format!("{sandbox}/__sandbox/bkash/payments/{payment_id}/approve")).json(&json!({})).send().await?;
        let t = Instant::now();
        let executed: Value = http
            .post(format!("{base}/execute"))
            .header("authorization", &token)
            .header("x-app-key", "4f6o0cjiki2rfm34kfdadl1eqq")
            .json(&json!({"paymentID": payment_id}))
            .send()
            .await?
            .json()
            .await?;
        ms += t.elapsed().as_secs_f64() * 1000.0;
        if executed["transactionStatus"] != "Completed" {
            bail!("direct execute: {executed}");
        }
        total.push(ms);
    }
    Ok(median(total))
}

async fn fresh_postgres(server: &str) -> Result<String> {
    use sqlx::Connection;
    let name = format!("deshpay_bench_{}", std::process::id() as u64 * 1000 + AMOUNT.fetch_add(1, Ordering::SeqCst));
    let mut conn = sqlx::PgConnection::connect(server).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
    let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

async fn backend_load(report: &mut String) -> Result<()> {
    let sandbox_port = free_port()?;
    let sandbox_proc = Proc(
        Command::new(release_bin("deshpay-sandbox"))
            .args(["--listen", &format!("127.0.0.1:{sandbox_port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("release deshpay-sandbox")?,
    );
    wait_port(sandbox_port).await?;
    let sandbox = format!("http://127.0.0.1:{sandbox_port}");
    let pg_server =
        std::env::var("DESHPAY_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let _ = writeln!(
        report,
        "## Backend load\n\n{JOURNEYS} complete bKash journeys per configuration (create session, start, approval through the \
         sandbox's API, callback with Execute, read the view), {CONCURRENCY} concurrent clients, release build, backend \
         and sandbox as separate processes on the same 2 cores. Latencies in ms at the client.\n"
    );
    report.push_str("| store | instances | journeys/s | failed | create p50/p95/p99 | start p50/p95/p99 | callback p50/p95/p99 | view p50/p95/p99 | peak RSS per instance |\n");
    report.push_str("|---|---:|---:|---:|---|---|---|---|---|\n");
    let mut backend_provider_ms = Vec::new();
    let mut cpu = Vec::new();
    for (store, instances) in [("SQLite", 1), ("PostgreSQL", 1), ("PostgreSQL", 3)] {
        reqwest::Client::new().post(format!("{sandbox}/__sandbox/reset")).send().await?;
        let dir = tempfile::tempdir()?;
        let db = if store == "SQLite" {
            format!("sqlite://{}", dir.path().join("bench.db").display())
        } else {
            fresh_postgres(&pg_server).await?
        };
        let mut procs = Vec::new();
        let mut urls = Vec::new();
        for _ in 0..instances {
            let (p, url) = start_backend(&db, &sandbox).await?;
            procs.push(p);
            urls.push(url);
        }
        let pids: Vec<String> = procs.iter().map(|p: &Proc| p.0.id().to_string()).collect();
        let sandbox_pid = sandbox_proc.0.id().to_string();
        let cpu_before = (pids.iter().map(|p| cpu_ms(p)).sum::<f64>(), cpu_ms(&sandbox_pid), cpu_ms("self"));
        let (rate, mut lat, failed) = load(urls.clone(), &sandbox).await?;
        let journeys = (JOURNEYS + 1) as f64;
        cpu.push(format!(
            "{store} x{instances}: backend {:.2} ms, sandbox {:.2} ms, load client {:.2} ms",
            (pids.iter().map(|p| cpu_ms(p)).sum::<f64>() - cpu_before.0) / journeys,
            (cpu_ms(&sandbox_pid) - cpu_before.1) / journeys,
            (cpu_ms("self") - cpu_before.2) / journeys,
        ));
        let peak = procs.iter().map(|p| peak_rss_kb(p.0.id())).max().unwrap_or(0);
        let f = |v: &mut Vec<f64>| format!("{:.1} / {:.1} / {:.1}", pct(v, 0.5), pct(v, 0.95), pct(v, 0.99));
        let _ = writeln!(
            report,
            "| {store} | {instances} | {rate:.1} | {failed} | {} | {} | {} | {} | {:.1} MB |",
            f(&mut lat.create),
            f(&mut lat.start),
            f(&mut lat.callback),
            f(&mut lat.view),
            peak as f64 / 1024.0
        );
        if store == "SQLite" {
            // The added latency is measured with one client, like the direct calls it is compared with.
            backend_provider_ms = sequential(&urls, &sandbox).await?;
        }
        drop(procs);
    }
    reqwest::Client::new().post(format!("{sandbox}/__sandbox/reset")).send().await?;
    let direct_ms = direct(&sandbox).await?;
    let ours = median(backend_provider_ms);
    let _ = writeln!(
        report,
        "\nAdded latency (one client, no load): start + callback through the backend (SQLite) take a median {ours:.1} ms; \
         the provider calls inside them made directly against the sandbox (create + execute) take {direct_ms:.1} ms: \
         ratio {:.2}.\n",
        ours / direct_ms
    );
    // PostgreSQL's own processes are not counted: they are the server's, not ours.
    let _ = writeln!(
        report,
        "CPU time per journey (user + system, from /proc; the machine has 2 cores): {}.\n",
        cpu.join("; ")
    );
    drop(sandbox_proc);
    Ok(())
}
