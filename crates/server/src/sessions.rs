//! Checkout sessions: creation by the merchant, the merchant's and the widget's views, lazy expiry.

use crate::clock::rfc3339;
use crate::error::AppError;
use crate::ids;
use crate::state::AppState;
use crate::store::{AttemptRow, AttemptState, RefundRow, SessionRow};
use deshpay_api::{
    AttemptRecord, AttemptRecordStatus, AttemptStatus, AttemptView, CheckoutView, CreateSessionRequest, Currency,
    Method, Money, Payment, Refund, RefundStatus, Session, SessionId, SessionStatus,
};

/// Why a session cannot be had, or cannot take a payment now.
#[derive(Debug)]
pub enum SessionError {
    /// No such session.
    NotFound(SessionId),
    /// Paid already.
    AlreadyPaid,
    /// Past its expiry.
    Expired,
    /// Canceled by the merchant.
    Canceled,
    /// The session does not offer this method.
    MethodNotAvailable(Method),
    /// Our store failed.
    Internal(AppError),
}

impl SessionError {
    /// The public message.
    pub fn message(&self) -> String {
        match self {
            SessionError::NotFound(id) => format!("no session {id}"),
            SessionError::AlreadyPaid => "this session is already paid".into(),
            SessionError::Expired => "this session has expired".into(),
            SessionError::Canceled => "this session was canceled".into(),
            SessionError::MethodNotAvailable(m) => method_unavailable_message(*m).into(),
            SessionError::Internal(e) => e.message.clone(),
        }
    }
}

crate::error::internal_from!(SessionError);

/// Smallest amount bKash accepts (1 BDT); the same floor is used for INR.
const MIN_MINOR: i64 = 100;

/// Why a session was not created (nothing was written, except for `Internal`).
#[derive(Debug)]
pub enum CreateError {
    /// Not a currency we take.
    InvalidCurrency(String),
    /// Not a valid amount in it.
    InvalidAmount(String),
    /// Another field is wrong.
    Invalid(String),
    /// A method is not available for this currency or backend.
    MethodNotAvailable(String),
    /// The invoice already has a live or paid session.
    InvoiceInUse(String),
    /// Our store failed.
    Internal(AppError),
}

crate::error::internal_from!(CreateError);

fn invalid(message: impl Into<String>) -> CreateError {
    CreateError::Invalid(message.into())
}

/// The hosted page's themes (the widget's presets).
pub const PAGE_THEMES: [&str; 4] = ["light", "dark", "bkash", "high-contrast"];
/// The hosted page's languages (the widget's).
pub const PAGE_LOCALES: [&str; 3] = ["en", "bn", "hi"];
/// The longest lifetime of a session (seconds).
pub const MAX_SESSION_SECS: u32 = 86_400;
/// The longest lifetime of a payment link, and its default (seconds): 7 days.
pub const MAX_LINK_SECS: u32 = 7 * 86_400;

/// The hosted payment page of a session: `{public_url}/pay/{id}`.
pub fn page_url(public_url: &str, id: &SessionId) -> String {
    format!("{}/pay/{id}", public_url.trim_end_matches('/'))
}

/// Validates a create request into a session row; `public_url` is the backend's own origin (a session without a
/// return URL returns to its hosted page there).
///
/// # Errors
/// A typed 400 for every field that is wrong.
pub fn validate_new_session(
    req: &CreateSessionRequest,
    now: i64,
    default_ttl: u32,
    upi_enabled: bool,
    public_url: &str,
) -> Result<SessionRow, CreateError> {
    let currency: Currency =
        req.currency.parse().map_err(|e: deshpay_api::MoneyError| CreateError::InvalidCurrency(e.to_string()))?;
    let amount = Money::parse_positive(&req.amount, currency).map_err(|e| CreateError::InvalidAmount(e.to_string()))?;
    if amount.minor() < MIN_MINOR {
        return Err(CreateError::InvalidAmount("amount must be at least 1.00".into()));
    }
    let invoice = req.invoice.trim();
    if invoice.is_empty() || invoice.chars().count() > 255 || invoice.contains(['<', '>', '&']) {
        return Err(invalid("invoice must be 1 to 255 characters without < > &"));
    }
    if req.link && req.return_url.is_some() {
        return Err(invalid("a payment link has no return_url: the customer stays on its page (use success_url)"));
    }
    let return_url = match &req.return_url {
        Some(url) => Some(
            url::Url::parse(url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| invalid("return_url must be an absolute http or https URL"))?,
        ),
        None => None,
    };
    let mut methods = Vec::new();
    for name in &req.methods {
        let method = Method::parse(name).ok_or_else(|| invalid(format!("unknown method {name:?} (bkash or upi)")))?;
        if method.currency() != currency {
            return Err(CreateError::InvalidCurrency(format!(
                "{} takes {}, not {currency}",
                method.as_str(),
                method.currency()
            )));
        }
        if !methods.contains(&method) {
            methods.push(method);
        }
    }
    if methods.is_empty() {
        methods = [Method::Bkash, Method::Upi].into_iter().filter(|m| m.currency() == currency).collect();
    }
    if methods.contains(&Method::Upi) && !upi_enabled {
        return Err(CreateError::MethodNotAvailable("UPI is not configured on this backend".into()));
    }
    if req.description.as_ref().is_some_and(|d| d.chars().count() > 500) {
        return Err(invalid("description must be at most 500 characters"));
    }
    let (ttl, max) = if req.link {
        (req.expires_in.unwrap_or(MAX_LINK_SECS), MAX_LINK_SECS)
    } else {
        (req.expires_in.unwrap_or(default_ttl), MAX_SESSION_SECS)
    };
    if !(60..=max).contains(&ttl) {
        return Err(invalid(format!(
            "expires_in must be between 60 and {max} seconds{}",
            if req.link { " for a payment link" } else { "" }
        )));
    }
    if let Some(theme) = req.theme.as_deref().filter(|t| !PAGE_THEMES.contains(t)) {
        return Err(invalid(format!("unknown theme {theme:?} (light, dark, bkash or high-contrast)")));
    }
    if let Some(locale) = req.locale.as_deref().filter(|l| !PAGE_LOCALES.contains(l)) {
        return Err(invalid(format!("unknown locale {locale:?} (en, bn or hi)")));
    }
    let id = ids::session_id();
    let hosted_return = return_url.is_none();
    Ok(SessionRow {
        return_url: return_url.map_or_else(|| page_url(public_url, &id), |u| u.to_string()),
        id,
        amount,
        invoice: invoice.to_owned(),
        description: req.description.clone().filter(|d| !d.trim().is_empty()),
        hosted_return,
        link: req.link,
        page_theme: req.theme.clone(),
        page_locale: req.locale.clone(),
        success_url: req.success_url.clone(),
        methods,
        status: SessionStatus::Open,
        paid_attempt_id: None,
        created_at: now,
        expires_at: now + i64::from(ttl) * 1000,
    })
}

/// The merchant's view of a session from its rows.
fn session_view(
    public_url: &str,
    row: SessionRow,
    payment: Option<Payment>,
    refunds: Vec<RefundRow>,
    attempts: Vec<AttemptRecord>,
) -> Result<Session, AppError> {
    // What was refunded of the payment (automatic refunds of a duplicate are listed but not counted here).
    let refunded: i64 = refunds
        .iter()
        .filter(|r| r.status == RefundStatus::Completed && Some(&r.attempt_id) == row.paid_attempt_id.as_ref())
        .map(|r| r.amount.minor())
        .sum();
    let refunded = Money::from_minor(refunded, row.amount.currency()).map_err(AppError::internal)?;
    Ok(Session {
        id: row.id.clone(),
        status: row.status,
        amount: row.amount.to_decimal(),
        amount_minor: row.amount.minor(),
        currency: row.amount.currency(),
        invoice: row.invoice,
        methods: row.methods,
        description: row.description,
        url: page_url(public_url, &row.id),
        return_url: if row.hosted_return { None } else { Some(row.return_url) },
        link: row.link,
        theme: row.page_theme,
        locale: row.page_locale,
        success_url: row.success_url,
        created_at: rfc3339(row.created_at),
        expires_at: rfc3339(row.expires_at),
        payment,
        refunded: refunded.to_decimal(),
        refunds: refunds.into_iter().map(refund_view).collect(),
        attempts,
    })
}

/// Maps the backend's attempt state to what the widget shows.
pub fn attempt_status(state: AttemptState) -> AttemptStatus {
    match state {
        AttemptState::Creating | AttemptState::Created => AttemptStatus::Pending,
        AttemptState::Executing => AttemptStatus::Confirming,
        AttemptState::Completed => AttemptStatus::Succeeded,
        AttemptState::Failed | AttemptState::CreateFailed | AttemptState::Superseded => AttemptStatus::Failed,
        AttemptState::Review => AttemptStatus::Review,
        AttemptState::Cancelled => AttemptStatus::Cancelled,
        AttemptState::Expired => AttemptStatus::Expired,
    }
}

impl AppState {
    /// Creates a session.
    ///
    /// # Errors
    /// Validation errors, `invoice_in_use`, or internal.
    pub async fn create_session(&self, req: &CreateSessionRequest) -> Result<Session, CreateError> {
        let now = self.clock.now_ms();
        let row = validate_new_session(
            req,
            now,
            self.settings.merchant.session_ttl_secs,
            self.providers.bestin.is_some(),
            &self.public_url,
        )?;
        if let Some(existing) = self.store.insert_session_for_invoice(&row, now).await? {
            return Err(CreateError::InvoiceInUse(format!(
                "invoice {} already has session {} ({})",
                row.invoice,
                existing.id,
                existing.status.as_str()
            )));
        }
        tracing::info!(session = %row.id, amount = %row.amount, "session created");
        // Just written: no payment, refund or attempt to read back yet.
        Ok(session_view(&self.public_url, row, None, Vec::new(), Vec::new())?)
    }

    /// Loads a session, applying lazy expiry.
    ///
    /// # Errors
    /// [`SessionError::NotFound`] or internal.
    pub async fn load_session(&self, id: &SessionId) -> Result<SessionRow, SessionError> {
        let now = self.clock.now_ms();
        let mut row = self.store.session(id).await?.ok_or_else(|| SessionError::NotFound(id.clone()))?;
        if row.status == SessionStatus::Open && row.expires_at <= now {
            self.expire_if_due(&mut row).await?;
        }
        Ok(row)
    }

    /// Loads a session that can start a payment with `method` now.
    ///
    /// # Errors
    /// A [`SessionError`].
    pub async fn payable_session(&self, id: &SessionId, method: Method) -> Result<SessionRow, SessionError> {
        let session = self.load_session(id).await?;
        match session.status {
            SessionStatus::Open => {}
            SessionStatus::Paid => return Err(SessionError::AlreadyPaid),
            SessionStatus::Expired => return Err(SessionError::Expired),
            SessionStatus::Canceled => return Err(SessionError::Canceled),
        }
        if !session.methods.contains(&method) || session.amount.currency() != method.currency() {
            return Err(SessionError::MethodNotAvailable(method));
        }
        Ok(session)
    }

    /// The merchant's view of a session.
    ///
    /// # Errors
    /// Internal.
    pub async fn merchant_view(&self, row: SessionRow) -> Result<Session, AppError> {
        let payment = match &row.paid_attempt_id {
            Some(id) => self.store.attempt(id).await?.map(|a| payment_of(&a)),
            None => None,
        };
        let refunds = self.store.refunds(&row.id).await?;
        let attempts = self.store.attempts_of(&row.id).await?.iter().map(attempt_record).collect();
        session_view(&self.public_url, row, payment, refunds, attempts)
    }

    /// The widget's view: no return URL, no payer details.
    ///
    /// # Errors
    /// `session_not_found` or internal.
    pub async fn checkout_view(&self, id: &SessionId) -> Result<CheckoutView, AppError> {
        let mut row = self.load_session(id).await?;
        let latest = self.store.latest_attempt(id).await?;
        // A payment completes its attempt and its session in one transaction, but they are read here in two
        // statements: when the completion falls between them, the attempt shows it and a second read of the
        // session does too (so a view never says "succeeded" for an open session).
        if latest.as_ref().is_some_and(|a| a.state == AttemptState::Completed) && row.status != SessionStatus::Paid {
            row = self.load_session(id).await?;
        }
        let attempt = latest.map(|a| AttemptView {
            id: a.id.clone(),
            method: a.method,
            status: attempt_status(a.state),
            reason: crate::reasons::reason_for(
                a.state,
                a.method,
                a.failure_code.as_deref(),
                a.failure_message.as_deref(),
            ),
            // The provider's words stay in the merchant API: the widget words the reason code itself.
            message: None,
            trx_id: if a.state == AttemptState::Completed { a.trx_id.clone() } else { None },
        });
        Ok(CheckoutView {
            id: row.id,
            status: row.status,
            amount: row.amount.to_decimal(),
            amount_minor: row.amount.minor(),
            currency: row.amount.currency(),
            invoice: row.invoice,
            description: row.description,
            methods: row.methods,
            expires_at: rfc3339(row.expires_at),
            merchant_name: self.settings.merchant.name.clone(),
            attempt,
        })
    }
}

fn method_unavailable_message(method: Method) -> &'static str {
    match method {
        Method::Bkash => "this session does not offer bKash",
        Method::Upi => "this session does not offer UPI",
    }
}

/// The merchant's record of an attempt: status, provider ids and the provider's own reason.
fn attempt_record(a: &AttemptRow) -> AttemptRecord {
    AttemptRecord {
        id: a.id.clone(),
        method: a.method,
        status: match a.state {
            AttemptState::Creating => AttemptRecordStatus::Creating,
            AttemptState::Created => AttemptRecordStatus::Created,
            AttemptState::Executing => AttemptRecordStatus::Executing,
            AttemptState::Completed => AttemptRecordStatus::Completed,
            AttemptState::Failed => AttemptRecordStatus::Failed,
            AttemptState::Cancelled => AttemptRecordStatus::Cancelled,
            AttemptState::CreateFailed => AttemptRecordStatus::CreateFailed,
            AttemptState::Superseded => AttemptRecordStatus::Superseded,
            AttemptState::Review => AttemptRecordStatus::Review,
            AttemptState::Expired => AttemptRecordStatus::Expired,
        },
        amount: a.amount.to_decimal(),
        currency: a.amount.currency(),
        payment_id: a.provider_ref.clone(),
        trx_id: a.trx_id.clone(),
        payer: a.payer.clone(),
        code: a.failure_code.clone(),
        message: a.failure_message.clone(),
        late: a.late,
        created_at: rfc3339(a.created_at),
        updated_at: rfc3339(a.updated_at),
    }
}

fn payment_of(a: &AttemptRow) -> Payment {
    Payment {
        method: a.method,
        attempt_id: a.id.clone(),
        payment_id: a.provider_ref.clone(),
        trx_id: a.trx_id.clone().unwrap_or_default(),
        payer: a.payer.clone(),
        paid_at: rfc3339(a.updated_at),
    }
}

/// The wire form of a refund row.
pub fn refund_view(r: crate::store::RefundRow) -> Refund {
    Refund {
        id: r.id,
        session_id: r.session_id,
        amount: r.amount.to_decimal(),
        currency: r.amount.currency(),
        status: r.status,
        refund_trx_id: r.refund_trx_id,
        reason: r.reason,
        failure_message: r.failure_message,
        created_at: rfc3339(r.created_at),
    }
}
