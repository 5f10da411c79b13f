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
/// `EnvFilter`, e.g. `TEST_LOG=deshpay_server=debug`; `1` means `info`). Silent otherwise, and a no-op when
/// a subscriber is already installed (a test that captures logs itself keeps its own).
pub fn init_tracing() {
    let Ok(filter) = std::env::var("TEST_LOG") else {
        return;
    };
    let filter = if filter.is_empty() || filter == "1" { "info".to_owned() } else { filter };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_test_writer()
        .try_init();
}

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
