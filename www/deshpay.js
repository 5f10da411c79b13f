/*! DeshPay Checkout loader (ES module). Three ways to embed the widget:
 *
 *   <script type="module" src="https://cdn.example/deshpay.js" data-session="cs_..."
 *           data-endpoint="https://pay.example" [data-target="#css-selector"] [data-theme="dark"] [data-locale="bn"]></script>
 *   <deshpay-checkout session="cs_..." endpoint="https://pay.example" theme="bkash" locale="hi"></deshpay-checkout>
 *   import { mount } from 'https://cdn.example/deshpay.js';  // or window.DeshPay.mount
 *   const handle = mount(element, { session, endpoint, theme, locale, strings, onSuccess, ... });
 *
 * Content-Security-Policy the merchant's page needs (cdn.example serves deshpay.js and pkg/, pay.example is
 * the merchant backend; use 'self' for either when it is the page's own origin):
 *
 *   script-src 'self' 'wasm-unsafe-eval' https://cdn.example;
 *   connect-src https://pay.example https://cdn.example;
 *
 * - script-src: the loader and pkg/deshpay_widget.js are module scripts; 'wasm-unsafe-eval' allows
 *   WebAssembly to compile (without it the loader shows its fallback and fires deshpay:failure with
 *   detail.reason 'wasm_unavailable').
 * - connect-src: the widget API on the backend, and fetch() of pkg/deshpay_widget_bg.wasm.
 * - style-src needs nothing: the widget's CSS is a constructable stylesheet (adoptedStyleSheets) and theme
 *   properties are set through the CSSOM (style.setProperty); CSP restricts neither. Only browsers without
 *   constructable stylesheets (Safari before 16.4) fall back to a <style> element, which needs
 *   style-src 'unsafe-inline' there.
 * - Sending the customer to bKash's page is a top-level navigation, which CSP does not restrict.
 */

const PKG = new URL('./pkg/', import.meta.url).href;
const GLUE = new URL('deshpay_widget.js', PKG).href;
const WASM = new URL('deshpay_widget_bg.wasm', PKG).href;
// English is built into the wasm; the other locales' texts are fetched (pkg/deshpay-<locale>.json), only when used.
const LOCALES = ['en', 'bn', 'hi'];
const EVENTS = { onReady: 'deshpay:ready', onSuccess: 'deshpay:success', onFailure: 'deshpay:failure', onCancel: 'deshpay:cancel' };
const COLORS = {
  primary: 'primary', onPrimary: 'on-primary', 'on-primary': 'on-primary', bg: 'bg', background: 'bg', text: 'text',
  muted: 'muted', border: 'border', error: 'error', success: 'success', focus: 'focus',
};
// Shown when the widget cannot start, in the language it would have spoken (it cannot say this itself), then
// (after a newline) the link to the hosted payment page. Bengali and Hindi come last in their texts file
// (loadTexts), so that English pages do not download them.
const FALLBACK = { en: 'The payment form could not load. Please refresh the page or contact the seller.\nContinue on a secure payment page' };
const HANDLE = Symbol('deshpay');

let glue; // Promise of the initialised wasm-bindgen module, shared by every widget on the page.
const texts = {}; // locale -> Promise of its texts (an array in the widget's key order), shared likewise.

function load() {
  glue ??= (async () => {
    if (typeof WebAssembly !== 'object') throw new Error('WebAssembly is not available');
    // The wasm downloads and compiles (as it streams in) while the glue downloads, not after it: the glue only
    // instantiates the compiled module (BENCHMARKS.md, "Page load to deshpay:ready").
    const wasm = fetch(WASM).then((response) => {
      if (!response.ok) throw new Error(`HTTP ${response.status} for ${WASM}`);
      // Streaming compilation needs the application/wasm type; a server that sends another gets the slow path.
      return /^application\/wasm\b/.test(response.headers.get('content-type'))
        ? WebAssembly.compileStreaming(response)
        : response.arrayBuffer().then((bytes) => WebAssembly.compile(bytes));
    });
    wasm.catch(() => {}); // reported by the await below, or moot when the glue cannot load
    const module = await import(GLUE);
    await module.default({ module_or_path: await wasm });
    return module;
  })().catch((error) => {
    glue = undefined; // a later mount may try again
    throw error;
  });
  return glue;
}

/** The first supported locale among the option, the page's <html lang> and the browser's language (as the wasm picks). */
function pickLocale(option) {
  for (const tag of [option, document.documentElement.lang, navigator.language]) {
    const primary = String(tag ?? '').trim().split(/[-_]/)[0].toLowerCase();
    if (LOCALES.includes(primary)) return primary;
  }
  return 'en';
}

/** The texts of `locale`, or undefined for English (built in). */
function loadTexts(locale) {
  if (locale === 'en') return Promise.resolve(undefined);
  texts[locale] ??= fetch(new URL(`deshpay-${locale}.json`, PKG)).then((response) => {
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }).then((table) => {
    FALLBACK[locale] = table.pop();
    return table;
  }).catch((error) => {
    delete texts[locale]; // a later mount may try again
    throw error;
  });
  return texts[locale];
}

/** Sets a theme object's values as --deshpay-* properties on the host; returns the preset name and the properties set. */
function applyTheme(host, theme) {
  if (theme == null || typeof theme === 'string') return [theme, []];
  const set = [];
  const put = (name, value) => {
    if (value == null || value === '') return;
    host.style.setProperty(name, typeof value === 'number' ? `${value}px` : String(value));
    set.push(name);
  };
  for (const [key, value] of Object.entries(theme.colors ?? {})) {
    if (COLORS[key]) put(`--deshpay-color-${COLORS[key]}`, value);
    else console.warn(`DeshPay: unknown theme colour ${JSON.stringify(key)}`);
  }
  put('--deshpay-radius', theme.radius);
  put('--deshpay-font', theme.font);
  put('--deshpay-space', theme.spacing);
  return [theme.base, set];
}

function fallback(host, root, session, reason, locale, endpoint) {
  const box = document.createElement('div');
  box.setAttribute('role', 'alert');
  box.lang = locale;
  const [text, label] = (FALLBACK[locale] ?? FALLBACK.en).split('\n');
  box.textContent = text;
  // CSSOM, not a style attribute: allowed by a strict CSP.
  const css = (el, props) => { for (const [k, v] of Object.entries(props)) el.style.setProperty(k, v); };
  css(box, { padding: '16px', border: '1px solid #b3261e', 'border-radius': '8px', color: '#1a1a1a', background: '#fff', font: '16px/1.5 system-ui, sans-serif' });
  // Without WebAssembly here (an in-app browser, the page's CSP), the same payment on the backend's hosted page
  // (GET /pay/{id}), unless this is that page.
  const page = /^cs_\w+$/.test(session) && /^https?:\/\//.test(endpoint) && `${endpoint.replace(/\/+$/, '')}/pay/${session}`;
  if (reason === 'wasm_unavailable' && page && page !== location.origin + location.pathname) {
    const link = document.createElement('a');
    link.href = page;
    link.textContent = label;
    css(link, { display: 'block', 'margin-top': '8px', color: '#0b57d0', 'font-weight': '600' });
    box.append(link);
  }
  root.replaceChildren(box);
  const detail = { session, reason };
  host.dispatchEvent(new CustomEvent('deshpay:failure', { bubbles: true, composed: true, detail }));
}

/**
 * Mounts the widget into `element` (inside an open shadow root) and returns a handle with `unmount()`.
 * Mounting an element again replaces its widget.
 */
export function mount(element, options = {}) {
  if (!(element instanceof Element)) throw new TypeError('DeshPay.mount: the first argument must be an element');
  element[HANDLE]?.unmount();
  const host = element;
  host.setAttribute('data-deshpay-host', '');
  const root = host.shadowRoot ?? host.attachShadow({ mode: 'open' });
  const [theme, themeProps] = applyTheme(host, options.theme);
  const listeners = Object.entries(EVENTS)
    .filter(([name]) => typeof options[name] === 'function')
    .map(([name, type]) => {
      const listener = (event) => options[name](event.detail, event);
      host.addEventListener(type, listener);
      return [type, listener];
    });
  const { session, endpoint, strings, preview } = options;
  // The widget's first request, the session view, is made now, beside the wasm's download, rather than once the
  // wasm has started; the widget awaits this answer instead of asking (a failure is asked once more, as the widget
  // would have asked a moment later). The URL is the one the widget builds (src/api.rs).
  const id = typeof session === 'string' ? session.trim() : '';
  const view = !preview && typeof endpoint === 'string' && /^cs_\w+$/.test(id)
    ? `${endpoint.trim().replace(/\/+$/, '')}/v1/checkout/${id}`
    : undefined;
  const prefetch = view && fetch(view).catch(() => fetch(view));
  prefetch?.catch(() => {}); // the widget reports it
  // Fetched beside the wasm, not after it; without them the widget speaks English rather than not at all.
  let locale = pickLocale(options.locale);
  const localeTexts = loadTexts(locale).catch((error) => {
    console.warn(`DeshPay: the ${locale} texts could not load (${error}); showing English`);
    locale = 'en';
  });

  let widget = null;
  let gone = false;
  const loaded = Promise.all([load(), localeTexts]).then(
    ([module, texts]) => {
      if (gone) return false;
      try {
        widget = module.mount(host, root, { session, endpoint, theme, locale, strings, preview, texts, prefetch });
        return true;
      } catch (error) {
        console.error(error);
        fallback(host, root, session, 'invalid_options', locale);
        return false;
      }
    },
    // After the texts, which carry the fallback's words in Bengali and Hindi.
    (error) => localeTexts.then(() => {
      if (gone) return false;
      console.error('DeshPay: WebAssembly could not start:', error);
      fallback(host, root, session, 'wasm_unavailable', locale, endpoint);
      return false;
    }),
  );

  const handle = {
    loaded,
    unmount() {
      if (gone) return;
      gone = true;
      widget?.unmount();
      widget?.free();
      widget = null;
      for (const [type, listener] of listeners) host.removeEventListener(type, listener);
      for (const name of themeProps) host.style.removeProperty(name);
      root.replaceChildren();
      if (element[HANDLE] === handle) delete element[HANDLE];
    },
  };
  element[HANDLE] = handle;
  return handle;
}

/** `<deshpay-checkout session endpoint theme locale>`: mounts when connected, unmounts when removed. */
class DeshPayCheckout extends HTMLElement {
  static observedAttributes = ['session', 'endpoint', 'theme', 'locale'];
  #handle = null;

  connectedCallback() {
    this.#render();
  }

  disconnectedCallback() {
    this.#handle?.unmount();
    this.#handle = null;
  }

  attributeChangedCallback() {
    if (this.#handle) this.#render();
  }

  #render() {
    const attr = (name) => this.getAttribute(name) ?? undefined;
    this.#handle = mount(this, { session: attr('session'), endpoint: attr('endpoint'), theme: attr('theme'), locale: attr('locale') });
  }
}

if (!customElements.get('deshpay-checkout')) customElements.define('deshpay-checkout', DeshPayCheckout);

/** `<script type="module" src=".../deshpay.js" data-session ...>`: a widget right after the script or in data-target. */
function mountScriptTags() {
  // document.currentScript is null in modules: find our tags by their resolved src.
  for (const script of document.querySelectorAll('script[type=module][data-session]')) {
    if (script.src !== import.meta.url || script.hasAttribute('data-deshpay-mounted')) continue;
    script.setAttribute('data-deshpay-mounted', '');
    const element = document.createElement('deshpay-checkout');
    for (const name of ['session', 'endpoint', 'theme', 'locale']) {
      const value = script.getAttribute(`data-${name}`);
      if (value != null) element.setAttribute(name, value);
    }
    const selector = script.getAttribute('data-target');
    const target = selector ? document.querySelector(selector) : null;
    if (selector && !target) console.error(`DeshPay: data-target ${JSON.stringify(selector)} matches nothing; mounting after the script`);
    if (target) target.append(element);
    else script.after(element);
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', mountScriptTags, { once: true });
else mountScriptTags();

export const DeshPay = Object.freeze({ mount });
window.DeshPay ??= DeshPay;
