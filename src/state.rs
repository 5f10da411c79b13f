//! What the widget shows, as a pure function of the session view and what just happened.
//!
//! Kept free of browser APIs so that the mapping from [`CheckoutView`] and [`ApiError`] to a [`Screen`] is
//! tested natively (`cargo test -p deshpay-widget`).

use crate::api::ApiError;
use crate::i18n::Key;
use deshpay_api::{
    AttemptStatus, AttemptView, CheckoutView, ErrorCode, Method, QrSvg, ReasonCode, SessionStatus, StartUpiResponse,
    UpiLinks,
};

/// Why starting a payment failed, shown above the method list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartProblem {
    /// The backend did not answer or failed (network, 5xx).
    Unreachable,
    /// The provider did not answer in time (503 `provider_unavailable`).
    ProviderUnavailable,
    /// The provider or backend refused, with its message (502 `provider_error`: bKash's words), which goes to the
    /// console only: the customer reads the widget's own text.
    Refused(String),
}

/// How the widget offers a started UPI payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpiLayout {
    /// A desktop: a QR code to scan with a phone; the app buttons behind "Pay on this device".
    Qr,
    /// A phone or tablet: buttons that open the UPI apps on this device.
    Apps,
}

/// A started UPI payment, as the backend returned it (`POST /v1/checkout/{id}/upi`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpiPayment {
    /// The attempt whose outcome the widget waits for (`None` in previews).
    pub attempt: Option<String>,
    /// The apps' deep links, exactly as the backend gave them.
    pub links: UpiLinks,
    /// The `upi://pay` link drawn as a QR code by the backend; `None` if it could not be drawn (then the app
    /// buttons show at once).
    pub qr: Option<QrSvg>,
    /// When the payment request expires (RFC 3339); empty in previews, which count down from 15 minutes.
    pub expires_at: String,
}

impl From<StartUpiResponse> for UpiPayment {
    fn from(r: StartUpiResponse) -> UpiPayment {
        UpiPayment {
            attempt: Some(r.attempt_id.as_str().to_owned()),
            links: r.links,
            qr: r.qr_svg,
            expires_at: r.expires_at,
        }
    }
}

/// The previews' QR code: "DESHPAY DEMO" (not a payment link), as the backend draws codes.
const DEMO_QR: &str = "M4 4h7v1h-7zM12 4h1v1h-1zM14 4h2v1h-2zM18 4h7v1h-7zM4 5h1v1h-1zM10 5h1v1h-1zM13 5h1v1h-1zM16 5h1v1h-1zM18 5h1v1h-1zM24 5h1v1h-1zM4 6h1v1h-1zM6 6h3v1h-3zM10 6h1v1h-1zM13 6h1v1h-1zM15 6h2v1h-2zM18 6h1v1h-1zM20 6h3v1h-3zM24 6h1v1h-1zM4 7h1v1h-1zM6 7h3v1h-3zM10 7h1v1h-1zM12 7h5v1h-5zM18 7h1v1h-1zM20 7h3v1h-3zM24 7h1v1h-1zM4 8h1v1h-1zM6 8h3v1h-3zM10 8h1v1h-1zM12 8h1v1h-1zM14 8h3v1h-3zM18 8h1v1h-1zM20 8h3v1h-3zM24 8h1v1h-1zM4 9h1v1h-1zM10 9h1v1h-1zM12 9h1v1h-1zM16 9h1v1h-1zM18 9h1v1h-1zM24 9h1v1h-1zM4 10h7v1h-7zM12 10h1v1h-1zM14 10h1v1h-1zM16 10h1v1h-1zM18 10h7v1h-7zM12 11h1v1h-1zM14 11h1v1h-1zM4 12h1v1h-1zM8 12h1v1h-1zM10 12h3v1h-3zM16 12h6v1h-6zM24 12h1v1h-1zM4 13h1v1h-1zM8 13h2v1h-2zM13 13h2v1h-2zM16 13h3v1h-3zM20 13h5v1h-5zM4 14h1v1h-1zM6 14h6v1h-6zM13 14h2v1h-2zM16 14h1v1h-1zM19 14h2v1h-2zM23 14h1v1h-1zM4 15h2v1h-2zM8 15h1v1h-1zM11 15h1v1h-1zM14 15h4v1h-4zM20 15h1v1h-1zM6 16h1v1h-1zM9 16h3v1h-3zM13 16h1v1h-1zM15 16h1v1h-1zM17 16h2v1h-2zM20 16h3v1h-3zM24 16h1v1h-1zM12 17h1v1h-1zM14 17h1v1h-1zM16 17h1v1h-1zM18 17h2v1h-2zM22 17h3v1h-3zM4 18h7v1h-7zM12 18h1v1h-1zM15 18h1v1h-1zM20 18h1v1h-1zM22 18h2v1h-2zM4 19h1v1h-1zM10 19h1v1h-1zM13 19h2v1h-2zM16 19h2v1h-2zM20 19h1v1h-1zM4 20h1v1h-1zM6 20h3v1h-3zM10 20h1v1h-1zM12 20h2v1h-2zM15 20h1v1h-1zM17 20h2v1h-2zM22 20h1v1h-1zM4 21h1v1h-1zM6 21h3v1h-3zM10 21h1v1h-1zM13 21h1v1h-1zM16 21h1v1h-1zM18 21h1v1h-1zM23 21h2v1h-2zM4 22h1v1h-1zM6 22h3v1h-3zM10 22h1v1h-1zM13 22h2v1h-2zM17 22h1v1h-1zM20 22h2v1h-2zM4 23h1v1h-1zM10 23h1v1h-1zM14 23h1v1h-1zM17 23h1v1h-1zM19 23h2v1h-2zM4 24h7v1h-7zM12 24h1v1h-1zM14 24h2v1h-2zM17 24h2v1h-2zM21 24h2v1h-2zM24 24h1v1h-1z";

impl UpiPayment {
    /// Demo links for previews (gallery, component tests): never used for a real payment.
    pub fn demo() -> UpiPayment {
        let query = "pa=demo.shop%40bestin&pn=Demo%20Shop&am=101.00&cu=INR&tr=PIDEMO";
        UpiPayment {
            attempt: None,
            links: UpiLinks {
                paytm: Some(crate::cat(&["paytmmp://cash_wallet?", query, "&featuretype=money_transfer"])),
                phonepe: Some("phonepe://native?data=e30%3D&id=p2ppayment".into()),
                upi: crate::cat(&["upi://pay?", query]),
            },
            qr: Some(QrSvg { size: 29, path: DEMO_QR.into() }),
            expires_at: String::new(),
        }
    }

    /// The app buttons, in order: label and link, `None` for a missing or unsafe link (no button).
    pub fn apps(&self) -> [(AppLabel, Option<&str>); 3] {
        [
            (AppLabel::Paytm, self.links.paytm.as_deref()),
            (AppLabel::PhonePe, self.links.phonepe.as_deref()),
            (AppLabel::OtherUpiApp, Some(self.links.upi.as_str())),
        ]
        .map(|(label, link)| (label, link.filter(|l| is_safe_link(l))))
    }
}

/// The label of a UPI app button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppLabel {
    /// "Paytm" (a brand name: the same in every language).
    Paytm,
    /// "PhonePe" (a brand name).
    PhonePe,
    /// "Other UPI app" (translated: [`Key::OtherUpiApp`]).
    OtherUpiApp,
}

/// Whether a deep link may go into an `href`: any app scheme, but never one that runs script or embeds a
/// document (`javascript:`, `data:`, ...), so that a tampered response cannot run code in the merchant's page.
pub fn is_safe_link(link: &str) -> bool {
    let Some((scheme, _)) = link.trim().split_once(':') else {
        return false;
    };
    let well_formed = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let scheme = scheme.to_ascii_lowercase();
    well_formed && !matches!(scheme.as_str(), "javascript" | "data" | "vbscript" | "blob" | "file" | "filesystem")
}

/// Whether a user agent string is a phone's or tablet's (where the UPI apps are).
pub fn is_mobile_user_agent(ua: &str) -> bool {
    // Word by word rather than substring search, which would add a string searcher to the wasm.
    ua.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w.starts_with("Mobi") || matches!(w, "Android" | "iPhone" | "iPad"))
}

/// The visible countdown, `m:ss` (`14:05`, `0:09`), from whole seconds left (negative counts as none).
pub fn countdown(seconds: i64) -> String {
    let s = seconds.max(0);
    // Not `format!` (core's formatting machinery is large in the wasm).
    let mut out = String::new();
    crate::money::push_digits(&mut out, s / 60, 1);
    out.push(':');
    crate::money::push_digits(&mut out, s % 60, 2);
    out
}

/// What a fresh session view means while the widget waits for the approval of a UPI attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpiProgress {
    /// Still waiting for the customer.
    Waiting,
    /// Approved; the backend is confirming with Bestin Pay.
    Confirming,
    /// Final: show this screen.
    Done(Screen),
}

/// Reads a view (from server-sent events, polling or a re-check) while waiting for `attempt` (`None`: any).
/// Another attempt's status is ignored; the session's own end (paid, expired, canceled) is always final.
pub fn upi_progress(view: &CheckoutView, attempt: Option<&str>) -> UpiProgress {
    if view.status != SessionStatus::Open {
        return UpiProgress::Done(screen_for(view, true));
    }
    let Some(a) = view.attempt.as_ref().filter(|a| attempt.is_none_or(|id| a.id.as_str() == id)) else {
        return UpiProgress::Waiting;
    };
    match a.status {
        AttemptStatus::Pending => UpiProgress::Waiting,
        AttemptStatus::Confirming => UpiProgress::Confirming,
        _ => UpiProgress::Done(screen_for(view, true)),
    }
}

/// One state of the widget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// Reading the session.
    Loading,
    /// Amount and method buttons; `problem` when the last start failed.
    Choose {
        /// The last start's failure, if any.
        problem: Option<StartProblem>,
    },
    /// The session offers no method this widget can use (e.g. bKash for rupees).
    NoMethod,
    /// The attempt started; the browser is leaving for the provider's page.
    Redirecting,
    /// The backend is confirming the attempt; the widget polls.
    Confirming,
    /// A UPI payment request is out: QR code or app buttons, a countdown and "Cancel"; the widget follows the
    /// attempt live (server-sent events, else polling).
    UpiWaiting {
        /// What the backend returned.
        payment: UpiPayment,
        /// QR code (desktop) or app buttons (phone).
        layout: UpiLayout,
        /// The last "Cancel" did not reach the backend.
        cancel_failed: bool,
    },
    /// Polling gave up before a final status: "Check status", never "Try again".
    StillConfirming,
    /// Money may have moved and the merchant checks it: "Do not pay again", and no button.
    Review,
    /// Paid, with the provider's transaction id.
    Succeeded {
        /// bKash trxID or Bestin Pay's trx_id.
        trx_id: String,
    },
    /// The attempt failed.
    Failed {
        /// What the paragraph says: the widget's words for the reason code ([`failure_text`]).
        text: Key,
        /// What `deshpay:failure` `detail.reason` says: the backend's reason code (`insufficient_balance`), or
        /// from an older backend or a preview without one, the provider's words it sent.
        detail: Option<String>,
    },
    /// The customer closed the provider's page.
    Cancelled,
    /// The attempt was not finished in time.
    AttemptExpired,
    /// The whole session expired: nothing can be paid.
    SessionExpired,
    /// The merchant canceled the session.
    SessionCanceled,
    /// The session id is unknown (or malformed).
    NotFound,
    /// The backend is unreachable or failing.
    Unreachable,
}

/// The kind of host-page event an outcome fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `deshpay:success`.
    Success,
    /// `deshpay:failure`.
    Failure,
    /// `deshpay:cancel`.
    Cancel,
}

impl Outcome {
    /// The DOM event name.
    pub fn event(self) -> &'static str {
        match self {
            Outcome::Success => "deshpay:success",
            Outcome::Failure => "deshpay:failure",
            Outcome::Cancel => "deshpay:cancel",
        }
    }
}

impl Screen {
    /// A progress state, announced (visibly) in the status region.
    pub fn is_progress(&self) -> bool {
        matches!(self, Screen::Loading | Screen::Redirecting | Screen::Confirming | Screen::UpiWaiting { .. })
    }

    /// A payment outcome with a heading that takes focus after the customer returns from the provider.
    pub fn is_outcome(&self) -> bool {
        matches!(
            self,
            Screen::Succeeded { .. }
                | Screen::Failed { .. }
                | Screen::Cancelled
                | Screen::AttemptExpired
                | Screen::Review
        )
    }

    /// What the `role="status"` region says in this state.
    pub fn status_key(&self) -> Option<Key> {
        Some(match self {
            Screen::Loading => Key::Loading,
            Screen::Redirecting => Key::Redirecting,
            Screen::Confirming => Key::Confirming,
            Screen::UpiWaiting { .. } => Key::WaitingApproval,
            Screen::StillConfirming => Key::StillConfirming,
            Screen::Review => Key::Review,
            Screen::Succeeded { .. } => Key::Success,
            Screen::Failed { .. } => Key::Failed,
            Screen::Cancelled => Key::Cancelled,
            Screen::AttemptExpired => Key::Expired,
            Screen::SessionExpired => Key::SessionExpired,
            Screen::SessionCanceled => Key::SessionCanceled,
            Screen::NoMethod => Key::NoMethod,
            // Errors are announced by their own role="alert".
            Screen::Choose { .. } | Screen::NotFound | Screen::Unreachable => return None,
        })
    }

    /// The host-page event this state fires, with `detail.reason` for failures (the reason code). A review
    /// fires none: it is neither a failure the page may offer to retry nor a success.
    pub fn outcome(&self) -> Option<(Outcome, Option<String>)> {
        match self {
            Screen::Succeeded { .. } => Some((Outcome::Success, None)),
            Screen::Failed { detail, .. } => {
                Some((Outcome::Failure, Some(detail.clone().unwrap_or_else(|| "failed".into()))))
            }
            Screen::AttemptExpired => Some((Outcome::Failure, Some("expired".into()))),
            Screen::Cancelled => Some((Outcome::Cancel, None)),
            _ => None,
        }
    }

    /// The words of an outcome screen, as keys: its heading (if any), its paragraph, and its button (if any:
    /// "Try again" back to the methods, or "Check status" polling again). Every one says what happened to the
    /// money, and none invites a second payment while money may have moved.
    pub fn outcome_texts(&self) -> Option<(Option<Key>, Key, Option<Key>)> {
        Some(match self {
            Screen::Failed { text: Key::AlreadyPaid, .. } => (Some(Key::Failed), Key::AlreadyPaid, None),
            Screen::Failed { text, .. } => (Some(Key::Failed), *text, Some(Key::TryAgain)),
            Screen::Cancelled => (Some(Key::Cancelled), Key::CancelledBody, Some(Key::TryAgain)),
            Screen::AttemptExpired => (Some(Key::Expired), Key::ExpiredBody, Some(Key::TryAgain)),
            Screen::Review => (Some(Key::Review), Key::ReviewBody, None),
            Screen::StillConfirming => (None, Key::StillConfirming, Some(Key::CheckStatus)),
            _ => return None,
        })
    }

    /// The screen a preview (gallery, component tests) asks for by name; `None` for an unknown name.
    pub fn preview(name: &str, view: &CheckoutView) -> Option<Screen> {
        let attempt = view.attempt.as_ref();
        Some(match name {
            "loading" => Screen::Loading,
            "choose" => Screen::Choose { problem: None },
            "provider-error" => Screen::Choose {
                problem: Some(StartProblem::Refused("Payment could not be initiated. Please try again later.".into())),
            },
            "review" => Screen::Review,
            "no-method" => Screen::NoMethod,
            "redirecting" => Screen::Redirecting,
            "confirming" => Screen::Confirming,
            "upi-qr" => Screen::UpiWaiting { payment: UpiPayment::demo(), layout: UpiLayout::Qr, cancel_failed: false },
            "upi-apps" => {
                Screen::UpiWaiting { payment: UpiPayment::demo(), layout: UpiLayout::Apps, cancel_failed: false }
            }
            "still-confirming" => Screen::StillConfirming,
            "success" => Screen::Succeeded {
                trx_id: attempt.and_then(|a| a.trx_id.clone()).unwrap_or_else(|| "BKH7Q2M9XA".into()),
            },
            "failed" => match attempt.filter(|a| a.status == AttemptStatus::Failed) {
                Some(a) => failed(a),
                None => Screen::Failed { text: Key::ReasonBalance, detail: Some("insufficient_balance".into()) },
            },
            "cancelled" => Screen::Cancelled,
            "expired" => Screen::AttemptExpired,
            "session-expired" => Screen::SessionExpired,
            "session-canceled" => Screen::SessionCanceled,
            "not-found" => Screen::NotFound,
            "unreachable" => Screen::Unreachable,
            _ => return None,
        })
    }
}

/// The methods of a session this widget can take (those of its currency), in the order it shows them.
pub fn usable_methods(view: &CheckoutView) -> Vec<Method> {
    view.methods.iter().copied().filter(|m| m.currency() == view.currency).collect()
}

/// The screen for a session view. `returned` is true when the page is the return from the provider's page
/// (its URL carries `deshpay_session=<this session>`): only then does a finished attempt show as an outcome,
/// so that a customer who comes back later simply sees the method list again.
pub fn screen_for(view: &CheckoutView, returned: bool) -> Screen {
    let attempt = view.attempt.as_ref();
    match view.status {
        SessionStatus::Paid => {
            let trx_id = attempt.filter(|a| a.status == AttemptStatus::Succeeded).and_then(|a| a.trx_id.clone());
            return Screen::Succeeded { trx_id: trx_id.unwrap_or_default() };
        }
        SessionStatus::Expired => return Screen::SessionExpired,
        SessionStatus::Canceled => return Screen::SessionCanceled,
        SessionStatus::Open => {}
    }
    let choose = || {
        if usable_methods(view).is_empty() { Screen::NoMethod } else { Screen::Choose { problem: None } }
    };
    let Some(attempt) = attempt else {
        return choose();
    };
    match (attempt.status, returned) {
        (AttemptStatus::Succeeded, _) => Screen::Succeeded { trx_id: attempt.trx_id.clone().unwrap_or_default() },
        // Money may have moved: never the method list or "Try again", on a later visit either.
        (AttemptStatus::Review, _) => Screen::Review,
        (AttemptStatus::Confirming, _) | (AttemptStatus::Pending, true) => Screen::Confirming,
        (AttemptStatus::Failed, true) => failed(attempt),
        (AttemptStatus::Cancelled, true) => Screen::Cancelled,
        (AttemptStatus::Expired, true) => Screen::AttemptExpired,
        (_, false) => choose(),
    }
}

/// The failure screen of a failed attempt: the widget's words for its reason, and the reason code for the event.
fn failed(attempt: &AttemptView) -> Screen {
    let detail = match attempt.reason {
        Some(reason) => Some(reason.as_str().to_owned()),
        None => attempt.message.clone().filter(|m| !m.is_empty()),
    };
    Screen::Failed { text: failure_text(attempt.reason, attempt.method), detail }
}

/// What the failure paragraph says for a reason code (`None`: from a backend without codes) and method. Every
/// text says what happened to the money; unknown codes get the neutral "not completed, no money was taken".
pub fn failure_text(reason: Option<ReasonCode>, method: Method) -> Key {
    match (reason, method) {
        (Some(ReasonCode::InsufficientBalance), Method::Bkash) => Key::ReasonBalance,
        (Some(ReasonCode::VerificationFailed), Method::Bkash) => Key::ReasonVerification,
        (Some(ReasonCode::PinFailed), Method::Bkash) => Key::ReasonPin,
        (Some(ReasonCode::InvalidWallet), Method::Bkash) => Key::ReasonWallet,
        (Some(ReasonCode::AccountRestricted), Method::Bkash) => Key::ReasonRestricted,
        (Some(ReasonCode::Duplicate), Method::Bkash) => Key::ReasonDuplicate,
        (Some(ReasonCode::SavedWalletUnavailable), Method::Bkash) => Key::ReasonSavedWallet,
        (Some(ReasonCode::AlreadyPaid), _) => Key::AlreadyPaid,
        (Some(ReasonCode::ProviderUnavailable), Method::Bkash) => Key::ProviderUnavailable,
        (Some(ReasonCode::ProviderUnavailable), Method::Upi) => Key::UpiUnavailable,
        // A declined or failed UPI payment may have been debited and is then reversed by the bank.
        (_, Method::Upi) => Key::UpiFailedBody,
        _ => Key::FailedNoReason,
    }
}

/// Whether the session has a UPI payment request still waiting for approval: after a reload the widget shows it
/// again (the backend returns the same payin) instead of the method list, so the customer sees what is pending.
pub fn resumes_upi(view: &CheckoutView) -> bool {
    view.status == SessionStatus::Open
        && view.attempt.as_ref().is_some_and(|a| a.method == Method::Upi && a.status == AttemptStatus::Pending)
}

/// The screen after polling a view while confirming: `None` to keep polling.
pub fn poll_result(view: &CheckoutView) -> Option<Screen> {
    match screen_for(view, true) {
        Screen::Confirming => None,
        other => Some(other),
    }
}

/// The screen when loading the session failed.
pub fn load_error_screen(error: &ApiError) -> Screen {
    match error {
        ApiError::Http { status: 404, .. } | ApiError::Http { code: ErrorCode::SessionNotFound, .. } => {
            Screen::NotFound
        }
        _ => Screen::Unreachable,
    }
}

/// What to do when starting a payment failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterStartError {
    /// Show this screen.
    Show(Screen),
    /// Another attempt is being confirmed: poll until it is final.
    Poll,
    /// The session changed under us (e.g. already paid): read it again.
    Reload,
}

/// Maps a failed start to the next step.
pub fn after_start_error(error: &ApiError) -> AfterStartError {
    let code = match error {
        ApiError::Http { code, .. } => Some(code),
        _ => None,
    };
    match code {
        Some(ErrorCode::PaymentInProgress) => AfterStartError::Poll,
        Some(ErrorCode::SessionAlreadyPaid) => AfterStartError::Reload,
        Some(ErrorCode::SessionExpired) => AfterStartError::Show(Screen::SessionExpired),
        Some(ErrorCode::SessionCanceled) => AfterStartError::Show(Screen::SessionCanceled),
        Some(ErrorCode::SessionNotFound) => AfterStartError::Show(Screen::NotFound),
        Some(ErrorCode::ProviderUnavailable) => {
            AfterStartError::Show(Screen::Choose { problem: Some(StartProblem::ProviderUnavailable) })
        }
        _ if error.is_unreachable() => {
            AfterStartError::Show(Screen::Choose { problem: Some(StartProblem::Unreachable) })
        }
        _ => {
            let message = match error {
                ApiError::Http { message, .. } => message.clone(),
                _ => String::new(),
            };
            AfterStartError::Show(Screen::Choose { problem: Some(StartProblem::Refused(message)) })
        }
    }
}

/// Whether the page URL's query (`?a=b&...`, with or without `?`) marks a return from the provider for
/// `session`: the backend appends `deshpay_session=<id>` to the merchant's return URL.
pub fn is_return(query: &str, session: &str) -> bool {
    query
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .any(|(name, value)| name == "deshpay_session" && value == session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_upi_request_is_resumed_and_nothing_else_is() {
        let with = |session: SessionStatus, method: Method, status: AttemptStatus| {
            let mut v = view(session, Some((status, None, None)));
            if let Some(a) = v.attempt.as_mut() {
                a.method = method;
            }
            v
        };
        assert!(resumes_upi(&with(SessionStatus::Open, Method::Upi, AttemptStatus::Pending)));
        for status in
            [AttemptStatus::Confirming, AttemptStatus::Failed, AttemptStatus::Succeeded, AttemptStatus::Expired]
        {
            assert!(!resumes_upi(&with(SessionStatus::Open, Method::Upi, status)), "{status:?}");
        }
        assert!(!resumes_upi(&with(SessionStatus::Open, Method::Bkash, AttemptStatus::Pending)), "bKash redirects");
        assert!(!resumes_upi(&with(SessionStatus::Expired, Method::Upi, AttemptStatus::Pending)));
        assert!(!resumes_upi(&view(SessionStatus::Open, None)));
    }

    #[test]
    fn the_preview_qr_code_reads_back_as_its_demo_text() {
        let Some(qr) = UpiPayment::demo().qr else { panic!("the demo has a QR code") };
        let (side, scale) = (qr.size as usize, 4);
        let mut dark = vec![vec![false; side]; side];
        for run in qr.path.split('M').filter(|r| !r.is_empty()) {
            let (xy, rest) = run.split_once('h').unwrap();
            let (x, y) = xy.split_once(' ').unwrap();
            let (x, y, n): (usize, usize, usize) =
                (x.parse().unwrap(), y.parse().unwrap(), rest.split_once('v').unwrap().0.parse().unwrap());
            dark[y][x..x + n].fill(true);
        }
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(side * scale, side * scale, |x, y| {
            if dark[y / scale][x / scale] { 0 } else { 255 }
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        assert_eq!(grids[0].decode().unwrap().1, "DESHPAY DEMO");
    }
    use deshpay_api::{AttemptView, Currency};

    fn view(status: SessionStatus, attempt: Option<(AttemptStatus, Option<&str>, Option<&str>)>) -> CheckoutView {
        let json = serde_json::json!({
            "id": "cs_abcdefghijklmnopqrstuvwx", "status": status, "amount": "250.00", "amount_minor": 25000,
            "currency": "BDT", "invoice": "ORD-1", "description": "Tea", "methods": ["bkash"],
            "expires_at": "2030-01-01T00:00:00Z", "merchant_name": "Demo Shop", "attempt": null,
        });
        let mut v: CheckoutView = serde_json::from_value(json).unwrap();
        v.attempt = attempt.map(|(status, message, trx)| AttemptView {
            id: deshpay_api::AttemptId::from_random("ABCDEFGHIJKLMNOPQRSTUVWX").unwrap(),
            method: Method::Bkash,
            status,
            reason: None,
            message: message.map(str::to_owned),
            trx_id: trx.map(str::to_owned),
        });
        v
    }

    #[test]
    fn open_session_without_attempt_offers_bkash() {
        let v = view(SessionStatus::Open, None);
        assert_eq!(screen_for(&v, false), Screen::Choose { problem: None });
        assert_eq!(screen_for(&v, true), Screen::Choose { problem: None });
        assert_eq!(usable_methods(&v), vec![Method::Bkash]);
    }

    #[test]
    fn return_from_bkash_shows_the_attempts_outcome() {
        use AttemptStatus::*;
        let cases = [
            (
                Failed,
                Some("Insufficient Balance"),
                None,
                // An older backend: no reason code, the provider's words for the event.
                Screen::Failed { text: Key::FailedNoReason, detail: Some("Insufficient Balance".into()) },
            ),
            (Failed, Some(""), None, Screen::Failed { text: Key::FailedNoReason, detail: None }),
            (Cancelled, None, None, Screen::Cancelled),
            (Expired, None, None, Screen::AttemptExpired),
            (Pending, None, None, Screen::Confirming),
            (Confirming, None, None, Screen::Confirming),
            (Succeeded, None, Some("TRX1"), Screen::Succeeded { trx_id: "TRX1".into() }),
        ];
        for (status, message, trx, expected) in cases {
            assert_eq!(
                screen_for(&view(SessionStatus::Open, Some((status, message, trx))), true),
                expected,
                "{status:?}"
            );
        }
    }

    #[test]
    fn a_later_visit_offers_the_methods_again_after_a_finished_attempt() {
        for status in [AttemptStatus::Failed, AttemptStatus::Cancelled, AttemptStatus::Expired, AttemptStatus::Pending]
        {
            let v = view(SessionStatus::Open, Some((status, Some("x"), None)));
            assert_eq!(screen_for(&v, false), Screen::Choose { problem: None }, "{status:?}");
        }
        let confirming = view(SessionStatus::Open, Some((AttemptStatus::Confirming, None, None)));
        assert_eq!(screen_for(&confirming, false), Screen::Confirming);
    }

    #[test]
    fn a_payment_under_review_has_its_own_screen_on_every_visit_without_a_way_to_pay_again() {
        for returned in [true, false] {
            let v = view(SessionStatus::Open, Some((AttemptStatus::Review, Some("amount mismatch"), None)));
            assert_eq!(screen_for(&v, returned), Screen::Review, "returned: {returned}");
        }
        assert_eq!(
            poll_result(&view(SessionStatus::Open, Some((AttemptStatus::Review, None, None)))),
            Some(Screen::Review)
        );
        let mut upi = upi_view(SessionStatus::Open, AttemptStatus::Review, None, None);
        assert_eq!(upi_progress(&upi, None), UpiProgress::Done(Screen::Review));
        upi.status = SessionStatus::Paid;
        assert!(matches!(upi_progress(&upi, None), UpiProgress::Done(Screen::Succeeded { .. })), "paid wins");
        assert!(Screen::Review.is_outcome());
        let (_, _, button) = Screen::Review.outcome_texts().unwrap();
        assert_eq!(button, None);
    }

    #[test]
    fn failures_show_the_widgets_words_for_the_backends_reason_code() {
        use ReasonCode::*;
        let cases = [
            (Some(InsufficientBalance), Method::Bkash, Key::ReasonBalance),
            (Some(VerificationFailed), Method::Bkash, Key::ReasonVerification),
            (Some(PinFailed), Method::Bkash, Key::ReasonPin),
            (Some(InvalidWallet), Method::Bkash, Key::ReasonWallet),
            (Some(AccountRestricted), Method::Bkash, Key::ReasonRestricted),
            (Some(Duplicate), Method::Bkash, Key::ReasonDuplicate),
            (Some(SavedWalletUnavailable), Method::Bkash, Key::ReasonSavedWallet),
            // bKash's words never describe a UPI payment, whose debit may be reversed by the bank.
            (Some(InsufficientBalance), Method::Upi, Key::UpiFailedBody),
            (Some(VerificationFailed), Method::Upi, Key::UpiFailedBody),
            (Some(ProviderUnavailable), Method::Bkash, Key::ProviderUnavailable),
            (Some(ProviderUnavailable), Method::Upi, Key::UpiUnavailable),
            (Some(AlreadyPaid), Method::Bkash, Key::AlreadyPaid),
            (Some(Declined), Method::Upi, Key::UpiFailedBody),
            (Some(Failed), Method::Upi, Key::UpiFailedBody),
            (Some(Declined), Method::Bkash, Key::FailedNoReason),
            (Some(Failed), Method::Bkash, Key::FailedNoReason),
            (Some(Other), Method::Bkash, Key::FailedNoReason),
            (None, Method::Bkash, Key::FailedNoReason),
        ];
        for (reason, method, key) in cases {
            assert_eq!(failure_text(reason, method), key, "{reason:?} {method:?}");
        }
        // The event carries the reason code (a preview's or an older backend's message only without one).
        let mut v = view(SessionStatus::Open, Some((AttemptStatus::Failed, Some("Insufficient Balance"), None)));
        v.attempt.as_mut().unwrap().reason = Some(InsufficientBalance);
        let screen = screen_for(&v, true);
        assert_eq!(screen, Screen::Failed { text: Key::ReasonBalance, detail: Some("insufficient_balance".into()) });
        assert_eq!(screen.outcome(), Some((Outcome::Failure, Some("insufficient_balance".into()))));
        let (_, _, button) = Screen::Failed { text: Key::AlreadyPaid, detail: None }.outcome_texts().unwrap();
        assert_eq!(button, None, "an order already paid is not paid again");
    }

    /// Every outcome's paragraph in every language says what happened to the money (or not to pay again), and
    /// only outcomes after which no money moved offer "Try again".
    #[test]
    fn each_outcomes_text_in_each_language_speaks_about_money_first() {
        use crate::i18n::Locale;
        let money = |locale: Locale, text: &str| match locale {
            Locale::En => text.contains("money") || text.contains("pay again"),
            Locale::Bn => text.contains("টাকা") || text.contains("আবার পেমেন্ট করবেন না"),
            Locale::Hi => text.contains("पैसा") || text.contains("पैसे") || text.contains("दोबारा भुगतान न करें"),
        };
        let dont_pay_again = |locale: Locale, text: &str| match locale {
            Locale::En => text.contains("Do not pay again"),
            Locale::Bn => text.contains("আবার পেমেন্ট করবেন না"),
            Locale::Hi => text.contains("दोबारा भुगतान न करें"),
        };
        let mut screens = vec![Screen::Cancelled, Screen::AttemptExpired, Screen::Review, Screen::StillConfirming];
        for reason in deshpay_api::ReasonCode::ALL.into_iter().map(Some).chain([None]) {
            for method in [Method::Bkash, Method::Upi] {
                screens.push(Screen::Failed { text: failure_text(reason, method), detail: None });
            }
        }
        for screen in screens {
            let (heading, body, button) = screen.outcome_texts().expect("an outcome");
            for locale in Locale::ALL {
                let text = body.text(locale);
                assert!(money(locale, text), "{screen:?} {locale:?}: {text}");
                if matches!(screen, Screen::Review | Screen::StillConfirming) {
                    assert!(dont_pay_again(locale, text), "{screen:?} {locale:?}: {text}");
                }
                if let Some(heading) = heading {
                    assert!(!heading.text(locale).is_empty());
                }
            }
            let may_have_moved = matches!(screen, Screen::Review | Screen::StillConfirming);
            assert_eq!(button == Some(Key::TryAgain), !may_have_moved && body != Key::AlreadyPaid, "{screen:?}");
        }
        assert_eq!(Screen::StillConfirming.outcome_texts().unwrap().2, Some(Key::CheckStatus));
    }

    #[test]
    fn session_status_wins_over_the_attempt() {
        let paid = view(SessionStatus::Paid, Some((AttemptStatus::Succeeded, None, Some("9ABC"))));
        assert_eq!(screen_for(&paid, false), Screen::Succeeded { trx_id: "9ABC".into() });
        assert_eq!(screen_for(&view(SessionStatus::Expired, None), true), Screen::SessionExpired);
        assert_eq!(screen_for(&view(SessionStatus::Canceled, None), false), Screen::SessionCanceled);
    }

    #[test]
    fn inr_session_offers_upi_and_never_bkash() {
        let mut v = view(SessionStatus::Open, None);
        v.currency = Currency::Inr;
        v.methods = vec![Method::Upi];
        assert_eq!(screen_for(&v, false), Screen::Choose { problem: None });
        assert_eq!(usable_methods(&v), vec![Method::Upi]);
        v.methods = vec![Method::Bkash];
        assert_eq!(screen_for(&v, false), Screen::NoMethod, "bKash cannot take rupees");
    }

    fn upi_view(
        status: SessionStatus,
        attempt: AttemptStatus,
        message: Option<&str>,
        trx: Option<&str>,
    ) -> CheckoutView {
        let mut v = view(status, Some((attempt, message, trx)));
        v.currency = Currency::Inr;
        v.methods = vec![Method::Upi];
        if let Some(a) = v.attempt.as_mut() {
            a.method = Method::Upi;
        }
        v
    }

    #[test]
    fn upi_waiting_follows_the_attempt_to_its_outcome() {
        use AttemptStatus::*;
        let ours = "att_ABCDEFGHIJKLMNOPQRSTUVWX";
        let cases = [
            (SessionStatus::Open, Pending, None, None, UpiProgress::Waiting),
            (SessionStatus::Open, Confirming, None, None, UpiProgress::Confirming),
            (
                SessionStatus::Paid,
                Succeeded,
                None,
                Some("PI01JDZ8"),
                UpiProgress::Done(Screen::Succeeded { trx_id: "PI01JDZ8".into() }),
            ),
            (
                SessionStatus::Open,
                Failed,
                Some("Declined by the customer"),
                None,
                UpiProgress::Done(Screen::Failed {
                    text: Key::UpiFailedBody,
                    detail: Some("Declined by the customer".into()),
                }),
            ),
            (SessionStatus::Open, Expired, None, None, UpiProgress::Done(Screen::AttemptExpired)),
            (SessionStatus::Open, Cancelled, Some("Payment cancelled"), None, UpiProgress::Done(Screen::Cancelled)),
        ];
        for (session, status, message, trx, expected) in cases {
            let v = upi_view(session, status, message, trx);
            assert_eq!(upi_progress(&v, Some(ours)), expected, "{status:?}");
            assert_eq!(upi_progress(&v, None), expected, "{status:?} (preview)");
        }
    }

    #[test]
    fn upi_waiting_ignores_another_attempt_but_not_the_end_of_the_session() {
        let older = upi_view(SessionStatus::Open, AttemptStatus::Cancelled, None, None);
        assert_eq!(upi_progress(&older, Some("att_OTHER")), UpiProgress::Waiting);
        let mut expired = view(SessionStatus::Expired, None);
        expired.currency = Currency::Inr;
        assert_eq!(upi_progress(&expired, Some("att_OTHER")), UpiProgress::Done(Screen::SessionExpired));
    }

    #[test]
    fn app_buttons_use_the_backends_links_and_skip_missing_or_unsafe_ones() {
        let mut p = UpiPayment::demo();
        let labels =
            |p: &UpiPayment| p.apps().into_iter().filter(|(_, l)| l.is_some()).map(|(l, _)| l).collect::<Vec<_>>();
        assert_eq!(labels(&p), vec![AppLabel::Paytm, AppLabel::PhonePe, AppLabel::OtherUpiApp]);
        assert_eq!(p.apps()[2].1, Some(p.links.upi.as_str()));
        assert_eq!(p.apps()[0].1, p.links.paytm.as_deref());
        p.links.paytm = None;
        p.links.phonepe = Some("javascript:alert(1)".into());
        assert_eq!(labels(&p), vec![AppLabel::OtherUpiApp]);
    }

    #[test]
    fn only_app_schemes_are_safe_links() {
        for ok in ["upi://pay?pa=a@b", "paytmmp://cash_wallet?x=1", "phonepe://native?data=e30", "https://x.in/p"] {
            assert!(is_safe_link(ok), "{ok}");
        }
        for bad in ["javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,x", "vbscript:x", "no scheme", ""] {
            assert!(!is_safe_link(bad), "{bad}");
        }
    }

    #[test]
    fn phones_are_recognised_by_their_user_agent() {
        let pixel = "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) \
                     Chrome/116.0.0.0 Mobile Safari/537.36";
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148";
        let desktop =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert!(is_mobile_user_agent(pixel) && is_mobile_user_agent(iphone));
        assert!(!is_mobile_user_agent(desktop));
    }

    #[test]
    fn countdown_shows_minutes_and_seconds() {
        assert_eq!(countdown(900), "15:00");
        assert_eq!(countdown(845), "14:05");
        assert_eq!(countdown(9), "0:09");
        assert_eq!(countdown(-3), "0:00");
    }

    #[test]
    fn polling_stops_at_a_final_status() {
        assert_eq!(poll_result(&view(SessionStatus::Open, Some((AttemptStatus::Confirming, None, None)))), None);
        assert_eq!(poll_result(&view(SessionStatus::Open, Some((AttemptStatus::Pending, None, None)))), None);
        assert_eq!(
            poll_result(&view(SessionStatus::Paid, Some((AttemptStatus::Succeeded, None, Some("T"))))),
            Some(Screen::Succeeded { trx_id: "T".into() })
        );
    }

    #[test]
    fn load_and_start_errors_map_to_clear_screens() {
        let http = |status, code, message: &str| ApiError::Http { status, code, message: message.into() };
        assert_eq!(load_error_screen(&ApiError::Network), Screen::Unreachable);
        assert_eq!(load_error_screen(&http(500, ErrorCode::Internal, "")), Screen::Unreachable);
        assert_eq!(load_error_screen(&http(404, ErrorCode::SessionNotFound, "")), Screen::NotFound);

        assert_eq!(after_start_error(&http(409, ErrorCode::PaymentInProgress, "")), AfterStartError::Poll);
        assert_eq!(after_start_error(&http(409, ErrorCode::SessionAlreadyPaid, "")), AfterStartError::Reload);
        assert_eq!(
            after_start_error(&http(409, ErrorCode::SessionExpired, "")),
            AfterStartError::Show(Screen::SessionExpired)
        );
        assert_eq!(
            after_start_error(&http(503, ErrorCode::ProviderUnavailable, "")),
            AfterStartError::Show(Screen::Choose { problem: Some(StartProblem::ProviderUnavailable) })
        );
        assert_eq!(
            after_start_error(&http(502, ErrorCode::ProviderError, "Invalid merchant")),
            AfterStartError::Show(Screen::Choose { problem: Some(StartProblem::Refused("Invalid merchant".into())) })
        );
        assert_eq!(
            after_start_error(&ApiError::Network),
            AfterStartError::Show(Screen::Choose { problem: Some(StartProblem::Unreachable) })
        );
    }

    #[test]
    fn outcomes_fire_the_documented_events() {
        assert_eq!(Screen::Succeeded { trx_id: "T".into() }.outcome(), Some((Outcome::Success, None)));
        assert_eq!(
            Screen::Failed { text: Key::ReasonPin, detail: Some("pin_failed".into()) }.outcome(),
            Some((Outcome::Failure, Some("pin_failed".into())))
        );
        assert_eq!(Screen::Review.outcome(), None, "a review is neither a failure nor a success for the page");
        assert_eq!(Screen::Cancelled.outcome().map(|o| o.0.event()), Some("deshpay:cancel"));
        assert_eq!(Screen::Choose { problem: None }.outcome(), None);
        assert_eq!(Screen::Confirming.status_key(), Some(Key::Confirming));
    }

    #[test]
    fn return_is_recognised_only_for_this_session() {
        let id = "cs_abcdefghijklmnopqrstuvwx";
        assert!(is_return("?deshpay_session=cs_abcdefghijklmnopqrstuvwx&deshpay_status=paid", id));
        assert!(is_return("a=1&deshpay_session=cs_abcdefghijklmnopqrstuvwx", id));
        assert!(!is_return("?deshpay_session=cs_other", id));
        assert!(!is_return("", id));
    }

    #[test]
    fn previews_cover_every_state_name() {
        let v = view(SessionStatus::Open, None);
        for name in [
            "loading",
            "choose",
            "provider-error",
            "no-method",
            "redirecting",
            "confirming",
            "upi-qr",
            "upi-apps",
            "still-confirming",
            "review",
            "success",
            "failed",
            "cancelled",
            "expired",
            "session-expired",
            "session-canceled",
            "not-found",
            "unreachable",
        ] {
            assert!(Screen::preview(name, &v).is_some(), "{name}");
        }
        assert_eq!(Screen::preview("nope", &v), None);
    }
}
