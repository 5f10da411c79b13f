//! The Leptos views: one root that owns the checkout state, and one small view function per part of a screen.
//!
//! State lives in [`Checkout`], a `Copy` context of signals; every change of screen goes through
//! [`Checkout::show`], which also fires the host events and moves focus once the DOM has been updated.
//! A UPI attempt is followed live (server-sent events, else polling, and a re-check when the page becomes
//! visible again) until its outcome, by [`Checkout::follow`].

use crate::api::{self, ApiError};
use crate::config::Config;
use crate::dom::{self, EventDetail};
use crate::i18n::Key;
use crate::money;
use crate::state::{self, AfterStartError, AppLabel, Screen, StartProblem, UpiLayout, UpiPayment, UpiProgress};
use deshpay_api::{CheckoutView, ErrorCode, Method, QrSvg};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos::wasm_split::SplitLoaderError;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use web_sys::HtmlElement;

/// How often and how long the widget polls while the backend confirms a payment.
const POLL_INTERVAL_MS: i32 = 1_000;
const POLL_TRIES: u32 = 60;

/// How often the widget polls a UPI attempt when server-sent events are unavailable or failed, and for how
/// long at most (the payin expires after 15 minutes, and the backend then says so).
const LIVE_POLL_MS: i32 = 3_000;
const LIVE_POLL_TRIES: u32 = 600;

/// A preview's countdown, when it has no `expires_at`: Bestin Pay's 15 minutes.
const PREVIEW_TTL_MS: f64 = 15.0 * 60.0 * 1000.0;

/// Selectors of what takes focus: outcome and info headings, else the first button of the body.
const FOCUS_HEADING: &str = "h2[tabindex=\"-1\"]";
const FOCUS_BUTTON: &str = ".dp-body button";

/// The shared state of one mounted widget.
#[derive(Clone, Copy)]
pub struct Checkout {
    /// What is shown.
    screen: RwSignal<Screen>,
    /// The last session view read from the backend (or the preview's).
    view: RwSignal<Option<CheckoutView>>,
    /// Whether a payment is being started (the method buttons are `aria-disabled` meanwhile).
    pending: RwSignal<bool>,
    /// Everything else, in one stored value (each stored type costs its own arena code in the wasm).
    fixed: StoredValue<Rc<Fixed>, LocalStorage>,
}

/// The non-reactive part of [`Checkout`].
struct Fixed {
    config: Config,
    host: HtmlElement,
    container: HtmlElement,
    /// Incremented by each poll loop, so that a newer loop stops an older one.
    poll_generation: Cell<u32>,
    ready_sent: Cell<bool>,
    /// What follows a UPI attempt live; `None` when nothing is followed.
    live: RefCell<Option<Live>>,
    /// Incremented whenever following starts or stops, so that late events, loops and answers are ignored.
    live_generation: Cell<u32>,
}

/// The live status of one UPI attempt: its event stream (dropped on failure, for polling) and the listener that
/// re-checks when the page becomes visible. Dropping it closes both.
struct Live {
    /// The attempt followed.
    attempt: Option<String>,
    stream: Option<dom::EventStream>,
    _visible: Option<dom::VisibleListener>,
}

impl Checkout {
    fn new(config: Config, host: HtmlElement, container: HtmlElement) -> Checkout {
        let (screen, view) = match &config.preview {
            Some(p) => (p.screen.clone(), Some(p.view.clone())),
            None => (Screen::Loading, None),
        };
        Checkout {
            screen: RwSignal::new(Screen::Loading),
            view: RwSignal::new(view),
            pending: RwSignal::new(false),
            fixed: StoredValue::new_local(Rc::new(Fixed {
                config,
                host,
                container,
                poll_generation: Cell::new(0),
                ready_sent: Cell::new(false),
                live: RefCell::new(None),
                live_generation: Cell::new(0),
            })),
        }
        .starting_at(screen)
    }

    fn starting_at(self, screen: Screen) -> Checkout {
        self.show(screen);
        self
    }

    /// The non-reactive state; panics after unmount, like reading a disposed signal (check [`Self::alive`]).
    fn fixed(self) -> Rc<Fixed> {
        self.fixed.get_value()
    }

    /// The backend endpoint and the session id.
    fn target(self) -> (String, String) {
        let config = &self.fixed().config;
        (config.endpoint.clone(), config.session.clone())
    }

    /// A text in the widget's locale, with the merchant's override, naming the merchant where it says `{merchant}`
    /// and the session's amount, as the card shows it, where it says `{amount}`.
    fn t(self, key: Key) -> String {
        let strings = &self.fixed().config.strings;
        let text = strings.get(key).to_owned();
        if !text.contains('{') {
            return text;
        }
        self.view.with_untracked(|v| match v {
            Some(v) => {
                let amount = money::format(v.amount_minor, v.currency, strings.locale());
                crate::i18n::fill(&text, &v.merchant_name, &amount)
            }
            None => crate::i18n::fill(&text, "", ""),
        })
    }

    fn is_preview(self) -> bool {
        self.fixed().config.preview.is_some()
    }

    /// Whether the widget is still mounted (its signals are disposed on unmount).
    fn alive(self) -> bool {
        self.screen.try_get_untracked().is_some()
    }

    /// Switches screen; after the DOM update fires `deshpay:ready` (once), the outcome event, and moves focus.
    fn show(self, next: Screen) {
        if !self.alive() {
            return;
        }
        // The UPI screen's code may still be downloading: show it once it is there.
        if matches!(next, Screen::UpiWaiting { .. }) && !upi_loaded() {
            spawn_local(async move {
                if load_upi().await.is_ok() {
                    self.show(next);
                } else {
                    self.stop_live();
                    self.show(Screen::Choose { problem: Some(StartProblem::Unreachable) });
                }
            });
            return;
        }
        self.screen.set(next.clone());
        let returned = self.fixed().config.returned;
        spawn_local(async move {
            dom::sleep(0).await;
            if self.screen.try_get_untracked().as_ref() != Some(&next) {
                return; // superseded before it was painted
            }
            let fixed = self.fixed();
            let first_load = !fixed.ready_sent.get();
            if next == Screen::Loading {
                return;
            }
            if first_load {
                fixed.ready_sent.set(true);
                dom::dispatch(&fixed.host, "deshpay:ready", &self.detail(None, None));
                // Fetched now, after the first screen, so that "Pay with UPI" does not wait for it.
                let upi = self
                    .view
                    .with_untracked(|v| v.as_ref().is_some_and(|v| state::usable_methods(v).contains(&Method::Upi)));
                if upi {
                    spawn_local(async move {
                        let _ = load_upi().await;
                    });
                }
            }
            if let Some((outcome, reason)) = next.outcome() {
                let trx_id = match &next {
                    Screen::Succeeded { trx_id } => Some(trx_id.clone()),
                    _ => None,
                };
                dom::dispatch(&fixed.host, outcome.event(), &self.detail(trx_id, reason));
            }
            // On first load, focus moves only on the return from bKash (the customer's context changed); after
            // an action in the widget, focus follows the content that replaced the button just pressed.
            let container = &fixed.container;
            if first_load {
                if returned && next.is_outcome() {
                    dom::focus_first(container, FOCUS_HEADING);
                }
            } else if !dom::focus_first(container, FOCUS_HEADING) {
                dom::focus_first(container, FOCUS_BUTTON);
            }
        });
    }

    fn detail(self, trx_id: Option<String>, reason: Option<String>) -> EventDetail {
        let method = self.view.with_untracked(|v| {
            // Before an attempt shows in the view, its method is the session's (one method per currency).
            let attempt = v.as_ref().and_then(|v| v.attempt.as_ref()).map(|a| a.method);
            attempt
                .or_else(|| v.as_ref().and_then(|v| state::usable_methods(v).first().copied()))
                .unwrap_or(Method::Bkash)
                .as_str()
        });
        EventDetail { session: self.fixed().config.session.clone(), method: Some(method), trx_id, reason }
    }

    /// Reads the session and shows what it says; keeps polling if a payment is being confirmed.
    fn load(self) {
        let fixed = self.fixed();
        if let Some(preview) = &fixed.config.preview {
            let screen = preview.screen.clone();
            self.show(screen);
            return;
        }
        if !fixed.config.session_is_well_formed() {
            self.show(Screen::NotFound);
            return;
        }
        self.show(Screen::Loading);
        let (endpoint, session, returned) =
            (fixed.config.endpoint.clone(), fixed.config.session.clone(), fixed.config.returned);
        spawn_local(async move {
            let result = api::checkout_view(&endpoint, &session).await;
            if !self.alive() {
                return;
            }
            match result {
                Ok(view) => {
                    let screen = state::screen_for(&view, returned);
                    let resume = !returned && state::resumes_upi(&view);
                    self.view.set(Some(view));
                    if resume {
                        // After a reload: show the pending request again (the backend returns the same payin).
                        self.pay(Method::Upi);
                    } else if screen == Screen::Confirming {
                        self.poll();
                    } else {
                        self.show(screen);
                    }
                }
                Err(error) => self.show(state::load_error_screen(&error)),
            }
        });
    }

    /// Polls the session every second until the attempt is final (bounded), showing "Confirming…" meanwhile.
    fn poll(self) {
        self.show(Screen::Confirming);
        if self.is_preview() {
            return;
        }
        let fixed = self.fixed();
        let generation = fixed.poll_generation.get().wrapping_add(1);
        fixed.poll_generation.set(generation);
        let (endpoint, session) = (fixed.config.endpoint.clone(), fixed.config.session.clone());
        spawn_local(async move {
            for _ in 0..POLL_TRIES {
                dom::sleep(POLL_INTERVAL_MS).await;
                if !self.alive() || self.fixed().poll_generation.get() != generation {
                    return;
                }
                // A failed poll is retried on the next tick: the outcome is already recorded by the backend.
                if let Ok(view) = api::checkout_view(&endpoint, &session).await {
                    if !self.alive() {
                        return;
                    }
                    let done = state::poll_result(&view);
                    self.view.set(Some(view));
                    if let Some(screen) = done {
                        self.show(screen);
                        return;
                    }
                }
            }
            self.show(Screen::StillConfirming);
        });
    }

    /// Starts a payment with `method` unless one is being started already; `pending` meanwhile.
    fn pay(self, method: Method) {
        if self.pending.get_untracked() {
            return;
        }
        self.pending.set(true);
        spawn_local(async move {
            self.start(method).await;
            if self.alive() {
                self.pending.set(false);
            }
        });
    }

    /// Starts a payment with `method`.
    async fn start(self, method: Method) {
        match method {
            Method::Bkash => self.start_bkash().await,
            Method::Upi => self.start_upi().await,
        }
    }

    /// Starts a bKash payment and sends the browser to bKash's page.
    async fn start_bkash(self) {
        if self.is_preview() {
            self.show(Screen::Redirecting);
            return;
        }
        let (endpoint, session) = self.target();
        let result = api::start_bkash(&endpoint, &session).await;
        if !self.alive() {
            return;
        }
        match result {
            Ok(started) => {
                self.show(Screen::Redirecting);
                if !dom::assign(&started.redirect_url) {
                    self.show(Screen::Choose { problem: Some(StartProblem::Unreachable) });
                }
            }
            Err(error) => self.start_failed(&error),
        }
    }

    fn start_failed(self, error: &ApiError) {
        match state::after_start_error(error) {
            AfterStartError::Show(screen) => self.show(screen),
            AfterStartError::Poll => self.poll(),
            AfterStartError::Reload => self.load(),
        }
    }

    /// Starts a UPI payin (the backend returns the pending one if there is one), shows the QR code or the app
    /// buttons, and follows the attempt.
    async fn start_upi(self) {
        // The rest is in the UPI module (usually prefetched already); the button keeps its spinner meanwhile.
        #[cfg(deshpay_split)]
        let start = start_upi_payin(self).await;
        #[cfg(not(deshpay_split))]
        let start = start_upi_payin(self);
        match start {
            Ok(start) => start.await,
            Err(_) => self.show(Screen::Choose { problem: Some(StartProblem::Unreachable) }),
        }
    }

    /// Starts the UPI payin, follows it and shows it: [`Checkout::start_upi`] once the UPI module is loaded.
    async fn start_upi_payin(self) {
        let layout = if dom::is_phone() { UpiLayout::Apps } else { UpiLayout::Qr };
        if self.is_preview() {
            self.show(Screen::UpiWaiting { payment: UpiPayment::demo(), layout, cancel_failed: false });
            return;
        }
        let (endpoint, session) = self.target();
        let result = api::start_upi(&endpoint, &session).await;
        if !self.alive() {
            return;
        }
        match result {
            Ok(started) => {
                let payment = UpiPayment::from(started);
                self.follow(payment.attempt.clone());
                self.show(Screen::UpiWaiting { payment, layout, cancel_failed: false });
            }
            Err(error) => self.start_failed(&error),
        }
    }

    /// Follows `attempt` live until its outcome: server-sent events, falling back to polling every 3 s when
    /// they fail or `EventSource` is missing, plus one re-check whenever the page becomes visible again.
    fn follow(self, attempt: Option<String>) {
        let generation = self.stop_live();
        let (endpoint, session) = self.target();
        // Both callbacks hand over to a task: what they start may close the stream they are called from.
        let stream = dom::EventStream::open(
            &api::events_url(&endpoint, &session),
            "session",
            move |data| spawn_local(self.live_event(generation, api::parse_view(&data).ok_or(()))),
            move || spawn_local(self.live_event(generation, Err(()))),
        );
        let polling = stream.is_none();
        let visible = dom::on_page_visible(move || self.recheck());
        self.fixed().live.replace(Some(Live { attempt, stream, _visible: visible }));
        if polling {
            self.poll_live(generation, LIVE_POLL_MS, LIVE_POLL_TRIES);
        }
    }

    /// A `session` event (`Ok`), or the stream failed or ended (`Err`): then poll instead.
    async fn live_event(self, generation: u32, event: Result<CheckoutView, ()>) {
        match event {
            Ok(view) => self.live_view(generation, view),
            Err(()) if self.is_live(generation) => {
                let stream = self.fixed().live.borrow_mut().as_mut().and_then(|l| l.stream.take());
                drop(stream);
                self.poll_live(generation, LIVE_POLL_MS, LIVE_POLL_TRIES);
            }
            Err(()) => {}
        }
    }

    /// Stops following (closing the stream and listener); returns the new generation.
    fn stop_live(self) -> u32 {
        let Some(fixed) = self.fixed.try_get_value() else {
            return 0;
        };
        let generation = fixed.live_generation.get().wrapping_add(1);
        fixed.live_generation.set(generation);
        let live = fixed.live.replace(None);
        drop(live);
        generation
    }

    fn is_live(self, generation: u32) -> bool {
        self.alive() && self.fixed.try_get_value().is_some_and(|f| f.live_generation.get() == generation)
    }

    /// The attempt followed, if any.
    fn live_attempt(self) -> Option<String> {
        self.fixed().live.borrow().as_ref().and_then(|l| l.attempt.clone())
    }

    /// Reads the session `tries` times, `delay_ms` apart, while `generation` is followed.
    fn poll_live(self, generation: u32, delay_ms: i32, tries: u32) {
        let (endpoint, session) = self.target();
        spawn_local(async move {
            for _ in 0..tries {
                dom::sleep(delay_ms).await;
                if !self.is_live(generation) {
                    return;
                }
                if let Ok(view) = api::checkout_view(&endpoint, &session).await {
                    self.live_view(generation, view);
                }
            }
        });
    }

    /// Reads the session once now (the page became visible again, or the countdown ran out).
    fn recheck(self) {
        let Some(fixed) = self.fixed.try_get_value() else {
            return;
        };
        let following = fixed.live.borrow().is_some();
        if following {
            self.poll_live(fixed.live_generation.get(), 0, 1);
        }
    }

    /// A fresh view while following: keeps waiting, shows "Confirming…", or stops and shows the outcome.
    fn live_view(self, generation: u32, view: CheckoutView) {
        if !self.is_live(generation) {
            return;
        }
        let progress = state::upi_progress(&view, self.live_attempt().as_deref());
        if self.view.with_untracked(|v| v.as_ref() != Some(&view)) {
            self.view.set(Some(view));
        }
        match progress {
            UpiProgress::Waiting => {}
            UpiProgress::Confirming => {
                if self.screen.with_untracked(|s| *s != Screen::Confirming) {
                    self.show(Screen::Confirming);
                }
            }
            UpiProgress::Done(screen) => {
                self.stop_live();
                self.show(screen);
            }
        }
    }

    /// Cancels the waiting UPI payment: "Payment cancelled", or the outcome if it finished first.
    async fn cancel(self) {
        let generation = self.fixed().live_generation.get();
        if self.is_preview() {
            self.show(Screen::Cancelled);
            return;
        }
        let (endpoint, session) = self.target();
        let result = api::cancel(&endpoint, &session).await;
        // The live status may have shown the outcome meanwhile: then there is nothing left to do.
        if !self.is_live(generation) {
            return;
        }
        match result {
            Ok(view) => {
                let screen = match state::upi_progress(&view, self.live_attempt().as_deref()) {
                    UpiProgress::Done(screen) => screen,
                    _ => Screen::Cancelled,
                };
                self.view.set(Some(view));
                self.stop_live();
                self.show(screen);
            }
            // It finished first (approved, declined, expired): show that.
            Err(ApiError::Http { code: ErrorCode::NothingToCancel, .. }) => self.recheck(),
            Err(_) => {
                if let Screen::UpiWaiting { payment, layout, .. } = self.screen.get_untracked() {
                    self.show(Screen::UpiWaiting { payment, layout, cancel_failed: true });
                }
            }
        }
    }
}

/// Mounts the widget into `container` (inside the host's shadow root). Dropping the returned handle unmounts it.
pub fn mount(config: Config, host: HtmlElement, container: HtmlElement) -> Box<dyn std::any::Any> {
    let target = container.clone();
    let handle = leptos::mount::mount_to(target, move || {
        let checkout = Checkout::new(config, host, container);
        if !checkout.is_preview() {
            checkout.load();
        }
        on_cleanup(move || {
            checkout.stop_live();
        });
        app(checkout)
    });
    Box::new(handle)
}

/// The root: theme and language on the outer element, the session summary, the current screen, and the
/// status region.
///
/// Every screen renders through one view type ([`Body`]: optional parts filled from the [`Screen`]) rather
/// than one `view!` tree per screen behind `AnyView`: each distinct view type costs its own build, rebuild
/// and mount code in the wasm. For the same reason the parts are plain functions taking the [`Checkout`]
/// rather than `#[component]`s reading it from the context. Their bodies read no signal outside closures, so
/// nothing in them is tracked by the closure that calls them.
fn app(checkout: Checkout) -> impl IntoView {
    let config = &checkout.fixed().config;
    let (theme, lang) = (config.theme.as_str(), config.strings.locale().as_str());
    let status = move || checkout.screen.with(|s| s.status_key().map(|k| checkout.t(k)).unwrap_or_default());
    let progress = move || checkout.screen.with(Screen::is_progress);

    view! {
        <div class="dp" data-theme=theme lang=lang>
            {move || checkout.view.get().map(|v| summary(checkout, v))}
            <div class="dp-body">{move || body(checkout, checkout.screen.get())}</div>
            <p class="dp-status" class=("dp-sr", move || !progress()) role="status" aria-live="polite" data-testid="deshpay-status">
                {spinner(progress)}
                <span>{status}</span>
            </p>
        </div>
    }
}

/// The spinner, shown while `when` is true.
fn spinner(when: impl Fn() -> bool + Send + Sync + 'static) -> impl IntoView {
    move || when().then(|| view! { <span class="dp-spinner" aria-hidden="true"></span> })
}

/// What a retry button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Back to the method list.
    Choose,
    /// Poll the session again.
    Poll,
    /// Read the session again.
    Load,
    /// Start a payment with this method again.
    Start(Method),
}

/// A paragraph of a screen: its text and the optional class, role and test id.
struct Para {
    text: String,
    class: Option<&'static str>,
    role: Option<&'static str>,
    testid: Option<&'static str>,
}

impl Para {
    fn plain(text: String) -> Para {
        Para { text, class: None, role: None, testid: None }
    }

    fn alert(text: String) -> Para {
        Para { text, class: Some("dp-alert"), role: Some("alert"), testid: Some("deshpay-error") }
    }
}

/// The parts of one screen, each shown when present, in this order.
#[derive(Default)]
struct Body {
    /// The method list (with the last start's problem).
    choose: Option<(Vec<Method>, Option<StartProblem>)>,
    /// An outcome or info heading.
    heading: Option<(Icon, Key)>,
    /// The receipt's transaction id.
    receipt: Option<String>,
    /// A paragraph.
    para: Option<Para>,
    /// A "Try again" (or "Check status") button: what it does and its label.
    retry: Option<(Retry, Key)>,
    /// A UPI payment waiting for approval: its request, layout, and whether the last "Cancel" failed.
    upi: Option<(UpiPayment, UpiLayout, bool)>,
}

fn body(checkout: Checkout, screen: Screen) -> impl IntoView {
    let t = move |k| checkout.t(k);
    let info = |icon, title, body: Key| Body {
        heading: Some((icon, title)),
        para: Some(Para::plain(t(body))),
        ..Body::default()
    };
    let outcome = screen.outcome_texts();
    let body = match screen {
        Screen::Loading | Screen::Redirecting | Screen::Confirming => Body::default(),
        Screen::UpiWaiting { payment, layout, cancel_failed } => {
            Body { upi: Some((payment, layout, cancel_failed)), ..Body::default() }
        }
        Screen::Choose { problem } => {
            let methods = checkout.view.with_untracked(|v| v.as_ref().map(state::usable_methods).unwrap_or_default());
            Body { choose: Some((methods, problem)), ..Body::default() }
        }
        Screen::Succeeded { trx_id } => {
            Body { heading: Some((Icon::Success, Key::Success)), receipt: Some(trx_id), ..Body::default() }
        }
        // Outcomes: their words come from `Screen::outcome_texts` (tested natively in every language).
        Screen::Failed { .. }
        | Screen::Cancelled
        | Screen::AttemptExpired
        | Screen::Review
        | Screen::StillConfirming => {
            let (heading, para, button) = outcome.unwrap_or((None, Key::FailedNoReason, None));
            let icon = if matches!(screen, Screen::Failed { .. }) { Icon::Error } else { Icon::Info };
            let retry = if screen == Screen::StillConfirming { Retry::Poll } else { Retry::Choose };
            Body {
                heading: heading.map(|h| (icon, h)),
                para: Some(Para { testid: Some("deshpay-reason"), ..Para::plain(t(para)) }),
                retry: button.map(|b| (retry, b)),
                ..Body::default()
            }
        }
        Screen::SessionExpired => info(Icon::Info, Key::SessionExpired, Key::SessionExpiredBody),
        Screen::SessionCanceled => info(Icon::Info, Key::SessionCanceled, Key::SessionCanceledBody),
        Screen::NoMethod => info(Icon::Info, Key::NoMethod, Key::NoMethodBody),
        Screen::NotFound => Body { para: Some(Para::alert(t(Key::NotFound))), ..Body::default() },
        Screen::Unreachable => Body {
            para: Some(Para::alert(t(Key::Unreachable))),
            retry: Some((Retry::Load, Key::TryAgain)),
            ..Body::default()
        },
    };
    let Body { choose, heading, receipt, para, retry, upi } = body;
    view! {
        {choose.map(|(methods, problem)| choose_method(checkout, methods, problem))}
        {heading.map(|(icon, key)| heading_view(icon, t(key)))}
        {receipt.map(|trx_id| view! {
            <p class="dp-receipt">
                <span class="dp-muted">{t(Key::TrxId)}</span>
                " "
                <strong class="dp-code" data-testid="deshpay-trx-id">{trx_id}</strong>
            </p>
        })}
        {para.map(|p| view! { <p class=p.class role=p.role data-testid=p.testid>{p.text}</p> })}
        {retry.map(|(retry, label)| try_again(checkout, retry, label))}
        {upi.and_then(|(payment, layout, cancel_failed)| upi_view(checkout, payment, layout, cancel_failed))}
    }
}

/// Merchant, description, amount and invoice of the session `view`: shown above every screen once the
/// session is known.
fn summary(checkout: Checkout, view: CheckoutView) -> impl IntoView {
    let locale = checkout.fixed().config.strings.locale();
    let amount = money::format(view.amount_minor, view.currency, locale);
    view! {
        <div class="dp-summary">
            <p class="dp-merchant">{view.merchant_name}</p>
            {view.description.map(|d| view! { <p class="dp-muted">{d}</p> })}
            <p class="dp-amount">
                <span class="dp-sr">{checkout.t(Key::Amount)} " "</span>
                <span data-testid="deshpay-amount">{amount}</span>
            </p>
            <p class="dp-muted">{checkout.t(Key::Invoice)} " " <span class="dp-code">{view.invoice}</span></p>
        </div>
    }
}

/// The buttons of `methods` (in order), with the last start's `problem` above them.
fn choose_method(checkout: Checkout, methods: Vec<Method>, problem: Option<StartProblem>) -> impl IntoView {
    let t = move |k| checkout.t(k);
    let alert = problem.map(|p| {
        let text = match p {
            StartProblem::Unreachable => t(Key::Unreachable),
            StartProblem::ProviderUnavailable if methods.first() == Some(&Method::Upi) => t(Key::UpiUnavailable),
            StartProblem::ProviderUnavailable => t(Key::ProviderUnavailable),
            // The provider's words (English, for developers) go to the console, not after the customer's text.
            StartProblem::Refused(message) => {
                if !message.is_empty() {
                    dom::warn(&message);
                }
                t(Key::StartFailed)
            }
        };
        let retry = methods.first().copied();
        view! {
            <div class="dp-alert" role="alert">
                <p data-testid="deshpay-error">{text}</p>
                {retry.map(|m| try_again(checkout, Retry::Start(m), Key::TryAgain))}
            </div>
        }
    });
    let pending = checkout.pending;
    let buttons = methods
        .into_iter()
        .map(|method| {
            let label = t(match method {
                Method::Bkash => Key::PayWithBkash,
                Method::Upi => Key::PayWithUpi,
            });
            view! {
                <li>
                    <button
                        type="button"
                        class="dp-btn"
                        class=("dp-btn-bkash", method == Method::Bkash)
                        aria-disabled=move || pending.get().then_some("true")
                        // aria-disabled rather than disabled keeps focus on the button while busy.
                        on:click=move |_| checkout.pay(method)
                    >
                        {spinner(move || pending.get())}
                        {label}
                    </button>
                </li>
            }
        })
        .collect_view();
    view! {
        {alert}
        <h2 class="dp-label" id="dp-methods">{t(Key::ChooseMethod)}</h2>
        <ul class="dp-methods" aria-labelledby="dp-methods">{buttons}</ul>
    }
}

/// Which glyph a heading shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Icon {
    Success,
    Error,
    Info,
}

impl Icon {
    fn as_str(self) -> &'static str {
        match self {
            Icon::Success => "dp-icon dp-icon-success",
            Icon::Error => "dp-icon dp-icon-error",
            Icon::Info => "dp-icon dp-icon-info",
        }
    }

    /// SVG path: a check, a cross, or an exclamation mark.
    fn path(self) -> &'static str {
        match self {
            Icon::Success => "M7 12.5l3.2 3.2L17 9",
            Icon::Error => "M8.5 8.5l7 7M15.5 8.5l-7 7",
            Icon::Info => "M12 7v6M12 16.5v.5",
        }
    }
}

/// An outcome or info heading that can take focus (tabindex -1) after the return from the provider.
fn heading_view(icon: Icon, text: String) -> impl IntoView {
    view! {
        <div class="dp-heading">
            <svg class=icon.as_str() viewBox="0 0 24 24" aria-hidden="true" focusable="false">
                <circle cx="12" cy="12" r="10.5"></circle>
                <path d=icon.path()></path>
            </svg>
            <h2 tabindex="-1">{text}</h2>
        </div>
    }
}

/// The "Try again" (or "Check status") button: `label` names what `retry` does.
fn try_again(checkout: Checkout, retry: Retry, label: Key) -> impl IntoView {
    let on_click = move |_| match retry {
        Retry::Choose => checkout.show(Screen::Choose { problem: None }),
        Retry::Poll => checkout.poll(),
        Retry::Load => checkout.load(),
        Retry::Start(method) => checkout.pay(method),
    };
    view! {
        <button type="button" class="dp-btn" on:click=on_click>
            {checkout.t(label)}
        </button>
    }
}

/// Whether the UPI screen's wasm module has been loaded (always, when it is not split off).
fn upi_loaded() -> bool {
    UPI_LOADED.with(Cell::get)
}

thread_local! {
    static UPI_LOADED: Cell<bool> = const { Cell::new(!cfg!(deshpay_split)) };
}

/// Loads the UPI screen's wasm module (once; a failed download is tried again on the next call).
async fn load_upi() -> Result<(), SplitLoaderError> {
    if upi_loaded() {
        return Ok(());
    }
    #[cfg(deshpay_split)]
    preload_upi_screen().await?;
    UPI_LOADED.with(|loaded| loaded.set(true));
    Ok(())
}

/// Calls a function of the UPI module once it is loaded: its future is then ready at the first poll (`None`
/// before).
#[cfg(deshpay_split)]
fn loaded<T>(future: impl Future<Output = Result<T, SplitLoaderError>>) -> Option<T> {
    use std::task::{Context, Poll, Waker};
    match std::pin::pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result.ok(),
        Poll::Pending => None,
    }
}

#[cfg(not(deshpay_split))]
fn loaded<T>(result: Result<T, SplitLoaderError>) -> Option<T> {
    result.ok()
}

/// The UPI screen, or nothing before its module is loaded ([`Checkout::show`] waits for it).
fn upi_view(checkout: Checkout, payment: UpiPayment, layout: UpiLayout, cancel_failed: bool) -> Option<AnyView> {
    loaded(upi_screen(checkout, payment, layout, cancel_failed))
}

/// The UPI screen, in its own wasm module in the release build: built with `--cfg deshpay_split`, wasm-split cuts
/// this function and everything only it uses out of the main module (see `xtask/src/build.rs`), and the widget
/// fetches it when the session offers UPI, so the bKash path never downloads it. Other builds (component tests,
/// debug) keep it in the main module.
#[cfg_attr(
    deshpay_split,
    leptos::wasm_split::wasm_split(upi, wasm_split_path = ::leptos::wasm_split, preload(preload_upi_screen), fallible)
)]
fn upi_screen(
    checkout: Checkout,
    payment: UpiPayment,
    layout: UpiLayout,
    cancel_failed: bool,
) -> Result<AnyView, SplitLoaderError> {
    Ok(upi_pay(checkout, payment, layout, cancel_failed).into_any())
}

/// [`Checkout::start_upi_payin`] and what only it uses (the payin's decoding, following it live), in the UPI
/// module too. A boxed future: split functions cannot be `async`.
#[cfg_attr(
    deshpay_split,
    leptos::wasm_split::wasm_split(upi, wasm_split_path = ::leptos::wasm_split, preload(preload_upi_start), fallible)
)]
fn start_upi_payin(checkout: Checkout) -> Result<Pin<Box<dyn Future<Output = ()>>>, SplitLoaderError> {
    Ok(Box::pin(checkout.start_upi_payin()))
}

/// A UPI payment request waiting for approval: the QR code (desktop) or the app buttons (phone), the countdown
/// to its expiry, and "Cancel". Its little interactivity (toggle, countdown) works on the DOM directly: signals of
/// new types would cost the wasm more than the QR encoder.
fn upi_pay(checkout: Checkout, payment: UpiPayment, layout: UpiLayout, cancel_failed: bool) -> impl IntoView {
    let t = move |k| checkout.t(k);
    // Links exactly as the backend gave them; the widget never builds one.
    let [paytm, phonepe, other] = payment.apps().map(|(label, href)| {
        let name = match label {
            AppLabel::Paytm => "Paytm".to_owned(),
            AppLabel::PhonePe => "PhonePe".to_owned(),
            AppLabel::OtherUpiApp => t(Key::OtherUpiApp),
        };
        href.map(|href| view! { <li><a class="dp-btn" href=href.to_owned()>{name}</a></li> })
    });
    let apps = (paytm, phonepe, other);
    // One tree for both layouts (fewer view types, fewer bytes): a phone has no QR code and no toggle.
    let desktop = layout == UpiLayout::Qr;
    let code = if desktop { payment.qr } else { None };
    // The app buttons show at once on a phone, or when no QR code could be drawn.
    let open = code.is_none();
    let (title, hint) =
        if desktop { (Key::UpiScanTitle, Key::UpiScanHint) } else { (Key::UpiAppsTitle, Key::UpiAppsHint) };
    let toggle = desktop.then(|| {
        view! {
            <button
                type="button"
                class="dp-btn dp-btn-quiet"
                aria-expanded=if open { "true" } else { "false" }
                aria-controls="dp-upi-apps"
                on:click=|ev| dom::toggle_disclosure(&ev)
            >
                {t(Key::UpiPayOnDevice)}
            </button>
        }
    });
    let problem = cancel_failed
        .then(|| view! { <p class="dp-alert" role="alert" data-testid="deshpay-error">{t(Key::CancelFailed)}</p> });
    view! {
        <h2 tabindex="-1" class="dp-title">{t(title)}</h2>
        {code.map(|code| qr_code(code, t(Key::UpiQrLabel)))}
        <p class="dp-muted" class=("dp-center", desktop)>{t(hint)}</p>
        {countdown(checkout, payment.expires_at)}
        {toggle}
        <ul class="dp-methods" id="dp-upi-apps" hidden=!open>{apps}</ul>
        {problem}
        <button type="button" class="dp-btn dp-btn-quiet" on:click=move |_| spawn_local(checkout.cancel())>
            {t(Key::Cancel)}
        </button>
    }
}

/// The QR code on a white plate with its quiet zone, black modules: dark-on-light in every theme; `label` is its
/// accessible name.
fn qr_code(code: QrSvg, label: String) -> impl IntoView {
    let size = money::digits(i64::from(code.size));
    let view_box = crate::cat(&["0 0 ", &size, " ", &size]);
    // Four CSS pixels a module: whole pixels keep the modules sharp (the CSS shrinks it on narrow screens).
    let side = money::digits(i64::from(code.size) * 4);
    view! {
        <div class="dp-qr">
            <svg viewBox=view_box width=side.clone() height=side role="img" aria-label=label shape-rendering="crispEdges" data-testid="deshpay-qr">
                <rect width="100%" height="100%" fill="#fff"></rect>
                <path d=code.path fill="#000"></path>
            </svg>
        </div>
    }
}

/// Time left until the payment request expires (RFC 3339 `expires_at`; empty in previews: 15 minutes from now),
/// `m:ss`, ticking each second. Screen readers hear it at most once a minute: the timer itself is not live; a
/// polite region says the whole minutes left when they change.
fn countdown(checkout: Checkout, expires_at: String) -> impl IntoView {
    let parsed = js_sys::Date::parse(&expires_at);
    let deadline = if parsed.is_finite() { parsed } else { js_sys::Date::now() + PREVIEW_TTL_MS };
    let left = move || ((deadline - js_sys::Date::now()) / 1_000.0).ceil().max(0.0) as i64;
    let container = checkout.fixed().container.clone();
    spawn_local(async move {
        dom::sleep(0).await;
        let find = |selector| container.query_selector(selector).ok().flatten();
        let (Some(timer), Some(announcer)) = (find("[role=timer]"), find(".dp-countdown + .dp-sr")) else {
            return;
        };
        let mut minutes = (left() + 59) / 60;
        // Stops when the screen changes and takes the timer away.
        while timer.is_connected() {
            dom::sleep(1_000).await;
            let seconds = left();
            timer.set_text_content(Some(&state::countdown(seconds)));
            if (seconds + 59) / 60 != minutes {
                minutes = (seconds + 59) / 60;
                if minutes > 0 && checkout.alive() {
                    let text = crate::cat(&[&money::digits(minutes), " ", &checkout.t(Key::UpiMinutesLeft)]);
                    announcer.set_text_content(Some(&text));
                }
            }
            if seconds == 0 {
                // Time is up: the backend says "expired" (through the stream too; this is in case that failed).
                checkout.recheck();
                return;
            }
        }
    });
    view! {
        <p class="dp-countdown">
            <span class="dp-muted">{checkout.t(Key::UpiTimeLeft)}</span>
            " "
            <span role="timer" class="dp-code" data-testid="deshpay-countdown">{state::countdown(left())}</span>
        </p>
        <p class="dp-sr" aria-live="polite"></p>
    }
}
