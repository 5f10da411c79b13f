// Types of the DeshPay Checkout loader (deshpay.js). Hand-written: this is the public JS API.

/** A built-in theme. Every preset meets WCAG 2.2 AA contrast. */
export type DeshPayPreset = 'light' | 'dark' | 'bkash' | 'high-contrast';

/** A language of the widget. Default: the page's `<html lang>`, then the browser's language, else English. */
export type DeshPayLocale = 'en' | 'bn' | 'hi';

/** Colours of a theme object; each becomes `--deshpay-color-<name>` on the host element. */
export interface DeshPayColors {
  primary?: string;
  /** Text on `primary` (also accepted as `on-primary`). */
  onPrimary?: string;
  bg?: string;
  text?: string;
  muted?: string;
  border?: string;
  error?: string;
  success?: string;
  focus?: string;
}

/** A custom theme: values not given come from `base` (default `light`). */
export interface DeshPayTheme {
  base?: DeshPayPreset;
  colors?: DeshPayColors;
  /** Corner radius (`--deshpay-radius`); a number means pixels. */
  radius?: string | number;
  /** Font family (`--deshpay-font`). */
  font?: string;
  /** Base spacing unit (`--deshpay-space`); a number means pixels. */
  spacing?: string | number;
}

/**
 * Keys of the texts a merchant can override with `strings`. In a text, `{merchant}` is replaced by the merchant's
 * name and `{amount}` by the session's amount as the widget shows it (`৳১,৪৯৯.০০` in Bengali).
 */
export type DeshPayStringKey =
  | 'pay_with_bkash' | 'pay_with_upi' | 'loading' | 'choose_method' | 'amount' | 'invoice' | 'redirecting'
  | 'confirming' | 'still_confirming' | 'check_status' | 'review' | 'review_body' | 'success' | 'trx_id' | 'failed' | 'failed_no_reason'
  | 'reason_insufficient_balance' | 'reason_verification_failed' | 'reason_pin_failed' | 'reason_invalid_wallet'
  | 'reason_account_restricted' | 'reason_duplicate' | 'reason_saved_wallet_unavailable' | 'upi_failed_body' | 'already_paid' | 'cancelled'
  | 'cancelled_body' | 'expired' | 'expired_body' | 'try_again' | 'session_expired' | 'session_expired_body'
  | 'session_canceled' | 'session_canceled_body' | 'not_found' | 'unreachable' | 'cancel_failed' | 'provider_unavailable'
  | 'start_failed' | 'no_method' | 'no_method_body' | 'upi_unavailable' | 'waiting_approval' | 'upi_scan_title'
  | 'upi_qr_label' | 'upi_scan_hint' | 'upi_pay_on_device' | 'upi_apps_title' | 'upi_apps_hint' | 'upi_other_app'
  | 'upi_time_left' | 'upi_minutes_left' | 'cancel';

/** Names of the states a preview can show. */
export type DeshPayPreviewState =
  | 'loading' | 'choose' | 'provider-error' | 'no-method' | 'redirecting' | 'confirming' | 'still-confirming'
  | 'review' | 'success' | 'failed' | 'cancelled' | 'expired' | 'session-expired' | 'session-canceled' | 'not-found'
  | 'unreachable' | 'upi-qr' | 'upi-apps';

/** The public session view of `GET {endpoint}/v1/checkout/{id}` (for previews). */
export interface DeshPayCheckoutView {
  id: string;
  status: 'open' | 'paid' | 'expired' | 'canceled';
  amount: string;
  amount_minor: number;
  currency: 'BDT' | 'INR';
  invoice: string;
  description?: string | null;
  methods: Array<'bkash' | 'upi'>;
  expires_at: string;
  merchant_name: string;
  attempt?: {
    id: string;
    method: 'bkash' | 'upi';
    status: 'pending' | 'confirming' | 'succeeded' | 'failed' | 'cancelled' | 'expired' | 'review';
    /**
     * Why it ended, mapped by the backend from the provider's code (bKash's codes: one table,
     * `crates/server/src/reasons.rs`): the widget shows its own words for it in the customer's language and passes
     * it on in `deshpay:failure` `detail.reason`. Unknown codes (from a newer backend): a neutral text.
     */
    reason?: 'insufficient_balance' | 'verification_failed' | 'pin_failed' | 'invalid_wallet' | 'account_restricted'
      | 'duplicate' | 'saved_wallet_unavailable' | 'declined' | 'provider_unavailable' | 'cancelled' | 'expired'
      | 'already_paid' | 'review' | 'failed' | null;
    /**
     * Always null from the backend: the provider's own words stay in the merchant API (`attempts[].message`).
     * A preview may set it; without a `reason` it goes to `detail.reason`. Never shown to the customer.
     */
    message?: string | null;
    trx_id?: string | null;
  } | null;
}

/** `POST {endpoint}/v1/checkout/{id}/upi`: a UPI payment request (for previews). */
export interface DeshPayUpiPayment {
  attempt_id: string;
  /** The apps' deep links, exactly as Bestin Pay returned them; a null link gets no button. */
  links: { paytm?: string | null; phonepe?: string | null; upi: string };
  /** The text of the QR code (the `upi://pay` link). */
  qr: string;
  /**
   * That text drawn as a QR code by the backend: `size` modules a side (quiet zone included) and the SVG path of
   * the dark modules. Absent or null: no QR code, the app buttons show at once.
   */
  qr_svg?: { size: number; path: string } | null;
  /** RFC 3339; an empty string counts down 15 minutes from mounting. */
  expires_at: string;
}

/** Static demo mode: no backend calls (theme galleries, design reviews, component tests). */
export interface DeshPayPreview {
  /** The state to show; without it, the state follows from `view` as in real use. */
  state?: DeshPayPreviewState;
  /** The session to show; a demo session (৳250.00) when absent. */
  view?: DeshPayCheckoutView;
  /** Behave as on the return from bKash (focus moves to the outcome heading). */
  returned?: boolean;
  /** The UPI payment shown by `upi-qr` (desktop: QR code) and `upi-apps` (phone: app buttons); demo links when absent. */
  upi?: DeshPayUpiPayment;
}

/** `detail` of the host events. Never contains secrets. */
export interface DeshPayEventDetail {
  /** The checkout session id. */
  session: string;
  /** The payment method. */
  method?: 'bkash' | 'upi';
  /** The provider's transaction id (bKash trxID, Bestin Pay trx_id), on success. */
  trx_id?: string;
  /**
   * On failure: the attempt's reason code (`'insufficient_balance'`, `'pin_failed'`, ... as in
   * `DeshPayCheckoutView`'s `attempt.reason`; `'failed'` without one), `'expired'`, `'wasm_unavailable'` or
   * `'invalid_options'`. bKash's own message is in the merchant API, not here.
   */
  reason?: string;
}

export interface DeshPayMountOptions {
  /** Checkout session id (`cs_...`), created by the merchant's server. Required unless `preview` is set. */
  session?: string;
  /** Base URL of the merchant backend, e.g. `https://shop.example/pay`. Required unless `preview` is set. */
  endpoint?: string;
  theme?: DeshPayPreset | DeshPayTheme;
  locale?: DeshPayLocale;
  /** Text overrides by key, e.g. `{ try_again: 'Retry' }`. */
  strings?: Partial<Record<DeshPayStringKey, string>>;
  preview?: DeshPayPreview;
  /** The session is loaded and the first interactive state is shown (`deshpay:ready`). */
  onReady?: (detail: DeshPayEventDetail, event: CustomEvent<DeshPayEventDetail>) => void;
  /** Paid (`deshpay:success`). */
  onSuccess?: (detail: DeshPayEventDetail, event: CustomEvent<DeshPayEventDetail>) => void;
  /** Failed or expired, or the widget could not start (`deshpay:failure`). */
  onFailure?: (detail: DeshPayEventDetail, event: CustomEvent<DeshPayEventDetail>) => void;
  /** The customer cancelled on the provider's page or, for UPI, with the widget's "Cancel" (`deshpay:cancel`). */
  onCancel?: (detail: DeshPayEventDetail, event: CustomEvent<DeshPayEventDetail>) => void;
}

export interface DeshPayHandle {
  /** Resolves to true once the widget is mounted, false when the fallback message is shown instead. */
  readonly loaded: Promise<boolean>;
  /** Removes the widget, its listeners and theme properties, and stops its timers. */
  unmount(): void;
}

/** Mounts the widget into an open shadow root of `element` (which gets `data-deshpay-host`). */
export function mount(element: Element, options: DeshPayMountOptions): DeshPayHandle;

export declare const DeshPay: { readonly mount: typeof mount };

declare global {
  interface Window {
    DeshPay: { readonly mount: typeof mount };
  }
  interface HTMLElementEventMap {
    'deshpay:ready': CustomEvent<DeshPayEventDetail>;
    'deshpay:success': CustomEvent<DeshPayEventDetail>;
    'deshpay:failure': CustomEvent<DeshPayEventDetail>;
    'deshpay:cancel': CustomEvent<DeshPayEventDetail>;
  }
  interface HTMLElementTagNameMap {
    'deshpay-checkout': HTMLElement;
  }
}
