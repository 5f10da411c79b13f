//! Component tests in headless Chromium, in preview mode (no backend): `cargo xtask test` runs them through
//! wasm-bindgen-test-runner and chromedriver (see `xtask/src/build.rs`).

use crate::{WidgetHandle, dom, mount};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;
use web_sys::{Element, HtmlElement, ShadowRoot, ShadowRootInit, ShadowRootMode};

wasm_bindgen_test_configure!(run_in_browser);

/// One widget mounted in a fresh host element, with the events it fired.
struct Mounted {
    host: HtmlElement,
    root: ShadowRoot,
    handle: WidgetHandle,
    events: Rc<RefCell<Vec<(String, JsValue)>>>,
    _listeners: Vec<Closure<dyn Fn(web_sys::CustomEvent)>>,
}

impl Mounted {
    async fn new(options: &str) -> Mounted {
        let document = web_sys::window().unwrap().document().unwrap();
        let host: HtmlElement = document.create_element("div").unwrap().unchecked_into();
        document.body().unwrap().append_child(&host).unwrap();
        let root = host.attach_shadow(&ShadowRootInit::new(ShadowRootMode::Open)).unwrap();
        let events = Rc::new(RefCell::new(Vec::new()));
        let listeners = ["deshpay:ready", "deshpay:success", "deshpay:failure", "deshpay:cancel"]
            .into_iter()
            .map(|name| {
                let events = events.clone();
                let listener = Closure::<dyn Fn(web_sys::CustomEvent)>::new(move |e: web_sys::CustomEvent| {
                    events.borrow_mut().push((e.type_(), e.detail()));
                });
                host.add_event_listener_with_callback(name, listener.as_ref().unchecked_ref()).unwrap();
                listener
            })
            .collect();
        let options = js_sys::JSON::parse(options).unwrap();
        let handle = mount(host.clone(), root.clone(), options).unwrap_or_else(|_| panic!("mount failed"));
        let mounted = Mounted { host, root, handle, events, _listeners: listeners };
        mounted.settle().await;
        mounted
    }

    /// Lets Leptos render and the deferred event/focus task run.
    async fn settle(&self) {
        dom::sleep(20).await;
    }

    fn find(&self, selector: &str) -> Option<Element> {
        self.root.query_selector(selector).unwrap()
    }

    fn text(&self, selector: &str) -> String {
        self.find(selector).unwrap_or_else(|| panic!("no {selector}")).text_content().unwrap_or_default()
    }

    fn buttons(&self) -> Vec<String> {
        let list = self.root.query_selector_all("button").unwrap();
        (0..list.length())
            .filter_map(|i| list.item(i))
            .filter_map(|n| n.text_content())
            .map(|t| t.trim().into())
            .collect()
    }

    fn click(&self, label: &str) {
        let list = self.root.query_selector_all("button").unwrap();
        let button = (0..list.length())
            .filter_map(|i| list.item(i))
            .find(|n| n.text_content().is_some_and(|t| t.trim() == label))
            .unwrap_or_else(|| panic!("no button {label:?}"));
        button.unchecked_into::<HtmlElement>().click();
    }

    fn event_names(&self) -> Vec<String> {
        self.events.borrow().iter().map(|(n, _)| n.clone()).collect()
    }

    fn detail(&self, name: &str, field: &str) -> Option<String> {
        let events = self.events.borrow();
        let (_, detail) = events.iter().find(|(n, _)| n == name)?;
        js_sys::Reflect::get(detail, &field.into()).ok()?.as_string()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        self.handle.unmount();
        self.host.remove();
    }
}

#[wasm_bindgen_test]
async fn choose_state_shows_amount_merchant_and_the_bkash_button() {
    let w = Mounted::new(r#"{"preview":{"state":"choose"}}"#).await;
    let amount = w.text("[data-testid=deshpay-amount]");
    assert!(amount.contains('৳') && amount.contains("250.00"), "{amount}");
    assert!(w.text(".dp-summary").contains("Demo Tea House"));
    assert!(w.text(".dp-summary").contains("ORD-1042"));
    assert_eq!(w.buttons(), vec!["Pay with bKash".to_string()]);
    assert_eq!(w.event_names(), vec!["deshpay:ready".to_string()]);
    assert_eq!(w.detail("deshpay:ready", "session").as_deref(), Some("cs_PREVIEW00000000000000000"));
}

#[wasm_bindgen_test]
async fn paying_shows_redirecting_in_the_status_region() {
    let w = Mounted::new(r#"{"preview":{"state":"choose"}}"#).await;
    let status = w.find("[role=status]").expect("a status region");
    assert_eq!(status.get_attribute("aria-live").as_deref(), Some("polite"));
    w.click("Pay with bKash");
    w.settle().await;
    assert_eq!(w.text("[data-testid=deshpay-status]").trim(), "Taking you to bKash…");
}

#[wasm_bindgen_test]
async fn success_shows_the_heading_and_the_transaction_id_and_fires_success() {
    let view = r#"{"id":"cs_abcdefghijklmnopqrstuvwx","status":"paid","amount":"1250.50","amount_minor":125050,
        "currency":"BDT","invoice":"INV-9","description":null,"methods":["bkash"],"expires_at":"2030-01-01T00:00:00Z",
        "merchant_name":"Shop","attempt":{"id":"att_ABCDEFGHIJKLMNOPQRSTUVWX","method":"bkash","status":"succeeded",
        "message":null,"trx_id":"TRX8XK2Q"}}"#;
    let w = Mounted::new(&format!(r#"{{"preview":{{"view":{view}}}}}"#)).await;
    assert_eq!(w.text("h2"), "Payment successful");
    assert_eq!(w.text("[data-testid=deshpay-trx-id]"), "TRX8XK2Q");
    assert!(w.text("[data-testid=deshpay-amount]").contains("1,250.50"));
    assert_eq!(w.event_names(), vec!["deshpay:ready".to_string(), "deshpay:success".to_string()]);
    assert_eq!(w.detail("deshpay:success", "trx_id").as_deref(), Some("TRX8XK2Q"));
    assert_eq!(w.detail("deshpay:success", "method").as_deref(), Some("bkash"));
}

#[wasm_bindgen_test]
async fn failure_shows_the_reason_and_try_again_returns_to_the_methods() {
    let w = Mounted::new(r#"{"preview":{"state":"failed"}}"#).await;
    assert_eq!(w.text("h2"), "Payment failed");
    assert_eq!(
        w.text("[data-testid=deshpay-reason]"),
        "Your bKash balance is too low for ৳250.00. No money was taken. Add money or use another bKash account."
    );
    assert_eq!(w.detail("deshpay:failure", "reason").as_deref(), Some("insufficient_balance"));
    w.click("Try again");
    w.settle().await;
    assert_eq!(w.buttons(), vec!["Pay with bKash".to_string()]);
    let focused = w.root.active_element().map(|e| e.text_content().unwrap_or_default());
    assert_eq!(focused.as_deref().map(str::trim), Some("Pay with bKash"), "focus follows to the method button");
}

/// A failed bKash attempt of ৳1,499.00 whose reason code is `reason`, as the backend's public view has it.
fn failed_view(reason: &str) -> String {
    format!(
        r#"{{"id":"cs_abcdefghijklmnopqrstuvwx","status":"open","amount":"1499.00","amount_minor":149900,
        "currency":"BDT","invoice":"INV-9","description":null,"methods":["bkash"],"expires_at":"2030-01-01T00:00:00Z",
        "merchant_name":"Shop","attempt":{{"id":"att_ABCDEFGHIJKLMNOPQRSTUVWX","method":"bkash","status":"failed",
        "reason":"{reason}","message":null,"trx_id":null}}}}"#
    )
}

#[wasm_bindgen_test]
async fn bkash_reasons_are_worded_in_each_language_with_the_amount_as_the_card_shows_it() {
    use crate::i18n::{Key, Locale};
    let balance = [
        (
            "en",
            "Your bKash balance is too low for ৳1,499.00. No money was taken. Add money or use another bKash account.",
        ),
        (
            "bn",
            "আপনার বিকাশ অ্যাকাউন্টে ৳১,৪৯৯.০০ পেমেন্টের জন্য যথেষ্ট ব্যালেন্স নেই। কোনো টাকা কাটা হয়নি। টাকা যোগ করুন \
             অথবা অন্য বিকাশ অ্যাকাউন্ট দিয়ে পেমেন্ট করুন।",
        ),
        (
            "hi",
            "आपके bKash खाते में ৳1,499.00 के भुगतान के लिए पर्याप्त बैलेंस नहीं है। कोई पैसा नहीं कटा है। खाते में पैसे \
             डालें या किसी दूसरे bKash खाते से भुगतान करें।",
        ),
    ];
    for (locale, text) in balance {
        let view = failed_view("insufficient_balance");
        let w = Mounted::new(&format!(r#"{{"locale":"{locale}","preview":{{"state":"failed","view":{view}}}}}"#)).await;
        assert_eq!(w.text("[data-testid=deshpay-reason]"), text, "{locale}");
        assert_eq!(w.detail("deshpay:failure", "reason").as_deref(), Some("insufficient_balance"));
    }
    let others = [
        ("verification_failed", Key::ReasonVerification),
        ("pin_failed", Key::ReasonPin),
        ("invalid_wallet", Key::ReasonWallet),
        ("account_restricted", Key::ReasonRestricted),
        ("duplicate", Key::ReasonDuplicate),
        ("saved_wallet_unavailable", Key::ReasonSavedWallet),
        ("provider_unavailable", Key::ProviderUnavailable),
        ("failed", Key::FailedNoReason),
        ("a_code_from_a_newer_backend", Key::FailedNoReason),
    ];
    for locale in Locale::ALL {
        for (reason, key) in others {
            let view = failed_view(reason);
            let options = format!(r#"{{"locale":"{}","preview":{{"state":"failed","view":{view}}}}}"#, locale.as_str());
            let w = Mounted::new(&options).await;
            assert_eq!(w.text("[data-testid=deshpay-reason]"), key.text(locale), "{reason} {locale:?}");
        }
    }
}

#[wasm_bindgen_test]
async fn cancelled_and_expired_offer_try_again() {
    let w = Mounted::new(r#"{"preview":{"state":"cancelled"}}"#).await;
    assert_eq!(w.text("h2"), "Payment cancelled");
    assert_eq!(w.buttons(), vec!["Try again".to_string()]);
    assert!(w.event_names().contains(&"deshpay:cancel".to_string()));
    let w = Mounted::new(r#"{"preview":{"state":"expired"}}"#).await;
    assert_eq!(w.text("h2"), "Payment expired");
    assert_eq!(w.buttons(), vec!["Try again".to_string()]);
}

#[wasm_bindgen_test]
async fn focus_moves_to_the_outcome_heading_on_the_return_from_bkash() {
    let w = Mounted::new(r#"{"preview":{"state":"success","returned":true}}"#).await;
    let active = w.root.active_element().expect("something focused in the widget");
    assert_eq!(active.tag_name(), "H2");
    assert_eq!(active.get_attribute("tabindex").as_deref(), Some("-1"));
    let w = Mounted::new(r#"{"preview":{"state":"success"}}"#).await;
    assert!(w.root.active_element().is_none(), "no focus theft on a plain page load");
}

#[wasm_bindgen_test]
async fn merchant_strings_override_the_built_in_ones() {
    let w = Mounted::new(r#"{"strings":{"pay_with_bkash":"Pay now with bKash"},"preview":{"state":"choose"}}"#).await;
    assert_eq!(w.buttons(), vec!["Pay now with bKash".to_string()]);
}

#[wasm_bindgen_test]
async fn bengali_and_hindi_texts_and_amounts() {
    let w = Mounted::new(r#"{"locale":"bn","preview":{"state":"choose"}}"#).await;
    assert_eq!(w.buttons(), vec!["বিকাশ দিয়ে পেমেন্ট করুন".to_string()]);
    let amount = w.text("[data-testid=deshpay-amount]");
    assert_eq!(amount, "৳২৫০.০০", "symbol first, Bengali digits");
    assert_eq!(w.find(".dp").unwrap().get_attribute("lang").as_deref(), Some("bn"));

    let w = Mounted::new(r#"{"locale":"hi","preview":{"state":"failed"}}"#).await;
    assert_eq!(w.text("h2"), "भुगतान विफल रहा");
    assert_eq!(w.buttons(), vec!["फिर से कोशिश करें".to_string()]);
}

#[wasm_bindgen_test]
async fn review_and_still_confirming_never_offer_to_pay_again() {
    let w = Mounted::new(r#"{"preview":{"state":"review"}}"#).await;
    assert_eq!(w.text("h2"), "We are checking your payment");
    assert!(
        w.text("[data-testid=deshpay-reason]").contains("Demo Tea House will check the payment"),
        "the merchant's name"
    );
    assert!(w.buttons().is_empty());
    assert!(!w.event_names().contains(&"deshpay:failure".to_string()));
    let w = Mounted::new(r#"{"preview":{"state":"still-confirming"}}"#).await;
    assert!(w.text("[data-testid=deshpay-reason]").contains("Do not pay again"));
    assert_eq!(w.buttons(), vec!["Check status".to_string()]);
    let w = Mounted::new(r#"{"locale":"bn","preview":{"state":"provider-error"}}"#).await;
    assert_eq!(w.text("[data-testid=deshpay-error]"), "পেমেন্ট শুরু করা যায়নি। কোনো টাকা কাটা হয়নি। একটু পরে আবার চেষ্টা করুন।");
}

#[wasm_bindgen_test]
async fn confirming_is_announced_in_the_status_region() {
    let w = Mounted::new(r#"{"preview":{"state":"confirming"}}"#).await;
    let status = w.find("[role=status]").unwrap();
    assert_eq!(status.text_content().unwrap_or_default().trim(), "Confirming your payment…");
    assert!(!status.class_list().contains("dp-sr"), "progress is visible, not only announced");
}

#[wasm_bindgen_test]
async fn progress_states_leave_the_body_empty_and_hidden() {
    let w = Mounted::new(r#"{"preview":{"state":"failed"}}"#).await;
    assert!(!w.find(".dp-body").unwrap().matches(".dp-body:empty").unwrap());
    let w = Mounted::new(r#"{"preview":{"state":"redirecting"}}"#).await;
    let body = w.find(".dp-body").unwrap();
    assert!(body.matches(".dp-body:empty").unwrap(), "{:?}", body.inner_html());
    let display = web_sys::window().unwrap().get_computed_style(&body).unwrap().unwrap();
    assert_eq!(display.get_property_value("display").unwrap(), "none");
}

#[wasm_bindgen_test]
async fn errors_are_clear_messages_with_a_way_forward() {
    let w = Mounted::new(r#"{"preview":{"state":"unreachable"}}"#).await;
    assert!(w.text("[data-testid=deshpay-error]").starts_with("We can't reach the payment service"));
    assert_eq!(w.buttons(), vec!["Try again".to_string()]);
    let w = Mounted::new(r#"{"preview":{"state":"session-expired"}}"#).await;
    assert!(w.buttons().is_empty(), "no pay button on an expired session");
    let w = Mounted::new(r#"{"preview":{"state":"no-method"}}"#).await;
    assert_eq!(w.text("h2"), "No payment method available");
}

#[wasm_bindgen_test]
async fn theme_preset_and_styles_reach_the_shadow_root() {
    let w = Mounted::new(r#"{"theme":"bkash","preview":{"state":"choose"}}"#).await;
    assert_eq!(w.find(".dp").unwrap().get_attribute("data-theme").as_deref(), Some("bkash"));
    let button = w.find("button").unwrap();
    let style = web_sys::window().unwrap().get_computed_style(&button).unwrap().unwrap();
    assert_eq!(style.get_property_value("background-color").unwrap(), "rgb(226, 19, 110)", "#E2136E");
    // A --deshpay-* property on the host wins over the preset.
    w.host.style().set_property("--deshpay-color-primary", "#004d40").unwrap();
    assert_eq!(style.get_property_value("background-color").unwrap(), "rgb(0, 77, 64)");
}

#[wasm_bindgen_test]
async fn unmount_empties_the_shadow_root() {
    let mut w = Mounted::new(r#"{"preview":{"state":"choose"}}"#).await;
    w.handle.unmount();
    w.settle().await;
    assert!(w.find("button").is_none());
}

#[wasm_bindgen_test]
fn live_mode_requires_session_and_endpoint() {
    let document = web_sys::window().unwrap().document().unwrap();
    let host: HtmlElement = document.create_element("div").unwrap().unchecked_into();
    let root = host.attach_shadow(&ShadowRootInit::new(ShadowRootMode::Open)).unwrap();
    assert!(mount(host, root, js_sys::JSON::parse(r#"{"session":"cs_x"}"#).unwrap()).is_err());
}

impl Mounted {
    fn attr(&self, selector: &str, name: &str) -> Option<String> {
        self.find(selector).unwrap_or_else(|| panic!("no {selector}")).get_attribute(name)
    }

    /// Text and href of each link.
    fn links(&self) -> Vec<(String, String)> {
        let list = self.root.query_selector_all("a").unwrap();
        (0..list.length())
            .filter_map(|i| list.item(i))
            .map(|n| {
                let e: Element = n.unchecked_into();
                (e.text_content().unwrap_or_default().trim().to_owned(), e.get_attribute("href").unwrap_or_default())
            })
            .collect()
    }
}

/// An RFC 3339 time `ms` from now.
fn in_ms(ms: f64) -> String {
    js_sys::Date::new(&(js_sys::Date::now() + ms).into()).to_iso_string().into()
}

#[wasm_bindgen_test]
async fn inr_session_offers_pay_with_upi() {
    let w = Mounted::new(
        r#"{"preview":{"state":"choose","view":{"id":"cs_abcdefghijklmnopqrstuvwx","status":"open",
        "amount":"101.00","amount_minor":10100,"currency":"INR","invoice":"ORD-7","description":null,"methods":["upi"],
        "expires_at":"2030-01-01T00:00:00Z","merchant_name":"Shop","attempt":null}}}"#,
    )
    .await;
    assert_eq!(w.buttons(), vec!["Pay with UPI".to_string()]);
    assert_eq!(w.text("[data-testid=deshpay-amount]"), "₹101.00", "rupees in Latin digits, as UPI apps show them");
    w.click("Pay with UPI");
    w.settle().await;
    assert_eq!(w.text("[data-testid=deshpay-status]").trim(), "Waiting for approval");
    assert!(w.buttons().contains(&"Cancel".to_string()), "{:?}", w.buttons());
}

#[wasm_bindgen_test]
async fn desktop_shows_the_qr_code_as_labelled_svg_and_the_apps_behind_a_toggle() {
    let w = Mounted::new(r#"{"preview":{"state":"upi-qr"}}"#).await;
    assert_eq!(w.text("h2"), "Scan to pay with UPI");
    let svg = w.find("svg[data-testid=deshpay-qr]").expect("a QR code");
    assert_eq!(svg.namespace_uri().as_deref(), Some("http://www.w3.org/2000/svg"));
    assert_eq!(svg.get_attribute("role").as_deref(), Some("img"));
    assert_eq!(svg.get_attribute("aria-label").as_deref(), Some("QR code for the UPI payment"));
    assert!(w.attr("svg[data-testid=deshpay-qr] path", "d").is_some_and(|d| d.len() > 500), "dark modules drawn");
    assert_eq!(w.attr("svg[data-testid=deshpay-qr] rect", "fill").as_deref(), Some("#fff"), "white plate");
    assert!(w.text(".dp-body").contains("Scan with any UPI app on your phone"));
    assert!(w.text("[data-testid=deshpay-status]").contains("Waiting for approval"));
    assert_eq!(w.buttons(), vec!["Pay on this device".to_string(), "Cancel".to_string()]);

    let toggle = "button[aria-controls=dp-upi-apps]";
    assert_eq!(w.attr(toggle, "aria-expanded").as_deref(), Some("false"));
    assert!(w.attr("#dp-upi-apps", "hidden").is_some(), "the app buttons start hidden");
    w.click("Pay on this device");
    w.settle().await;
    assert_eq!(w.attr(toggle, "aria-expanded").as_deref(), Some("true"));
    assert!(w.attr("#dp-upi-apps", "hidden").is_none());
    let names: Vec<String> = w.links().into_iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["Paytm", "PhonePe", "Other UPI app"]);
    w.click("Pay on this device");
    w.settle().await;
    assert_eq!(w.attr(toggle, "aria-expanded").as_deref(), Some("false"));
    assert!(w.attr("#dp-upi-apps", "hidden").is_some(), "and hides them again");
}

#[wasm_bindgen_test]
async fn phone_shows_the_three_app_buttons_with_the_given_links() {
    let w = Mounted::new(
        r#"{"preview":{"state":"upi-apps","upi":{"attempt_id":"att_ABCDEFGHIJKLMNOPQRSTUVWX","links":{
        "paytm":"paytmmp://cash_wallet?pa=shop%40bestin&am=101.00&tr=PI1&featuretype=money_transfer",
        "phonepe":"phonepe://native?data=eyJhIjoxfQ%3D%3D&id=p2ppayment",
        "upi":"upi://pay?pa=shop%40bestin&pn=Shop&am=101.00&cu=INR&tr=PI1"},
        "qr":"upi://pay?pa=shop%40bestin&pn=Shop&am=101.00&cu=INR&tr=PI1","expires_at":""}}}"#,
    )
    .await;
    assert_eq!(w.text("h2"), "Pay with your UPI app");
    assert!(w.find("svg[data-testid=deshpay-qr]").is_none(), "no QR code on a phone");
    assert_eq!(
        w.links(),
        vec![
            (
                "Paytm".into(),
                "paytmmp://cash_wallet?pa=shop%40bestin&am=101.00&tr=PI1&featuretype=money_transfer".into()
            ),
            ("PhonePe".into(), "phonepe://native?data=eyJhIjoxfQ%3D%3D&id=p2ppayment".into()),
            ("Other UPI app".into(), "upi://pay?pa=shop%40bestin&pn=Shop&am=101.00&cu=INR&tr=PI1".into()),
        ]
    );
    assert_eq!(w.buttons(), vec!["Cancel".to_string()]);
}

#[wasm_bindgen_test]
async fn missing_and_unsafe_links_get_no_button() {
    let w = Mounted::new(
        r#"{"preview":{"state":"upi-apps","upi":{"attempt_id":"att_ABCDEFGHIJKLMNOPQRSTUVWX","links":{
        "paytm":null,"phonepe":"javascript:alert(1)","upi":"upi://pay?pa=a%40b&am=1.00&cu=INR"},
        "qr":"upi://pay?pa=a%40b&am=1.00&cu=INR","expires_at":""}}}"#,
    )
    .await;
    assert_eq!(w.links(), vec![("Other UPI app".into(), "upi://pay?pa=a%40b&am=1.00&cu=INR".into())]);
}

#[wasm_bindgen_test]
async fn a_desktop_without_a_drawn_qr_code_shows_the_app_buttons_at_once() {
    let w = Mounted::new(
        r#"{"preview":{"state":"upi-qr","upi":{"attempt_id":"att_ABCDEFGHIJKLMNOPQRSTUVWX","links":{
        "paytm":null,"phonepe":null,"upi":"upi://pay?pa=a%40b&am=1.00&cu=INR"},
        "qr":"upi://pay?pa=a%40b&am=1.00&cu=INR","qr_svg":null,"expires_at":""}}}"#,
    )
    .await;
    assert!(w.find("svg[data-testid=deshpay-qr]").is_none(), "nothing to draw");
    assert!(w.attr("#dp-upi-apps", "hidden").is_none(), "the app buttons show at once");
    assert_eq!(w.links(), vec![("Other UPI app".into(), "upi://pay?pa=a%40b&am=1.00&cu=INR".into())]);
}

#[wasm_bindgen_test]
async fn the_countdown_shows_minutes_and_seconds_to_the_expiry() {
    let expires = in_ms(604_500.0);
    let w = Mounted::new(&format!(
        r#"{{"preview":{{"state":"upi-qr","upi":{{"attempt_id":"att_ABCDEFGHIJKLMNOPQRSTUVWX",
        "links":{{"paytm":null,"phonepe":null,"upi":"upi://pay?pa=a%40b"}},"qr":"upi://pay?pa=a%40b",
        "expires_at":"{expires}"}}}}}}"#
    ))
    .await;
    let timer = w.find("[role=timer]").expect("a timer");
    let text = timer.text_content().unwrap_or_default();
    assert!(text == "10:05" || text == "10:04", "{text}");
    assert!(w.text(".dp-countdown").contains("Time left to pay"));
    // The timer is not a live region itself: it would be read every second.
    assert_eq!(timer.get_attribute("aria-live"), None);
    dom::sleep(1_100).await;
    let later = timer.text_content().unwrap_or_default();
    assert!(later == "10:04" || later == "10:03", "it ticks: {later}");

    let w = Mounted::new(r#"{"preview":{"state":"upi-apps"}}"#).await;
    let text = w.text("[data-testid=deshpay-countdown]");
    assert!(text == "15:00" || text == "14:59", "previews count down from 15 minutes: {text}");
}

#[wasm_bindgen_test]
async fn cancel_shows_payment_cancelled_and_try_again_offers_upi_again() {
    let w = Mounted::new(r#"{"preview":{"state":"upi-qr"}}"#).await;
    w.click("Cancel");
    w.settle().await;
    assert_eq!(w.text("h2"), "Payment cancelled");
    assert!(w.event_names().contains(&"deshpay:cancel".to_string()));
    assert_eq!(w.detail("deshpay:cancel", "method").as_deref(), Some("upi"));
    w.click("Try again");
    w.settle().await;
    assert_eq!(w.buttons(), vec!["Pay with UPI".to_string()]);
}

#[wasm_bindgen_test]
async fn upi_texts_in_hindi_and_bengali() {
    let w = Mounted::new(r#"{"locale":"hi","preview":{"state":"upi-apps"}}"#).await;
    assert_eq!(w.text("[data-testid=deshpay-status]").trim(), "आपके UPI ऐप में भुगतान का इंतज़ार है…");
    let names: Vec<String> = w.links().into_iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["Paytm", "PhonePe", "अन्य UPI ऐप"], "brand names stay as they are");
    let w = Mounted::new(r#"{"locale":"bn","preview":{"state":"upi-qr"}}"#).await;
    assert_eq!(w.attr("svg[role=img]", "aria-label").as_deref(), Some("UPI পেমেন্টের QR কোড"));
    assert_eq!(w.text("[data-testid=deshpay-amount]"), "₹101.00", "rupees in Latin digits, as UPI apps show them");
}
