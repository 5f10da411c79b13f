//! The Leptos views: one root that owns the checkout state, and one small view function per part of a screen.
//!
//! State lives in [`Checkout`], a `Copy` context of signals; every change of screen goes through
//! [`Checkout::show`], which also fires the host events and moves focus once the DOM has been updated.

use crate::api;
use crate::config::Config;
use crate::dom::{self, EventDetail};
use crate::i18n::Key;
use crate::money;
use crate::state::{self, AfterStartError, Screen, StartProblem};
use deshpay_api::{CheckoutView, Method};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::cell::Cell;
use std::rc::Rc;
use web_sys::HtmlElement;

/// How often and how long the widget polls while the backend confirms a payment.
const POLL_INTERVAL_MS: i32 = 1_000;
const POLL_TRIES: u32 = 60;

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

    /// A text in the widget's locale, with the merchant's override.
    fn t(self, key: Key) -> String {
        self.fixed().config.strings.get(key).to_owned()
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
            v.as_ref().and_then(|v| v.attempt.as_ref()).map_or(Method::Bkash, |a| a.method).as_str()
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

    /// Starts a payment with `method` and sends the browser to the provider.
    async fn start(self, method: Method) {
        debug_assert_eq!(method, Method::Bkash, "only bKash has a flow so far");
        if self.is_preview() {
            self.show(Screen::Redirecting);
            return;
        }
        let config = &self.fixed().config;
        let (endpoint, session) = (config.endpoint.clone(), config.session.clone());
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
            Err(error) => match state::after_start_error(&error) {
                AfterStartError::Show(screen) => self.show(screen),
                AfterStartError::Poll => self.poll(),
                AfterStartError::Reload => self.load(),
            },
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
    /// A "Try again" button.
    retry: Option<Retry>,
}

fn body(checkout: Checkout, screen: Screen) -> impl IntoView {
    let t = move |k| checkout.t(k);
    let info = |icon, title, body: Key| Body {
        heading: Some((icon, title)),
        para: Some(Para::plain(t(body))),
        ..Body::default()
    };
    let retry = |mut body: Body, retry| {
        body.retry = Some(retry);
        body
    };
    let body = match screen {
        Screen::Loading | Screen::Redirecting | Screen::Confirming => Body::default(),
        Screen::Choose { problem } => {
            let methods = checkout.view.with_untracked(|v| v.as_ref().map(state::usable_methods).unwrap_or_default());
            Body { choose: Some((methods, problem)), ..Body::default() }
        }
        Screen::Succeeded { trx_id } => {
            Body { heading: Some((Icon::Success, Key::Success)), receipt: Some(trx_id), ..Body::default() }
        }
        Screen::Failed { reason } => Body {
            heading: Some((Icon::Error, Key::Failed)),
            para: Some(Para {
                testid: Some("deshpay-reason"),
                ..Para::plain(reason.unwrap_or_else(|| t(Key::FailedNoReason)))
            }),
            retry: Some(Retry::Choose),
            ..Body::default()
        },
        Screen::Cancelled => retry(info(Icon::Info, Key::Cancelled, Key::CancelledBody), Retry::Choose),
        Screen::AttemptExpired => retry(info(Icon::Info, Key::Expired, Key::ExpiredBody), Retry::Choose),
        Screen::StillConfirming => {
            Body { para: Some(Para::plain(t(Key::StillConfirming))), retry: Some(Retry::Poll), ..Body::default() }
        }
        Screen::SessionExpired => info(Icon::Info, Key::SessionExpired, Key::SessionExpiredBody),
        Screen::SessionCanceled => info(Icon::Info, Key::SessionCanceled, Key::SessionCanceledBody),
        Screen::NoMethod => info(Icon::Info, Key::NoMethod, Key::NoMethodBody),
        Screen::NotFound => Body { para: Some(Para::alert(t(Key::NotFound))), ..Body::default() },
        Screen::Unreachable => {
            Body { para: Some(Para::alert(t(Key::Unreachable))), retry: Some(Retry::Load), ..Body::default() }
        }
    };
    let Body { choose, heading, receipt, para, retry } = body;
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
        {retry.map(|retry| try_again(checkout, retry))}
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
            StartProblem::ProviderUnavailable => t(Key::ProviderUnavailable),
            StartProblem::Refused(message) if message.is_empty() => t(Key::StartFailed),
            StartProblem::Refused(message) => crate::cat(&[&t(Key::StartFailed), " ", &message]),
        };
        let retry = methods.first().copied();
        view! {
            <div class="dp-alert" role="alert">
                <p data-testid="deshpay-error">{text}</p>
                {retry.map(|m| try_again(checkout, Retry::Start(m)))}
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

/// The "Try again" button.
fn try_again(checkout: Checkout, retry: Retry) -> impl IntoView {
    let on_click = move |_| match retry {
        Retry::Choose => checkout.show(Screen::Choose { problem: None }),
        Retry::Poll => checkout.poll(),
        Retry::Load => checkout.load(),
        Retry::Start(method) => checkout.pay(method),
    };
    view! {
        <button type="button" class="dp-btn" on:click=on_click>
            {checkout.t(Key::TryAgain)}
        </button>
    }
}
