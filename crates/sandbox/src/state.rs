//! The sandbox's in-memory world: clock, tokens, payments, counters and queued faults, and the
//! Bestin Pay world beside it ([`crate::bestin::Bestin`]).
//!
//! Everything sits behind one `std::sync::Mutex` that is never held across an `.await`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, UtcOffset};

use crate::BkashCredentials;
use crate::bestin::{Bestin, BestinCredentials, BestinOptions};

pub(crate) const SECOND_MS: i64 = 1_000;
pub(crate) const MINUTE_MS: i64 = 60 * SECOND_MS;
pub(crate) const HOUR_MS: i64 = 60 * MINUTE_MS;
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;

/// The wallets the hosted page knows (bKash's published sandbox wallets).
pub(crate) const SUCCESS_WALLETS: [&str; 6] =
    ["01770618575", "01929918378", "01770618576", "01877722345", "01619777282", "01619777283"];
/// Passes the hosted page, then Execute answers 2023 Insufficient Balance.
pub(crate) const INSUFFICIENT_BALANCE_WALLET: &str = "01823074817";
/// Passes the hosted page, then Execute answers 2037 (bKash's "Debit Block" wallet).
pub(crate) const DEBIT_BLOCK_WALLET: &str = "01823074818";
pub(crate) const OTP: &str = "123456";
/// bKash's emails disagree on the PIN (12121 for all, or per wallet), so every wallet takes all three.
pub(crate) const PINS: [&str; 3] = ["12121", "21212", "13131"];

pub(crate) fn is_known_wallet(wallet: &str) -> bool {
    SUCCESS_WALLETS.contains(&wallet) || wallet == INSUFFICIENT_BALANCE_WALLET || wallet == DEBIT_BLOCK_WALLET
}

pub(crate) fn is_wallet_format(wallet: &str) -> bool {
    wallet.len() == 11 && wallet.starts_with("01") && wallet.bytes().all(|b| b.is_ascii_digit())
}

/// Shared handle on the sandbox state; cheap to clone, one per [`crate::router`].
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Mutex<State>>,
}

impl AppState {
    /// A fresh sandbox whose hosted-page links start with `public_url` (no trailing slash needed),
    /// with Bestin Pay's default account and options.
    pub fn new(public_url: impl Into<String>, bkash: BkashCredentials) -> Self {
        Self::with_bestin(public_url, bkash, BestinCredentials::sandbox_default(), BestinOptions::default())
    }

    /// Like [`AppState::new`], with Bestin Pay's account and behaviour given.
    pub fn with_bestin(
        public_url: impl Into<String>,
        bkash: BkashCredentials,
        bestin: BestinCredentials,
        bestin_options: BestinOptions,
    ) -> Self {
        let public_url = public_url.into().trim_end_matches('/').to_owned();
        let bestin = Bestin::new(bestin, bestin_options);
        Self { inner: Arc::new(Mutex::new(State::new(public_url, bkash, bestin, crate::ipn::Ipn::new()))) }
    }

    /// Locks the state. A panic in another handler must not take the whole sandbox down, so a
    /// poisoned lock is simply taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Debug)]
pub(crate) struct State {
    pub public_url: String,
    pub creds: BkashCredentials,
    /// Milliseconds added to the system clock (moved by `/__sandbox/clock/advance`).
    pub offset_ms: i64,
    pub grants: HashMap<String, GrantLog>,
    pub id_tokens: HashMap<String, IssuedToken>,
    pub refresh_tokens: HashMap<String, IssuedToken>,
    pub payments: HashMap<String, Payment>,
    /// Original trxID -> paymentID.
    pub trx_index: HashMap<String, String>,
    /// Every trxID handed out (payments and refunds), so none repeats.
    pub trx_ids: HashSet<String>,
    pub counters: Counters,
    pub faults: HashMap<Endpoint, VecDeque<Fault>>,
    pub bestin: Bestin,
    /// bKash's IPN over SNS: the subscription, messages and their faults.
    pub ipn: crate::ipn::Ipn,
}

impl State {
    fn new(public_url: String, creds: BkashCredentials, bestin: Bestin, ipn: crate::ipn::Ipn) -> Self {
        Self {
            public_url,
            creds,
            offset_ms: 0,
            grants: HashMap::new(),
            id_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            payments: HashMap::new(),
            trx_index: HashMap::new(),
            trx_ids: HashSet::new(),
            counters: Counters::default(),
            faults: HashMap::new(),
            bestin,
            ipn,
        }
    }

    /// Forgets everything but the configuration (Bestin Pay's balance goes back to the opening one).
    pub fn reset(&mut self) {
        let public_url = std::mem::take(&mut self.public_url);
        let creds = self.creds.clone();
        let bestin = self.bestin.fresh();
        let ipn = self.ipn.fresh();
        *self = Self::new(public_url, creds, bestin, ipn);
    }

    /// The sandbox clock: system time plus the test-controlled offset, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        system.saturating_add(self.offset_ms)
    }

    pub fn next_fault(&mut self, endpoint: Endpoint) -> Option<Fault> {
        let queue = self.faults.get_mut(&endpoint)?;
        let front = queue.front_mut()?;
        let fault = front.clone();
        front.times = front.times.saturating_sub(1);
        if front.times == 0 {
            queue.pop_front();
        }
        Some(fault)
    }

    /// A trxID nobody has had yet: 10 upper-case alphanumerics like bKash's `BFB40JWCC6`.
    pub fn new_trx_id(&mut self) -> String {
        loop {
            let id = random_upper_alnum(10);
            if self.trx_ids.insert(id.clone()) {
                return id;
            }
        }
    }

    pub fn new_payment_id(&self) -> String {
        loop {
            let id = format!("TR0011{}", random_alnum(15));
            if !self.payments.contains_key(&id) {
                return id;
            }
        }
    }
}

/// Successful grants per app_key, for the 2-per-hour limit.
#[derive(Debug, Default)]
pub(crate) struct GrantLog {
    pub successes_ms: Vec<i64>,
    pub blocked_until_ms: Option<i64>,
}

#[derive(Debug)]
pub(crate) struct IssuedToken {
    pub app_key: String,
    pub expires_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PaymentStatus {
    /// Created; the customer has not finished the hosted page.
    Initiated,
    /// The customer finished the hosted page (wallet, OTP, PIN); waiting for Execute.
    Approved,
    Completed,
    /// Three wrong OTPs or PINs on the page, or a failed Execute.
    Failed,
    /// Close, then Yes on the page.
    Cancelled,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initiated => "initiated",
            Self::Approved => "approved",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Where the customer is on the hosted page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageStep {
    Wallet,
    Otp,
    Pin,
}

#[derive(Debug)]
pub(crate) struct Payment {
    pub id: String,
    pub hash: String,
    pub signature: String,
    pub app_key: String,
    pub payer_reference: String,
    pub callback_url: String,
    /// The amount string exactly as the merchant sent it (bKash echoes it).
    pub amount: String,
    pub amount_minor: u64,
    pub currency: String,
    pub intent: String,
    pub invoice: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub status: PaymentStatus,
    pub step: PageStep,
    pub wallet: Option<String>,
    pub otp_failures: u8,
    pub pin_failures: u8,
    pub verified: bool,
    pub execute_calls: u32,
    pub trx_id: Option<String>,
    pub executed_ms: Option<i64>,
    pub refunds: Vec<Refund>,
    /// The trxID announced by the IPN before Execute (Execute then completes with it).
    pub reserved_trx_id: Option<String>,
    /// Whether an IPN was published for this payment.
    pub ipn_announced: bool,
}

impl Payment {
    /// `callbackURL` plus the query bKash adds, with `?` or `&` as the URL needs.
    pub fn callback_with_status(&self, status: &str) -> String {
        let sep = if self.callback_url.ends_with('?') || self.callback_url.ends_with('&') {
            ""
        } else if self.callback_url.contains('?') {
            "&"
        } else {
            "?"
        };
        format!("{}{sep}paymentID={}&status={status}&signature={}", self.callback_url, self.id, self.signature)
    }

    /// Where the hosted page sends the browser: the callback URL plus `apiVersion`, like bKash's page script.
    pub fn redirect_for(&self, status: &str) -> String {
        format!("{}&apiVersion=1.2.0-beta", self.callback_with_status(status))
    }

    pub fn bkash_url(&self, public_url: &str) -> String {
        format!(
            "{public_url}/redirect/tokenized/?paymentID={}&hash={}&mode=0011&apiVersion=v1.2.0-beta",
            self.id, self.hash
        )
    }

    pub fn refunded_minor(&self) -> u64 {
        self.refunds.iter().map(|r| r.amount_minor).sum()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Refund {
    pub trx_id: String,
    pub amount: String,
    pub amount_minor: u64,
    pub sku: String,
    pub reason: String,
    pub completed_ms: i64,
}

/// Calls that reached each handler, faulted or not.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct Counters {
    pub grant: u64,
    pub grant_rejected: u64,
    pub refresh: u64,
    pub create: u64,
    pub execute: u64,
    pub query: u64,
    pub search: u64,
    pub refund: u64,
    pub refund_status: u64,
}

impl Counters {
    pub fn bump(&mut self, endpoint: Endpoint) {
        let counter = match endpoint {
            Endpoint::Grant => &mut self.grant,
            Endpoint::Refresh => &mut self.refresh,
            Endpoint::Create => &mut self.create,
            Endpoint::Execute => &mut self.execute,
            Endpoint::Query => &mut self.query,
            Endpoint::Search => &mut self.search,
            Endpoint::Refund => &mut self.refund,
            Endpoint::RefundStatus => &mut self.refund_status,
        };
        *counter += 1;
    }
}

/// The bKash operations that counters and faults are kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Endpoint {
    Grant,
    Refresh,
    Create,
    Execute,
    Query,
    Search,
    Refund,
    RefundStatus,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Refresh => "refresh",
            Self::Create => "create",
            Self::Execute => "execute",
            Self::Query => "query",
            Self::Search => "search",
            Self::Refund => "refund",
            Self::RefundStatus => "refund_status",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FaultResponse {
    #[default]
    Normal,
    HttpStatus,
    Message,
    Garbage,
    /// bKash's own error envelope with `code` and `message` (HTTP 200), e.g. a system error 2003 or 9999 that
    /// arrives after (`process: true`) or instead of the operation.
    Code,
}

/// One queued misbehaviour, as posted to `/__sandbox/bkash/faults`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Fault {
    pub endpoint: Endpoint,
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default)]
    pub response: FaultResponse,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub message: Option<String>,
    /// bKash statusCode for the `code` response.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default = "default_true")]
    pub process: bool,
    #[serde(default = "default_one")]
    pub times: u32,
}

fn default_true() -> bool {
    true
}

fn default_one() -> u32 {
    1
}

pub(crate) fn random_alnum(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

pub(crate) fn random_upper_alnum(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..len).map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())])).collect()
}

/// bKash's timestamp format, in Dhaka time: `2019-09-03T22:55:37:813 GMT+0600`
/// (a colon before the milliseconds; not ISO 8601).
pub(crate) fn bkash_time(unix_ms: i64) -> String {
    let dhaka = UtcOffset::from_hms(6, 0, 0).unwrap_or(UtcOffset::UTC);
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(dhaka);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}:{:03} GMT+0600",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// A bKash amount string ("1499", "250.75"): digits with at most two decimals, in poisha.
pub(crate) fn parse_amount(s: &str) -> Option<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    // Twelve digits of taka is far beyond any wallet limit and keeps the arithmetic exact.
    if whole.is_empty() || whole.len() > 12 || !digits(whole) || !digits(frac) {
        return None;
    }
    if s.contains('.') && (frac.is_empty() || frac.len() > 2) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let frac: u64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<u64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    whole.checked_mul(100)?.checked_add(frac)
}

pub(crate) fn format_minor(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// `01770618575` -> `017 ** *** 575`, the way bKash's page shows the wallet.
pub(crate) fn mask_wallet(wallet: &str) -> String {
    if wallet.len() == 11 && wallet.is_ascii() {
        format!("{} ** *** {}", &wallet[..3], &wallet[8..])
    } else {
        "*****".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_to_poisha_with_at_most_two_decimals() {
        assert_eq!(parse_amount("1499"), Some(149_900));
        assert_eq!(parse_amount("250.75"), Some(25_075));
        assert_eq!(parse_amount("1.5"), Some(150));
        assert_eq!(parse_amount("0.99"), Some(99));
        for bad in ["", "1.", ".5", "1.234", "-1", "1e3", "12 ", "abc", "1,000"] {
            assert_eq!(parse_amount(bad), None, "{bad:?}");
        }
        assert_eq!(format_minor(25_075), "250.75");
    }

    #[test]
    fn bkash_time_is_dhaka_time_with_a_colon_before_millis() {
        // 2019-09-03T16:55:37.813Z
        assert_eq!(bkash_time(1_567_529_737_813), "2019-09-03T22:55:37:813 GMT+0600");
    }

    #[test]
    fn wallets_are_masked_like_the_hosted_page() {
        assert_eq!(mask_wallet("01770618575"), "017 ** *** 575");
    }
}
