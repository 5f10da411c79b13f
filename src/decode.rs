//! Reading JS values (the `mount` options, API responses parsed by the browser's `JSON.parse`) into Rust types
//! without serde.
//!
//! serde-wasm-bindgen plus the derived `Deserialize` impls cost about a tenth of the wasm (its error messages
//! also pull in float formatting), so the widget reads objects field by field with `Reflect.get` instead. The
//! rules follow what the derived impls accepted: a required field that is missing or has the wrong type fails
//! the whole value; `Option` fields accept a missing field, `undefined` and `null` as `None`; unknown fields are
//! ignored; enums accept exactly their wire names (except [`ErrorCode`], whose unknown codes are `Other`).
//!
//! A new response type gets a [`Decode`] impl built from [`Obj`]'s getters, e.g.
//! `Some(StartBkashResponse { attempt_id: AttemptId::parse(&o.string("attempt_id")?).ok()?, .. })`.

use crate::config::{MountOptions, PreviewOptions};
use deshpay_api::{
    ApiError, AttemptId, AttemptStatus, AttemptView, CheckoutView, ErrorBody, ErrorCode, Method, QrSvg, SessionId,
    SessionStatus, StartBkashResponse, StartUpiResponse, UpiLinks,
};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// A type read from a JS value; `None` when the value does not have the expected shape.
pub trait Decode: Sized {
    /// Reads `value`.
    fn decode(value: JsValue) -> Option<Self>;
}

/// Parses JSON text with the browser's `JSON.parse` and decodes it.
pub fn from_json<T: Decode>(text: &str) -> Option<T> {
    T::decode(js_sys::JSON::parse(text).ok()?)
}

/// A JS object whose fields are read one by one. Getters return `None` for a missing field or a wrong type;
/// the `opt_*` getters return `Some(None)` for a missing, `undefined` or `null` field.
#[derive(Debug, Clone)]
pub struct Obj(JsValue);

impl Obj {
    /// `value` as an object (not `null`, not a primitive).
    pub fn new(value: JsValue) -> Option<Obj> {
        value.is_object().then_some(Obj(value))
    }

    /// A field, `undefined` when missing; `None` only when reading it threw (a getter, a proxy).
    fn get(&self, field: &str) -> Option<JsValue> {
        Reflect::get(&self.0, &JsValue::from_str(field)).ok()
    }

    /// A field that may be absent: `Some(None)` when missing, `undefined` or `null`.
    fn get_opt(&self, field: &str) -> Option<Option<JsValue>> {
        let value = self.get(field)?;
        Some((!value.is_undefined() && !value.is_null()).then_some(value))
    }

    /// A string field.
    pub fn string(&self, field: &str) -> Option<String> {
        self.get(field)?.as_string()
    }

    /// An optional string field.
    pub fn opt_string(&self, field: &str) -> Option<Option<String>> {
        match self.get_opt(field)? {
            None => Some(None),
            Some(value) => value.as_string().map(Some),
        }
    }

    /// An integer field: a JS number that is a safe integer (|n| < 2^53), so that the conversion is exact.
    pub fn int(&self, field: &str) -> Option<i64> {
        let value = self.get(field)?;
        // `as` is exact here: a safe integer fits an i64 without rounding.
        js_sys::Number::is_safe_integer(&value).then(|| value.as_f64().map(|n| n as i64)).flatten()
    }

    /// An optional boolean field.
    pub fn opt_bool(&self, field: &str) -> Option<Option<bool>> {
        match self.get_opt(field)? {
            None => Some(None),
            Some(value) => value.as_bool().map(Some),
        }
    }

    /// An object field.
    pub fn obj(&self, field: &str) -> Option<Obj> {
        Obj::new(self.get(field)?)
    }

    /// An optional object field.
    pub fn opt_obj(&self, field: &str) -> Option<Option<Obj>> {
        match self.get_opt(field)? {
            None => Some(None),
            Some(value) => Obj::new(value).map(Some),
        }
    }

    /// An optional field of a [`Decode`] type.
    pub fn opt<T: Decode>(&self, field: &str) -> Option<Option<T>> {
        match self.get_opt(field)? {
            None => Some(None),
            Some(value) => T::decode(value).map(Some),
        }
    }

    /// An array field whose every element is read by `item`.
    pub fn array<T>(&self, field: &str, item: impl FnMut(JsValue) -> Option<T>) -> Option<Vec<T>> {
        self.get(field)?.dyn_into::<Array>().ok()?.iter().map(item).collect()
    }

    /// The object's own enumerable string-valued entries (`Object.entries`); `None` if a value is not a string.
    pub fn string_entries(&self) -> Option<Vec<(String, String)>> {
        let object: &Object = self.0.dyn_ref()?;
        Object::entries(object)
            .iter()
            .map(|entry| {
                let pair: Array = entry.dyn_into().ok()?;
                Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
            })
            .collect()
    }
}

fn session_status(s: &str) -> Option<SessionStatus> {
    [SessionStatus::Open, SessionStatus::Paid, SessionStatus::Expired, SessionStatus::Canceled]
        .into_iter()
        .find(|status| status.as_str() == s)
}

fn attempt_status(s: &str) -> Option<AttemptStatus> {
    Some(match s {
        "pending" => AttemptStatus::Pending,
        "confirming" => AttemptStatus::Confirming,
        "succeeded" => AttemptStatus::Succeeded,
        "failed" => AttemptStatus::Failed,
        "cancelled" => AttemptStatus::Cancelled,
        "expired" => AttemptStatus::Expired,
        "review" => AttemptStatus::Review,
        _ => return None,
    })
}

/// Every error code, to read the wire name; unknown names are [`ErrorCode::Other`] as with serde.
fn error_code(s: &str) -> ErrorCode {
    use ErrorCode::*;
    [
        InvalidJson,
        InvalidRequest,
        InvalidAmount,
        InvalidCurrency,
        MethodNotAvailable,
        InvoiceInUse,
        Unauthorized,
        SessionNotFound,
        SessionAlreadyPaid,
        SessionExpired,
        SessionCanceled,
        PaymentInProgress,
        PaymentNotFound,
        RefundExceedsPayment,
        RefundFailed,
        TransactionNotFound,
        IdempotencyConflict,
        InsufficientBalance,
        PayoutNotFound,
        NothingToCancel,
        InvalidNotification,
        ProviderUnavailable,
        ProviderError,
        NotFound,
        Internal,
    ]
    .into_iter()
    .find(|code| code.as_str() == s)
    .unwrap_or(Other)
}

impl Decode for AttemptView {
    fn decode(value: JsValue) -> Option<Self> {
        let o = Obj::new(value)?;
        Some(AttemptView {
            id: AttemptId::parse(&o.string("id")?).ok()?,
            method: Method::parse(&o.string("method")?)?,
            status: attempt_status(&o.string("status")?)?,
            reason: o.opt_string("reason")?.map(|r| deshpay_api::ReasonCode::parse(&r)),
            message: o.opt_string("message")?,
            trx_id: o.opt_string("trx_id")?,
        })
    }
}

impl Decode for CheckoutView {
    fn decode(value: JsValue) -> Option<Self> {
        let o = Obj::new(value)?;
        Some(CheckoutView {
            id: SessionId::parse(&o.string("id")?).ok()?,
            status: session_status(&o.string("status")?)?,
            amount: o.string("amount")?,
            amount_minor: o.int("amount_minor")?,
            currency: o.string("currency")?.parse().ok()?,
            invoice: o.string("invoice")?,
            description: o.opt_string("description")?,
            methods: o.array("methods", |m| Method::parse(&m.as_string()?))?,
            expires_at: o.string("expires_at")?,
            merchant_name: o.string("merchant_name")?,
            attempt: o.opt("attempt")?,
        })
    }
}

impl Decode for StartBkashResponse {
    fn decode(value: JsValue) -> Option<Self> {
        let o = Obj::new(value)?;
        Some(StartBkashResponse {
            attempt_id: AttemptId::parse(&o.string("attempt_id")?).ok()?,
            redirect_url: o.string("redirect_url")?,
        })
    }
}

impl Decode for UpiLinks {
    fn decode(value: JsValue) -> Option<Self> {
        let o = Obj::new(value)?;
        Some(UpiLinks { paytm: o.opt_string("paytm")?, phonepe: o.opt_string("phonepe")?, upi: o.string("upi")? })
    }
}

impl Decode for QrSvg {
    fn decode(value: JsValue) -> Option<Self> {
        let o = Obj::new(value)?;
        Some(QrSvg { size: u32::try_from(o.int("size")?).ok()?, path: o.string("path")? })
    }
}

impl Decode for StartUpiResponse {
    fn decode(value: JsValue) -> Option<Self> {
        let o = Obj::new(value)?;
        Some(StartUpiResponse {
            attempt_id: AttemptId::parse(&o.string("attempt_id")?).ok()?,
            links: UpiLinks::decode(o.obj("links")?.0)?,
            qr: o.string("qr")?,
            qr_svg: o.opt("qr_svg")?,
            expires_at: o.string("expires_at")?,
        })
    }
}

impl Decode for ErrorBody {
    fn decode(value: JsValue) -> Option<Self> {
        let error = Obj::new(value)?.obj("error")?;
        Some(ErrorBody {
            error: ApiError { code: error_code(&error.string("code")?), message: error.string("message")? },
        })
    }
}

impl Decode for PreviewOptions {
    fn decode(value: JsValue) -> Option<Self> {
        let o = Obj::new(value)?;
        Some(PreviewOptions {
            state: o.opt_string("state")?,
            view: o.opt("view")?,
            returned: o.opt_bool("returned")?,
            upi: o.opt("upi")?,
        })
    }
}

impl Decode for MountOptions {
    fn decode(value: JsValue) -> Option<Self> {
        let o = Obj::new(value)?;
        let strings = match o.opt_obj("strings")? {
            None => None,
            Some(strings) => Some(strings.string_entries()?),
        };
        let texts = match o.get_opt("texts")? {
            None => None,
            Some(texts) => Some(texts.dyn_into::<Array>().ok()?.iter().map(|t| t.as_string()).collect::<Option<_>>()?),
        };
        Some(MountOptions {
            session: o.opt_string("session")?,
            endpoint: o.opt_string("endpoint")?,
            theme: o.opt_string("theme")?,
            locale: o.opt_string("locale")?,
            strings,
            preview: o.opt("preview")?,
            texts,
        })
    }
}
