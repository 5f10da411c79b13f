//! Small browser helpers: timers, host events, focus, styles, page facts, server-sent events.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CustomEvent, CustomEventInit, Event, EventSource, HtmlElement, MessageEvent, ShadowRoot};

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
    /// `bkash` or `upi`.
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

/// Whether this device has the UPI apps itself: a coarse primary pointer (touch) or a mobile user agent.
pub fn is_phone() -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let coarse = window.match_media("(pointer: coarse)").ok().flatten().is_some_and(|m| m.matches());
    coarse || window.navigator().user_agent().is_ok_and(|ua| crate::state::is_mobile_user_agent(&ua))
}

/// An open `EventSource` reading one event name; closed when dropped.
pub struct EventStream {
    source: EventSource,
    event: &'static str,
    on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(Event)>,
}

impl EventStream {
    /// Opens `url` and calls `on_data` with the data of each `event`, `on_error` when the connection fails or
    /// ends (the browser would reconnect; the caller decides). `None` where `EventSource` is missing.
    pub fn open(
        url: &str,
        event: &'static str,
        mut on_data: impl FnMut(String) + 'static,
        mut on_error: impl FnMut() + 'static,
    ) -> Option<EventStream> {
        // Checked first: calling a missing constructor would throw.
        if !js_sys::Reflect::has(&js_sys::global(), &"EventSource".into()).unwrap_or(false) {
            return None;
        }
        let source = EventSource::new(url).ok()?;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(data) = e.data().as_string() {
                on_data(data);
            }
        });
        let on_error = Closure::<dyn FnMut(Event)>::new(move |_: Event| on_error());
        let listening = source.add_event_listener_with_callback(event, on_message.as_ref().unchecked_ref()).is_ok();
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let stream = EventStream { source, event, on_message, _on_error: on_error };
        listening.then_some(stream)
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.source.close();
        self.source.set_onerror(None);
        let _ = self.source.remove_event_listener_with_callback(self.event, self.on_message.as_ref().unchecked_ref());
    }
}

/// A `visibilitychange` listener on the document, removed when dropped.
pub struct VisibleListener {
    document: web_sys::Document,
    closure: Closure<dyn FnMut(Event)>,
}

/// Calls `f` whenever the page becomes visible again (the customer is back from the UPI app).
pub fn on_page_visible(mut f: impl FnMut() + 'static) -> Option<VisibleListener> {
    let document = web_sys::window()?.document()?;
    let doc = document.clone();
    let closure = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        if !doc.hidden() {
            f();
        }
    });
    document.add_event_listener_with_callback("visibilitychange", closure.as_ref().unchecked_ref()).ok()?;
    Some(VisibleListener { document, closure })
}

impl Drop for VisibleListener {
    fn drop(&mut self) {
        let _ = self
            .document
            .remove_event_listener_with_callback("visibilitychange", self.closure.as_ref().unchecked_ref());
    }
}

/// Toggles a disclosure button (`aria-expanded`) and the element its `aria-controls` names in the same root.
pub fn toggle_disclosure(event: &Event) {
    let Some(button) = event.current_target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) else {
        return;
    };
    let open = button.get_attribute("aria-expanded").as_deref() != Some("true");
    let _ = button.set_attribute("aria-expanded", if open { "true" } else { "false" });
    let controlled = button.get_attribute("aria-controls").and_then(|id| {
        let root = button.get_root_node().dyn_into::<ShadowRoot>().ok()?;
        root.get_element_by_id(&id)
    });
    if let Some(controlled) = controlled {
        let _ = controlled.toggle_attribute_with_force("hidden", !open);
    }
}
