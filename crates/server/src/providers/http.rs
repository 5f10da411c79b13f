//! What every provider client shares below its own API: the HTTP client (the configured timeout, no redirects,
//! https only in production) and the classification of a failed send.

use crate::configuration::Environment;
use std::time::Duration;

/// A provider's HTTP client. Never follows a redirect: it would carry the credentials' headers to another host.
/// Outside the sandbox only https is spoken (the URLs are also checked at start).
///
/// # Errors
/// When the HTTP client cannot be built.
pub fn client(timeout_ms: u64, environment: Environment) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .https_only(environment == Environment::Production)
        .timeout(Duration::from_millis(timeout_ms))
        .connect_timeout(Duration::from_millis(timeout_ms.min(10_000)))
        .build()
}

/// How a send failed below HTTP.
#[derive(Debug)]
pub enum Transport {
    /// No answer within the timeout.
    Timeout,
    /// No connection could be made: the request was never sent.
    Connect(String),
    /// The connection failed after the request may have been sent.
    Other(String),
}

impl From<reqwest::Error> for Transport {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Transport::Timeout
        } else if e.is_connect() {
            Transport::Connect(e.without_url().to_string())
        } else {
            Transport::Other(e.without_url().to_string())
        }
    }
}
