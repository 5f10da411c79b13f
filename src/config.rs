//! The `mount` options, read once into a [`Config`].

use crate::cat;
use crate::i18n::{Locale, Strings};
use crate::state::{Screen, UpiPayment, is_return};
use crate::theme::Preset;
use deshpay_api::{CheckoutView, SessionId, StartUpiResponse};
use serde::Deserialize;
use std::collections::HashMap;

/// The options object of `DeshPay.mount(element, options)` as the loader passes it to the wasm side. The
/// loader has already applied a theme object (as `--deshpay-*` properties on the host) and attached the
/// callbacks, so `theme` here is only a preset name. Every field is optional because JS passes `undefined`
/// for options not given. The wasm build reads it with [`crate::decode`]; the `Deserialize` impl serves the
/// native tests.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MountOptions {
    /// Checkout session id (`cs_...`).
    pub session: Option<String>,
    /// Base URL of the merchant backend, e.g. `https://shop.example/pay`.
    pub endpoint: Option<String>,
    /// Preset name: `light`, `dark`, `bkash`, `high-contrast`.
    pub theme: Option<String>,
    /// `en`, `bn` or `hi`; default from the page's `<html lang>`, then the browser.
    pub locale: Option<String>,
    /// Text overrides by key (see [`crate::i18n::Key`]): a JSON object, kept as a list of entries.
    #[serde(deserialize_with = "entries")]
    pub strings: Option<Vec<(String, String)>>,
    /// Static demo mode: no backend calls (theme gallery, component tests).
    pub preview: Option<PreviewOptions>,
    /// The locale's texts in [`crate::i18n::Key::ALL`] order: the loader fetches them from
    /// `pkg/deshpay-<locale>.json` for Bengali and Hindi (the wasm carries English only).
    pub texts: Option<Vec<String>>,
}

/// Reads a JSON object of strings as its entries.
fn entries<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<(String, String)>>, D::Error> {
    let map: Option<HashMap<String, String>> = Deserialize::deserialize(deserializer)?;
    Ok(map.map(|m| m.into_iter().collect()))
}

/// `preview: {state, view, returned}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PreviewOptions {
    /// A state name (see [`Screen::preview`]); without it the state follows from `view` as in real use.
    pub state: Option<String>,
    /// The session view to show; a demo session when absent.
    pub view: Option<CheckoutView>,
    /// Behave as on the return from bKash (focus moves to the outcome heading).
    pub returned: Option<bool>,
    /// The UPI payment shown by `upi-qr` and `upi-apps`, in the shape of `POST /v1/checkout/{id}/upi`; demo
    /// links when absent.
    pub upi: Option<StartUpiResponse>,
}

/// Static demo data for previews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The view shown.
    pub view: CheckoutView,
    /// The state shown first.
    pub screen: Screen,
}

/// Everything a mounted widget needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Session id as given (shown as "not found" when malformed, without a request).
    pub session: String,
    /// Backend base URL without a trailing slash.
    pub endpoint: String,
    /// Theme preset.
    pub theme: Preset,
    /// Texts.
    pub strings: Strings,
    /// Whether this page load is the return from the provider's page.
    pub returned: bool,
    /// Static demo mode.
    pub preview: Option<Preview>,
}

impl Config {
    /// Reads the options, with the page's `<html lang>`, the browser's language and the page URL's query
    /// string. Returns the config and warnings for the console (unknown theme, unknown string keys).
    ///
    /// # Errors
    /// A message when `session` or `endpoint` is missing outside preview mode.
    pub fn new(
        options: MountOptions,
        page_lang: Option<&str>,
        navigator_lang: Option<&str>,
        query: &str,
    ) -> Result<(Config, Vec<String>), String> {
        let mut warnings = Vec::new();
        let theme = match options.theme.as_deref().filter(|t| !t.is_empty()) {
            None => Preset::default(),
            Some(name) => Preset::parse(name).unwrap_or_else(|| {
                warnings.push(cat(&["unknown theme \"", name, "\"; using \"light\""]));
                Preset::default()
            }),
        };
        let locale = Locale::pick(options.locale.as_deref(), page_lang, navigator_lang);
        let (mut strings, unknown) = Strings::new(locale, options.strings.unwrap_or_default());
        warnings.extend(unknown.into_iter().map(|k| cat(&["unknown string key \"", &k, "\" in `strings`"])));
        if let Some(texts) = options.texts
            && !strings.with_table(texts)
        {
            warnings.push("the locale file does not match this widget version; texts may be in English".into());
        }

        let preview = options.preview.map(|p| {
            let upi_state = p.state.as_deref().is_some_and(|s| s.starts_with("upi-"));
            let view = p.view.unwrap_or_else(|| {
                let session = options.session.as_deref().unwrap_or_default();
                if upi_state { demo_upi_view(session) } else { demo_view(session) }
            });
            let returned = p.returned.unwrap_or(false);
            let mut screen = match p.state.as_deref() {
                Some(name) => Screen::preview(name, &view).unwrap_or_else(|| {
                    warnings.push(cat(&["unknown preview state \"", name, "\""]));
                    Screen::Choose { problem: None }
                }),
                None => crate::state::screen_for(&view, returned),
            };
            if let (Screen::UpiWaiting { payment, .. }, Some(upi)) = (&mut screen, p.upi) {
                *payment = UpiPayment::from(upi);
            }
            (Preview { view, screen }, returned)
        });
        if let Some((preview, returned)) = preview {
            let session = preview.view.id.as_str().to_owned();
            return Ok((
                Config { session, endpoint: String::new(), theme, strings, returned, preview: Some(preview) },
                warnings,
            ));
        }

        let session = options.session.unwrap_or_default().trim().to_owned();
        let endpoint = options.endpoint.unwrap_or_default().trim().trim_end_matches('/').to_owned();
        if session.is_empty() {
            return Err("the `session` option (data-session attribute) is required".into());
        }
        if endpoint.is_empty() {
            return Err("the `endpoint` option (data-endpoint attribute) is required".into());
        }
        let returned = is_return(query, &session);
        Ok((Config { session, endpoint, theme, strings, returned, preview: None }, warnings))
    }

    /// Whether the session id has the `cs_` shape; a malformed one is shown as "not found" without a request.
    pub fn session_is_well_formed(&self) -> bool {
        SessionId::parse(&self.session).is_ok()
    }
}

/// The demo session shown by previews without a `view`.
pub fn demo_view(session: &str) -> CheckoutView {
    // Not `expect`: its message would format the `IdError` (Debug), which costs wasm.
    let id = match SessionId::parse(session).or_else(|_| SessionId::parse("cs_PREVIEW00000000000000000")) {
        Ok(id) => id,
        Err(_) => unreachable!("the demo id is well formed"),
    };
    CheckoutView {
        id,
        status: deshpay_api::SessionStatus::Open,
        amount: "250.00".into(),
        amount_minor: 25_000,
        currency: deshpay_api::Currency::Bdt,
        invoice: "ORD-1042".into(),
        description: Some("2 × Darjeeling tea, 250 g".into()),
        methods: vec![deshpay_api::Method::Bkash],
        expires_at: "2030-01-01T00:00:00Z".into(),
        merchant_name: "Demo Tea House".into(),
        attempt: None,
    }
}

/// The demo session of UPI previews: rupees, UPI only.
pub fn demo_upi_view(session: &str) -> CheckoutView {
    CheckoutView {
        amount: "101.00".into(),
        amount_minor: 10_100,
        currency: deshpay_api::Currency::Inr,
        invoice: "ORD-2051".into(),
        description: Some("Block-print kurta".into()),
        methods: vec![deshpay_api::Method::Upi],
        ..demo_view(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Key;

    fn options(json: serde_json::Value) -> MountOptions {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn live_mode_needs_session_and_endpoint() {
        let err = Config::new(options(serde_json::json!({"endpoint": "http://x"})), None, None, "").unwrap_err();
        assert!(err.contains("session"), "{err}");
        let err = Config::new(options(serde_json::json!({"session": "cs_x"})), None, None, "").unwrap_err();
        assert!(err.contains("endpoint"), "{err}");
    }

    #[test]
    fn live_mode_reads_theme_locale_strings_and_return() {
        let id = "cs_abcdefghijklmnopqrstuvwx";
        let opts = options(serde_json::json!({
            "session": id, "endpoint": "http://127.0.0.1:8081/", "theme": "neon",
            "strings": {"try_again": "Retry", "nope": "x"},
        }));
        let (config, warnings) =
            Config::new(opts, Some("bn-BD"), Some("en-US"), &format!("?deshpay_session={id}")).unwrap();
        assert_eq!(config.endpoint, "http://127.0.0.1:8081");
        assert_eq!(config.theme, Preset::Light);
        assert_eq!(config.strings.locale(), Locale::Bn);
        assert_eq!(config.strings.get(Key::TryAgain), "Retry");
        assert!(config.returned && config.session_is_well_formed() && config.preview.is_none());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }

    #[test]
    fn preview_needs_no_backend_and_defaults_to_a_demo_session() {
        let opts = options(serde_json::json!({"theme": "bkash", "locale": "hi", "preview": {"state": "failed"}}));
        let (config, warnings) = Config::new(opts, None, None, "").unwrap();
        assert!(warnings.is_empty());
        let preview = config.preview.unwrap();
        assert_eq!(preview.view.amount, "250.00");
        assert!(matches!(preview.screen, Screen::Failed { detail: Some(_), .. }));
        assert_eq!(config.theme, Preset::Bkash);
        assert_eq!(config.strings.locale(), Locale::Hi);
    }

    #[test]
    fn upi_previews_show_rupees_and_the_given_links() {
        let opts = options(serde_json::json!({"preview": {"state": "upi-apps", "upi": {
            "attempt_id": "att_ABCDEFGHIJKLMNOPQRSTUVWX", "qr": "upi://pay?pa=a@b",
            "qr_svg": {"size": 29, "path": "M4 4h7v1h-7z"},
            "links": {"paytm": null, "phonepe": "phonepe://native?data=x", "upi": "upi://pay?pa=a@b"},
            "expires_at": "2030-01-01T00:15:00Z",
        }}}));
        let (config, warnings) = Config::new(opts, None, None, "").unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let preview = config.preview.unwrap();
        assert_eq!(preview.view.currency, deshpay_api::Currency::Inr);
        let Screen::UpiWaiting { payment, layout, .. } = preview.screen else { panic!("{:?}", preview.screen) };
        assert_eq!(layout, crate::state::UpiLayout::Apps);
        assert_eq!(payment.qr, Some(deshpay_api::QrSvg { size: 29, path: "M4 4h7v1h-7z".into() }));
        assert_eq!(payment.links.paytm, None);
        assert_eq!(payment.expires_at, "2030-01-01T00:15:00Z");
    }
}
