//! The test kit of the DeshPay suites (a dev-dependency only): backend settings that point at an in-process
//! sandbox, a throwaway database per test, a typed client for the sandbox's `/__sandbox/...` control endpoints,
//! [`eventually`] instead of hand-written polling loops, and test tracing behind `TEST_LOG`.

mod control;
mod database;
mod settings;

pub use control::SandboxControl;
pub use database::{PgDatabase, test_database};
pub use settings::{API_KEY, BKASH_TIMEOUT_MS, sandbox_settings};

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, every 20 ms, for at most `timeout`; returns the value. Panics with
/// the last `Err` it saw when time runs out, so a failing test says what it was waiting for.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => panic!("not within {timeout:?}: {last}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Sends the backend's and the sandbox's logs to the test output when `TEST_LOG` is set (its value is an
/// `EnvFilter`, e.g. `TEST_LOG=deshpay_server=debug`; `1` means `info`; run with `--nocapture` to see passing
/// tests' logs). Silent otherwise.
pub fn init_tracing() {
    if std::env::var_os("TEST_LOG").is_some() {
        global_subscriber();
    }
}

/// Logs captured for a test that inspects them (the bytes the formatter wrote).
#[derive(Debug, Clone, Default)]
pub struct CapturedLogs(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if CAPTURING.load(Ordering::SeqCst) {
            self.0.lock().unwrap().extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static CAPTURING: AtomicBool = AtomicBool::new(false);

/// Starts capturing every log line that `filter` passes (from all tests running now), next to `TEST_LOG`'s
/// output. There is one process-wide subscriber; the first call's filter is the capture's filter.
pub fn capture_logs(filter: &str) -> &'static CapturedLogs {
    let captured = global_subscriber_with(Some(filter));
    CAPTURING.store(true, Ordering::SeqCst);
    captured
}

fn global_subscriber() -> &'static CapturedLogs {
    global_subscriber_with(None)
}

/// Installs the one global subscriber: `TEST_LOG`'s layer (when set) and the capture layer (when a test asks
/// for it first; with `TEST_LOG` set it is installed at once with the given filter, off until asked).
fn global_subscriber_with(capture_filter: Option<&str>) -> &'static CapturedLogs {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer, fmt};
    static CAPTURED: OnceLock<CapturedLogs> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = CapturedLogs::default();
        let test_log =
            std::env::var("TEST_LOG").ok().map(|f| if f.is_empty() || f == "1" { "info".to_owned() } else { f });
        let test_layer = test_log.map(|f| fmt::layer().with_test_writer().with_filter(EnvFilter::new(f)));
        let writer = captured.clone();
        let capture_layer = fmt::layer()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .with_filter(EnvFilter::new(capture_filter.unwrap_or(CAPTURE_FILTER)));
        let _ = tracing_subscriber::registry().with(test_layer).with(capture_layer).try_init();
        captured
    })
}

/// What a capture records when `TEST_LOG` made the subscriber before a capture was asked for.
const CAPTURE_FILTER: &str = "warn,deshpay_server=trace,deshpay_sandbox=trace";

/// A unique suffix for invoices and database names.
pub fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{nanos}-{}", N.fetch_add(1, Ordering::SeqCst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn eventually_returns_once_the_check_holds() {
        let mut n = 0;
        let got = eventually(Duration::from_secs(2), || {
            n += 1;
            let n = n;
            async move { if n >= 3 { Ok(n) } else { Err(format!("only {n}")) } }
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "never")]
    async fn eventually_gives_up_with_the_last_reason() {
        eventually(Duration::from_millis(50), || async { Err::<(), _>("never".to_owned()) }).await;
    }
}
