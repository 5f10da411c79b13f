//! The Leptos components: one root that owns the checkout state, and one small component per screen.
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
use crate::qr;
use crate::state::{self, AfterStartError, AppLabel, Screen, StartProblem, UpiLayout, UpiPayment, UpiProgress};
use deshpay_api::{CheckoutView, ErrorCode, Method};
use leptos::prelude::*;
use leptos::task::spawn_local;
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
    config: StoredValue<Config>,
    host: StoredValue<HtmlElement, LocalStorage>,
    container: StoredValue<HtmlElement, LocalStorage>,
    /// Incremented by each poll loop, so that a newer loop stops an older one.
    poll_generation: StoredValue<u32>,
    ready_sent: StoredValue<bool>,
    /// What follows a UPI attempt live; `None` when nothing is followed.
    live: StoredValue<Option<Live>, LocalStorage>,
    /// Incremented whenever following starts or stops, so that late events, loops and answers are ignored.
    live_generation: StoredValue<u32>,
}

/// The live status of one UPI attempt: its event stream (dropped on failure, for polling) and the listener that
/// re-checks when the page becomes visible. Dropping it closes both.
struct Live {
    /// The attempt followed.
    attempt: Option<String>,
    _stream: Option<dom::EventStream>,
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
            config: StoredValue::new(config),
            host: StoredValue::new_local(host),
            container: StoredValue::new_local(container),
            poll_generation: StoredValue::new(0),
            ready_sent: StoredValue::new(false),
            live: StoredValue::new_local(None),
            live_generation: StoredValue::new(0),
        }
        .starting_at(screen)
    }

    fn starting_at(self, screen: Screen) -> Checkout {
        self.show(screen);
        self
    }

    /// A text in the widget's locale, with the merchant's override.
    fn t(self, key: Key) -> String {
        self.config.with_value(|c| c.strings.get(key).to_owned())
    }

    fn is_preview(self) -> bool {
        self.config.with_value(|c| c.preview.is_some())
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
        self.screen.set(next.clone());
        let returned = self.config.with_value(|c| c.returned);
        spawn_local(async move {
            dom::sleep(0).await;
            if self.screen.try_get_untracked().as_ref() != Some(&next) {
                return; // superseded before it was painted
            }
            let host = self.host.get_value();
            let first_load = !self.ready_sent.get_value();
            if next == Screen::Loading {
                return;
            }
            if first_load {
                self.ready_sent.set_value(true);
                dom::dispatch(&host, "deshpay:ready", &self.detail(None, None));
            }
            if let Some((outcome, reason)) = next.outcome() {
                let trx_id = match &next {
                    Screen::Succeeded { trx_id } => Some(trx_id.clone()),
                    _ => None,
                };
                dom::dispatch(&host, outcome.event(), &self.detail(trx_id, reason));
            }
            // On first load, focus moves only on the return from bKash (the customer's context changed); after
            // an action in the widget, focus follows the content that replaced the button just pressed.
            let container = self.container.get_value();
            if first_load {
                if returned && next.is_outcome() {
                    dom::focus_first(&container, FOCUS_HEADING);
                }
            } else if !dom::focus_first(&container, FOCUS_HEADING) {
                dom::focus_first(&container, FOCUS_BUTTON);
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
        EventDetail { session: self.config.with_value(|c| c.session.clone()), method: Some(method), trx_id, reason }
    }

    /// Reads the session and shows what it says; keeps polling if a payment is being confirmed.
    fn load(self) {
        if let Some(screen) = self.config.with_value(|c| c.preview.as_ref().map(|p| p.screen.clone())) {
            self.show(screen);
            return;
        }
        if !self.config.with_value(Config::session_is_well_formed) {
            self.show(Screen::NotFound);
            return;
        }
        self.show(Screen::Loading);
        let (endpoint, session, returned) =
            self.config.with_value(|c| (c.endpoint.clone(), c.session.clone(), c.returned));
        spawn_local(async move {
            let result = api::checkout_view(&endpoint, &session).await;
            if !self.alive() {
                return;
            }
            match result {
                Ok(view) => {
                    let screen = state::screen_for(&view, returned);
                    self.view.set(Some(view));
                    if screen == Screen::Confirming {
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
        let generation = self.poll_generation.get_value().wrapping_add(1);
        self.poll_generation.set_value(generation);
        let (endpoint, session) = self.config.with_value(|c| (c.endpoint.clone(), c.session.clone()));
        spawn_local(async move {
            for _ in 0..POLL_TRIES {
                dom::sleep(POLL_INTERVAL_MS).await;
                if !self.alive() || self.poll_generation.try_get_value() != Some(generation) {
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
        let (endpoint, session) = self.config.with_value(|c| (c.endpoint.clone(), c.session.clone()));
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
        let layout = if dom::is_phone() { UpiLayout::Apps } else { UpiLayout::Qr };
        if self.is_preview() {
            self.show(Screen::UpiWaiting { payment: UpiPayment::demo(), layout, cancel_failed: false });
            return;
        }
        let (endpoint, session) = self.config.with_value(|c| (c.endpoint.clone(), c.session.clone()));
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
        let (endpoint, session) = self.config.with_value(|c| (c.endpoint.clone(), c.session.clone()));
        // Both callbacks hand over to a task: what they start may close the stream they are called from.
        let stream = dom::EventStream::open(
            &api::events_url(&endpoint, &session),
            "session",
            move |data| spawn_local(self.live_event(generation, api::parse_view(&data).ok_or(()))),
            move || spawn_local(self.live_event(generation, Err(()))),
        );
        let polling = stream.is_none();
        let visible = dom::on_page_visible(move || self.recheck());
        self.live.set_value(Some(Live { attempt, _stream: stream, _visible: visible }));
        if polling {
            self.poll_live(generation, LIVE_POLL_MS, LIVE_POLL_TRIES);
        }
    }

    /// A `session` event (`Ok`), or the stream failed or ended (`Err`): then poll instead.
    async fn live_event(self, generation: u32, event: Result<CheckoutView, ()>) {
        match event {
            Ok(view) => self.live_view(generation, view),
            Err(()) if self.is_live(generation) => {
                self.live.update_value(|l| {
                    if let Some(l) = l {
                        l._stream = None;
                    }
                });
                self.poll_live(generation, LIVE_POLL_MS, LIVE_POLL_TRIES);
            }
            Err(()) => {}
        }
    }

    /// Stops following (closing the stream and listener); returns the new generation.
    fn stop_live(self) -> u32 {
        let generation = self.live_generation.try_get_value().unwrap_or_default().wrapping_add(1);
        self.live_generation.try_set_value(generation);
        self.live.try_set_value(None);
        generation
    }

    fn is_live(self, generation: u32) -> bool {
        self.alive() && self.live_generation.try_get_value() == Some(generation)
    }

    /// Reads the session `tries` times, `delay_ms` apart, while `generation` is followed.
    fn poll_live(self, generation: u32, delay_ms: i32, tries: u32) {
        let (endpoint, session) = self.config.with_value(|c| (c.endpoint.clone(), c.session.clone()));
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
        if let Some(generation) = self.live_generation.try_get_value()
            && self.live.try_with_value(Option::is_some) == Some(true)
        {
            self.poll_live(generation, 0, 1);
        }
    }

    /// A fresh view while following: keeps waiting, shows "Confirming…", or stops and shows the outcome.
    fn live_view(self, generation: u32, view: CheckoutView) {
        if !self.is_live(generation) {
            return;
        }
        let attempt = self.live.with_value(|l| l.as_ref().and_then(|l| l.attempt.clone()));
        let progress = state::upi_progress(&view, attempt.as_deref());
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
        let generation = self.live_generation.get_value();
        if self.is_preview() {
            self.show(Screen::Cancelled);
            return;
        }
        let (endpoint, session) = self.config.with_value(|c| (c.endpoint.clone(), c.session.clone()));
        let result = api::cancel(&endpoint, &session).await;
        // The live status may have shown the outcome meanwhile: then there is nothing left to do.
        if !self.is_live(generation) {
            return;
        }
        match result {
            Ok(view) => {
                let attempt = self.live.with_value(|l| l.as_ref().and_then(|l| l.attempt.clone()));
                let screen = match state::upi_progress(&view, attempt.as_deref()) {
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
        view! { <App checkout=checkout/> }
    });
    Box::new(handle)
}

/// The root: theme and language on the outer element, the session summary, the current screen, and the
/// status region.
#[component]
fn App(
    /// The widget's state.
    checkout: Checkout,
) -> impl IntoView {
    provide_context(checkout);
    let (theme, lang) = checkout.config.with_value(|c| (c.theme.as_str(), c.strings.locale().as_str()));
    let start = Action::new_local(move |method: &Method| checkout.start(*method));
    let status = move || checkout.screen.with(|s| s.status_key().map(|k| checkout.t(k)).unwrap_or_default());
    let progress = move || checkout.screen.with(Screen::is_progress);

    view! {
        <div class="dp" data-theme=theme lang=lang>
            {move || checkout.view.get().map(|v| view! { <Summary view=v/> })}
            <div class="dp-body">{move || screen_view(checkout, checkout.screen.get(), start)}</div>
            <p class="dp-status" class=("dp-sr", move || !progress()) role="status" aria-live="polite" data-testid="deshpay-status">
                <Show when=progress>
                    <span class="dp-spinner" aria-hidden="true"></span>
                </Show>
                <span>{status}</span>
            </p>
        </div>
    }
}

fn screen_view(checkout: Checkout, screen: Screen, start: Action<Method, ()>) -> AnyView {
    let t = move |k| checkout.t(k);
    match screen {
        Screen::Loading | Screen::Redirecting | Screen::Confirming => ().into_any(),
        Screen::UpiWaiting { payment, layout, cancel_failed } => {
            view! { <UpiPay payment=payment layout=layout cancel_failed=cancel_failed/> }.into_any()
        }
        Screen::Choose { problem } => {
            let methods = checkout.view.with_untracked(|v| v.as_ref().map(state::usable_methods).unwrap_or_default());
            view! { <ChooseMethod methods=methods problem=problem start=start/> }.into_any()
        }
        Screen::Succeeded { trx_id } => view! {
            <Heading icon=Icon::Success text=t(Key::Success)/>
            <p class="dp-receipt">
                <span class="dp-muted">{t(Key::TrxId)}</span>
                " "
                <strong class="dp-code" data-testid="deshpay-trx-id">{trx_id}</strong>
            </p>
        }
        .into_any(),
        Screen::Failed { reason } => {
            let reason = reason.unwrap_or_else(|| t(Key::FailedNoReason));
            view! {
                <Heading icon=Icon::Error text=t(Key::Failed)/>
                <p data-testid="deshpay-reason">{reason}</p>
                <TryAgain on_click=move || checkout.show(Screen::Choose { problem: None })/>
            }
            .into_any()
        }
        Screen::Cancelled => outcome_with_retry(checkout, Icon::Info, Key::Cancelled, Key::CancelledBody),
        Screen::AttemptExpired => outcome_with_retry(checkout, Icon::Info, Key::Expired, Key::ExpiredBody),
        Screen::StillConfirming => view! {
            <p>{t(Key::StillConfirming)}</p>
            <TryAgain on_click=move || checkout.poll()/>
        }
        .into_any(),
        Screen::SessionExpired => info(checkout, Key::SessionExpired, Key::SessionExpiredBody),
        Screen::SessionCanceled => info(checkout, Key::SessionCanceled, Key::SessionCanceledBody),
        Screen::NoMethod => info(checkout, Key::NoMethod, Key::NoMethodBody),
        Screen::NotFound => {
            view! { <p class="dp-alert" role="alert" data-testid="deshpay-error">{t(Key::NotFound)}</p> }.into_any()
        }
        Screen::Unreachable => view! {
            <p class="dp-alert" role="alert" data-testid="deshpay-error">{t(Key::Unreachable)}</p>
            <TryAgain on_click=move || checkout.load()/>
        }
        .into_any(),
    }
}

fn outcome_with_retry(checkout: Checkout, icon: Icon, title: Key, body: Key) -> AnyView {
    view! {
        <Heading icon=icon text=checkout.t(title)/>
        <p>{checkout.t(body)}</p>
        <TryAgain on_click=move || checkout.show(Screen::Choose { problem: None })/>
    }
    .into_any()
}

fn info(checkout: Checkout, title: Key, body: Key) -> AnyView {
    view! {
        <Heading icon=Icon::Info text=checkout.t(title)/>
        <p>{checkout.t(body)}</p>
    }
    .into_any()
}

/// Merchant, description, amount and invoice: shown above every screen once the session is known.
#[component]
fn Summary(
    /// The session view.
    view: CheckoutView,
) -> impl IntoView {
    let checkout = expect_context::<Checkout>();
    let locale = checkout.config.with_value(|c| c.strings.locale());
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

/// The method buttons, with the last start's problem above them.
#[component]
fn ChooseMethod(
    /// Methods to offer, in order.
    methods: Vec<Method>,
    /// Why the last start failed, if it did.
    problem: Option<StartProblem>,
    /// Starts a payment with a method; pending while the backend is asked.
    start: Action<Method, ()>,
) -> impl IntoView {
    let checkout = expect_context::<Checkout>();
    let t = move |k| checkout.t(k);
    let alert = problem.map(|p| {
        let text = match p {
            StartProblem::Unreachable => t(Key::Unreachable),
            StartProblem::ProviderUnavailable if methods.first() == Some(&Method::Upi) => t(Key::UpiUnavailable),
            StartProblem::ProviderUnavailable => t(Key::ProviderUnavailable),
            StartProblem::Refused(message) if message.is_empty() => t(Key::StartFailed),
            StartProblem::Refused(message) => format!("{} {message}", t(Key::StartFailed)),
        };
        let retry = methods.first().copied();
        view! {
            <div class="dp-alert" role="alert">
                <p data-testid="deshpay-error">{text}</p>
                {retry.map(|m| view! { <TryAgain on_click=move || { start.dispatch(m); }/> })}
            </div>
        }
    });
    let pending = start.pending();
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
                        on:click=move |_| {
                            // aria-disabled rather than disabled keeps focus on the button while busy.
                            if !pending.get_untracked() {
                                start.dispatch(method);
                            }
                        }
                    >
                        <Show when=move || pending.get()>
                            <span class="dp-spinner" aria-hidden="true"></span>
                        </Show>
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
#[component]
fn Heading(
    /// The glyph beside the heading.
    icon: Icon,
    /// The heading text.
    text: String,
) -> impl IntoView {
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

/// The "Try again" button.
#[component]
fn TryAgain(
    /// What trying again does.
    on_click: impl Fn() + 'static,
) -> impl IntoView {
    let checkout = expect_context::<Checkout>();
    view! {
        <button type="button" class="dp-btn" on:click=move |_| on_click()>
            {checkout.t(Key::TryAgain)}
        </button>
    }
}

/// A UPI payment request waiting for approval: the QR code (desktop) or the app buttons (phone), the countdown
/// to its expiry, and "Cancel". Its little interactivity (toggle, countdown) works on the DOM directly: signals of
/// new types would cost the wasm more than the QR encoder.
#[component]
fn UpiPay(
    /// The payment request, as the backend returned it.
    payment: UpiPayment,
    /// QR code or app buttons.
    layout: UpiLayout,
    /// Show that the last "Cancel" failed.
    cancel_failed: bool,
) -> impl IntoView {
    let checkout = expect_context::<Checkout>();
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
    let code = if desktop { qr::path(&payment.qr) } else { None };
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
        .then(|| view! { <p class="dp-alert" role="alert" data-testid="deshpay-error">{t(Key::Unreachable)}</p> });
    view! {
        <h2 tabindex="-1" class="dp-title">{t(title)}</h2>
        {code.map(|code| view! { <QrCode code=code label=t(Key::UpiQrLabel)/> })}
        <p class="dp-muted" class=("dp-center", desktop)>{t(hint)}</p>
        <Countdown expires_at=payment.expires_at/>
        {toggle}
        <ul class="dp-methods" id="dp-upi-apps" hidden=!open>{apps}</ul>
        {problem}
        <button type="button" class="dp-btn dp-btn-quiet" on:click=move |_| spawn_local(checkout.cancel())>
            {t(Key::Cancel)}
        </button>
    }
}

/// The QR code on a white plate with its quiet zone, black modules: dark-on-light in every theme.
#[component]
fn QrCode(
    /// The drawing.
    code: qr::QrPath,
    /// Accessible name.
    label: String,
) -> impl IntoView {
    let view_box = format!("0 0 {0} {0}", code.size);
    // Four CSS pixels a module: whole pixels keep the modules sharp (the CSS shrinks it on narrow screens).
    let side = (code.size * 4).to_string();
    view! {
        <div class="dp-qr">
            <svg viewBox=view_box width=side.clone() height=side role="img" aria-label=label shape-rendering="crispEdges" data-testid="deshpay-qr">
                <rect width="100%" height="100%" fill="#fff"></rect>
                <path d=code.d fill="#000"></path>
            </svg>
        </div>
    }
}

/// Time left until the payment request expires, `m:ss`, ticking each second. Screen readers hear it at most once a
/// minute: the timer itself is not live; a polite region says the whole minutes left when they change.
#[component]
fn Countdown(
    /// RFC 3339 expiry; empty in previews (15 minutes from now).
    expires_at: String,
) -> impl IntoView {
    let checkout = expect_context::<Checkout>();
    let parsed = js_sys::Date::parse(&expires_at);
    let deadline = if parsed.is_finite() { parsed } else { js_sys::Date::now() + PREVIEW_TTL_MS };
    let left = move || ((deadline - js_sys::Date::now()) / 1_000.0).ceil().max(0.0) as i64;
    let container = checkout.container.get_value();
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
                if minutes > 0 {
                    let text = format!("{minutes} {}", checkout.t(Key::UpiMinutesLeft));
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
