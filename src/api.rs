//! The widget API client: plain async functions over the browser's `fetch` returning a cloneable error.
//!
//! - `GET {endpoint}/v1/checkout/{id}` -> [`CheckoutView`]
//! - `POST {endpoint}/v1/checkout/{id}/bkash` -> 201 [`StartBkashResponse`]
//! - `POST {endpoint}/v1/checkout/{id}/upi` -> 201 [`StartUpiResponse`] (the same pending payin when repeated)
//! - `POST {endpoint}/v1/checkout/{id}/cancel` -> [`CheckoutView`] (409 `nothing_to_cancel`)
//! - `GET {endpoint}/v1/checkout/{id}/events`: server-sent events `session` with a [`CheckoutView`], read by an
//!   `EventSource` in `ui.rs` ([`events_url`], [`parse_view`])
//!
//! Errors are an HTTP status plus `{"error":{"code","message"}}` ([`deshpay_api::ErrorBody`]).

use deshpay_api::ErrorCode;

#[cfg(target_arch = "wasm32")]
use deshpay_api::{CheckoutView, StartBkashResponse, StartUpiResponse};

/// Why a call to the backend failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No HTTP response: offline, DNS, CORS refusal, connection reset.
    Network,
    /// The backend answered with an error status.
    Http {
        /// HTTP status.
        status: u16,
        /// The error code of the body ([`ErrorCode::Other`] when the body was not the documented shape).
        code: ErrorCode,
        /// The body's message (for `provider_error`, bKash's own words).
        message: String,
    },
    /// A success status with a body that is not the expected JSON.
    Decode,
}

impl ApiError {
    /// Whether the backend itself is unhealthy or unreachable (as opposed to refusing this request).
    pub fn is_unreachable(&self) -> bool {
        match self {
            ApiError::Network | ApiError::Decode => true,
            ApiError::Http { status, code, .. } => {
                *status >= 500 && !matches!(code, ErrorCode::ProviderUnavailable | ErrorCode::ProviderError)
            }
        }
    }
}

/// `GET {endpoint}/v1/checkout/{session}`: the public view of the session.
///
/// # Errors
/// [`ApiError`] for transport failures, error statuses and unexpected bodies.
#[cfg(target_arch = "wasm32")]
pub async fn checkout_view(endpoint: &str, session: &str) -> Result<CheckoutView, ApiError> {
    read(fetch("GET", &url(endpoint, session, "")).await?).await
}

/// `POST {endpoint}/v1/checkout/{session}/bkash`: starts a bKash attempt and returns where to send the browser.
/// No body and no custom header, so the browser sends no CORS preflight.
///
/// # Errors
/// [`ApiError`]; notably 409 `payment_in_progress`, 503 `provider_unavailable`, 502 `provider_error`.
#[cfg(target_arch = "wasm32")]
pub async fn start_bkash(endpoint: &str, session: &str) -> Result<StartBkashResponse, ApiError> {
    read(fetch("POST", &url(endpoint, session, "/bkash")).await?).await
}

/// `POST {endpoint}/v1/checkout/{session}/upi`: starts (or returns the pending) UPI payin: deep links, QR text
/// and expiry. No body, so no CORS preflight.
///
/// # Errors
/// [`ApiError`]; notably 409 `payment_in_progress`, 503 `provider_unavailable`, 502 `provider_error`.
#[cfg(target_arch = "wasm32")]
pub async fn start_upi(endpoint: &str, session: &str) -> Result<StartUpiResponse, ApiError> {
    read(fetch("POST", &url(endpoint, session, "/upi")).await?).await
}

/// `POST {endpoint}/v1/checkout/{session}/cancel`: cancels the pending attempt; returns the session view.
///
/// # Errors
/// [`ApiError`]; 409 `nothing_to_cancel` when the attempt already finished.
#[cfg(target_arch = "wasm32")]
pub async fn cancel(endpoint: &str, session: &str) -> Result<CheckoutView, ApiError> {
    read(fetch("POST", &url(endpoint, session, "/cancel")).await?).await
}

/// The server-sent events URL of a session (`EventSource`).
pub fn events_url(endpoint: &str, session: &str) -> String {
    crate::cat(&[endpoint, "/v1/checkout/", session, "/events"])
}

/// Reads the data of a `session` event: a [`CheckoutView`] as JSON (browser `JSON.parse` and [`crate::decode`],
/// as [`read`]).
#[cfg(target_arch = "wasm32")]
pub fn parse_view(data: &str) -> Option<CheckoutView> {
    js_sys::JSON::parse(data).ok().and_then(<CheckoutView as crate::decode::Decode>::decode)
}

/// `{endpoint}/v1/checkout/{session}{suffix}`, built without `format!` (see `decode` on code size).
#[cfg(target_arch = "wasm32")]
fn url(endpoint: &str, session: &str, suffix: &str) -> String {
    crate::cat(&[endpoint, "/v1/checkout/", session, suffix])
}

#[cfg(target_arch = "wasm32")]
thread_local! {
    /// The loader's `fetch` of a session view, begun beside the wasm's download: its URL and promise.
    static STARTED: std::cell::Cell<Option<(String, js_sys::Promise)>> = const { std::cell::Cell::new(None) };
}

/// Hands over the loader's request for the session view (`prefetch` in the mount options), which the next
/// request for that same URL awaits instead of asking again.
#[cfg(target_arch = "wasm32")]
pub fn started(endpoint: &str, session: &str, promise: js_sys::Promise) {
    STARTED.set(Some((url(endpoint, session, ""), promise)));
}

/// `fetch(url, {method})` with web-sys directly (gloo-net's request builder adds URL and header handling the
/// widget does not need), or the loader's request for it ([`started`]); a rejected promise (offline, DNS, CORS)
/// is [`ApiError::Network`].
#[cfg(target_arch = "wasm32")]
async fn fetch(method: &str, url: &str) -> Result<web_sys::Response, ApiError> {
    use wasm_bindgen::JsCast;
    let promise = match STARTED.take() {
        Some((started, promise)) if started == url => promise,
        _ => {
            let init = web_sys::RequestInit::new();
            init.set_method(method);
            web_sys::window().ok_or(ApiError::Network)?.fetch_with_str_and_init(url, &init)
        }
    };
    let response = wasm_bindgen_futures::JsFuture::from(promise).await.map_err(|_| ApiError::Network)?;
    response.dyn_into().map_err(|_| ApiError::Network)
}

/// Decodes a response. JSON goes through the browser's `JSON.parse` and [`crate::decode`] rather than
/// serde_json or serde-wasm-bindgen, which would add a parser or serde's machinery to the wasm.
#[cfg(target_arch = "wasm32")]
async fn read<T: crate::decode::Decode>(response: web_sys::Response) -> Result<T, ApiError> {
    let status = response.status();
    let ok = response.ok();
    let text = match response.text() {
        Ok(promise) => wasm_bindgen_futures::JsFuture::from(promise).await.ok().and_then(|t| t.as_string()),
        Err(_) => None,
    };
    let json = match text {
        Some(text) => js_sys::JSON::parse(&text).ok(),
        None if ok => return Err(ApiError::Network),
        None => None,
    };
    if ok {
        return json.and_then(T::decode).ok_or(ApiError::Decode);
    }
    Err(match json.and_then(<deshpay_api::ErrorBody as crate::decode::Decode>::decode) {
        Some(body) => ApiError::Http { status, code: body.error.code, message: body.error.message },
        // A proxy's HTML error page, for instance.
        None => ApiError::Http { status, code: ErrorCode::Other, message: String::new() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_errors_are_not_the_backend_being_down() {
        let http = |status, code| ApiError::Http { status, code, message: String::new() };
        assert!(ApiError::Network.is_unreachable());
        assert!(http(500, ErrorCode::Internal).is_unreachable());
        assert!(http(502, ErrorCode::Other).is_unreachable());
        assert!(!http(503, ErrorCode::ProviderUnavailable).is_unreachable());
        assert!(!http(502, ErrorCode::ProviderError).is_unreachable());
        assert!(!http(404, ErrorCode::SessionNotFound).is_unreachable());
    }
}
