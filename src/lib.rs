//! The DeshPay Checkout widget: a Leptos (CSR) component compiled to WebAssembly.
//!
//! Merchants embed it with `www/deshpay.js` (a script tag, the `<deshpay-checkout>` element, or
//! `DeshPay.mount(element, options)`); the loader attaches an open shadow root to the host element and calls
//! [`mount`] here. The widget reads the checkout session from the merchant backend (`api`), shows amount and
//! methods, starts a bKash attempt and sends the browser to bKash's page, and on the return shows the outcome
//! (`state`); for UPI it shows the apps' deep links on a phone or the QR code the backend drew on a desktop, and follows the
//! attempt live until its outcome. In English, Bengali or Hindi (`i18n`), themed by `--deshpay-*` custom
//! properties (`theme`).
//!
//! Pure logic (texts, contrast of the theme presets, state mapping, money) builds natively and is tested with
//! `cargo test -p deshpay-widget`; the browser part builds for `wasm32-unknown-unknown` only:
//! `cargo xtask build` writes `pkg/`, and the component tests run in headless Chromium with
//! `cargo xtask test` (see `xtask/src/build.rs`).

pub mod api;
pub mod config;
pub mod i18n;
pub mod money;
pub mod state;
pub mod theme;

#[cfg(target_arch = "wasm32")]
pub mod decode;
#[cfg(target_arch = "wasm32")]
mod dom;
#[cfg(target_arch = "wasm32")]
mod ui;

#[cfg(all(test, target_arch = "wasm32"))]
mod browser_tests;

/// Concatenates strings. Used instead of `format!` (core's formatting machinery) and `[..].concat()` (a
/// generic join, instantiated per element type) to keep the wasm small.
pub fn cat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

/// The widget's stylesheet (layout and components); the theme presets are appended by [`stylesheet`].
///
/// It lives in the host's shadow root: nothing in it leaks out, nothing from the page leaks in, except the
/// `--deshpay-*` custom properties (and inherited font settings), on purpose. Colours come from `--dp-*`, set by
/// the theme preset ([`theme`]), each defaulting to `--deshpay-color-*`. QR codes need dark modules on light:
/// `.dp-qr` is a white plate (the quiet zone is inside the SVG) in every theme. The file has no comments: they
/// would ship in the wasm.
pub const CSS: &str = include_str!("widget.css");

/// The complete stylesheet put into the shadow root: theme presets, then layout.
pub fn stylesheet() -> String {
    let mut css = theme::presets_css();
    css.push_str(CSS);
    css
}

#[cfg(target_arch = "wasm32")]
pub use exports::*;

#[cfg(target_arch = "wasm32")]
mod exports {
    use crate::config::{Config, MountOptions};
    use crate::dom;
    use wasm_bindgen::prelude::*;
    use web_sys::{HtmlElement, ShadowRoot};

    /// A mounted widget, returned by [`mount`]; `unmount()` removes it and stops its timers.
    #[wasm_bindgen]
    pub struct WidgetHandle {
        inner: Option<Box<dyn std::any::Any>>,
    }

    impl std::fmt::Debug for WidgetHandle {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("WidgetHandle").field("mounted", &self.inner.is_some()).finish()
        }
    }

    #[wasm_bindgen]
    impl WidgetHandle {
        /// Removes the widget from its shadow root. Calling it twice is harmless.
        pub fn unmount(&mut self) {
            // Dropping Leptos' handle removes the DOM and disposes the signals, which stops polling.
            self.inner.take();
        }
    }

    /// Mounts the widget into `root` (the open shadow root of `host`), replacing what is there. Host events are
    /// dispatched on `host`. `options` is the loader's normalised options object (see `www/deshpay.d.ts`).
    ///
    /// # Errors
    /// A JS `Error` when the options are unreadable or lack `session`/`endpoint` (outside preview mode).
    #[wasm_bindgen]
    pub fn mount(host: HtmlElement, root: ShadowRoot, options: JsValue) -> Result<WidgetHandle, JsError> {
        // Panic messages in the console while developing; the release build leaves the hook (and the formatting
        // it pulls in) out: it costs about 1 KB gzip, and a release panic aborts either way.
        #[cfg(debug_assertions)]
        console_error_panic_hook::set_once();
        // `prefetch`: the loader's request for the session view (`api::started`); not a documented option.
        let prefetched = js_sys::Reflect::get(&options, &JsValue::from_str("prefetch"))
            .ok()
            .filter(|p| !p.is_undefined())
            .map(|p| js_sys::Promise::resolve(&p));
        let options = <MountOptions as crate::decode::Decode>::decode(options)
            .ok_or_else(|| JsError::new("DeshPay: bad options: expected an object with the documented fields"))?;
        let (config, warnings) = Config::new(
            options,
            dom::page_lang().as_deref(),
            dom::navigator_lang().as_deref(),
            &dom::location_search(),
        )
        .map_err(|e| JsError::new(&crate::cat(&["DeshPay: ", &e])))?;
        for warning in warnings {
            dom::warn(&warning);
        }

        root.set_inner_html("");
        dom::adopt_styles(&root, &crate::stylesheet());
        let document = web_sys::window().and_then(|w| w.document()).ok_or_else(|| JsError::new("no document"))?;
        let container: HtmlElement =
            document.create_element("div").map_err(|_| JsError::new("no div"))?.unchecked_into();
        container.set_class_name("dp-root");
        root.append_child(&container).map_err(|_| JsError::new("cannot append to the shadow root"))?;
        if let Some(promise) = prefetched {
            crate::api::started(&config.endpoint, &config.session, promise);
        }
        Ok(WidgetHandle { inner: Some(crate::ui::mount(config, host, container)) })
    }
}
