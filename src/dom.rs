//! Small browser helpers: timers, host events, focus, styles, page facts.

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CustomEvent, CustomEventInit, HtmlElement, ShadowRoot};

/// Resolves after `ms` milliseconds (`setTimeout`); 0 waits until the DOM updates of this turn are done.
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// `detail` of the host events. Only ids and the provider's public reason: never secrets.
#[derive(Debug)]
pub struct EventDetail {
    /// Session id.
    pub session: String,
    /// `bkash` (or `upi` later).
    pub method: Option<&'static str>,
    /// Provider transaction id, on success.
    pub trx_id: Option<String>,
    /// Why it failed: the provider's message, `expired`, or `wasm_unavailable` (from the loader).
    pub reason: Option<String>,
}

impl EventDetail {
    /// The JS object: `{session, method?, trx_id?, reason?}` (absent fields are left out, not `null`).
    fn to_js(&self) -> JsValue {
        let object = js_sys::Object::new();
        let set = |name: &str, value: Option<&str>| {
            if let Some(value) = value {
                let _ = js_sys::Reflect::set(&object, &JsValue::from_str(name), &JsValue::from_str(value));
            }
        };
        set("session", Some(&self.session));
        set("method", self.method);
        set("trx_id", self.trx_id.as_deref());
        set("reason", self.reason.as_deref());
        object.into()
    }
}

/// Dispatches a `CustomEvent` on the host that bubbles out of the shadow root (`composed`).
pub fn dispatch(host: &HtmlElement, name: &str, detail: &EventDetail) {
    let init = CustomEventInit::new();
    init.set_bubbles(true);
    init.set_composed(true);
    init.set_detail(&detail.to_js());
    if let Ok(event) = CustomEvent::new_with_event_init_dict(name, &init) {
        let _ = host.dispatch_event(&event);
    }
}

/// Focuses the first element matching `selector` inside `container`; returns whether one was found.
pub fn focus_first(container: &HtmlElement, selector: &str) -> bool {
    match container.query_selector(selector).ok().flatten().and_then(|e| e.dyn_into::<HtmlElement>().ok()) {
        Some(element) => element.focus().is_ok(),
        None => false,
    }
}

/// Puts the widget's CSS into the shadow root: a constructable stylesheet (`adoptedStyleSheets`), which a
/// Content-Security-Policy without `'unsafe-inline'` allows; a `<style>` element in older browsers.
pub fn adopt_styles(root: &ShadowRoot, css: &str) {
    if let Ok(sheet) = web_sys::CssStyleSheet::new()
        && sheet.replace_sync(css).is_ok()
        && js_sys::Reflect::set(root, &"adoptedStyleSheets".into(), &js_sys::Array::of1(&sheet)).unwrap_or(false)
    {
        return;
    }
    if let Some(style) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.create_element("style").ok()) {
        style.set_text_content(Some(css));
        let _ = root.append_child(&style);
    }
}

/// The page's `<html lang>`.
pub fn page_lang() -> Option<String> {
    web_sys::window()?.document()?.document_element()?.get_attribute("lang")
}

/// The browser's preferred language.
pub fn navigator_lang() -> Option<String> {
    web_sys::window()?.navigator().language()
}

/// The page URL's query string (`?a=b`).
pub fn location_search() -> String {
    web_sys::window().and_then(|w| w.location().search().ok()).unwrap_or_default()
}

/// Sends the browser to `url` (the provider's hosted page). Only http(s) URLs are followed, so that a
/// tampered response cannot run script through a `javascript:` URL.
pub fn assign(url: &str) -> bool {
    let safe = url.starts_with("https://") || url.starts_with("http://");
    safe && web_sys::window().is_some_and(|w| w.location().assign(url).is_ok())
}

/// Logs a warning to the console.
pub fn warn(message: &str) {
    web_sys::console::warn_1(&crate::cat(&["DeshPay: ", message]).into());
}
