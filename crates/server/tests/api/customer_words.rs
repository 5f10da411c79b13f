//! What the customer is told about bKash's answers, and what the merchant keeps: the widget's public view
//! carries a reason code (worded by the widget in the customer's language), never bKash's code or message; the
//! merchant API keeps both as bKash sent them.

use crate::helpers::*;
use serde_json::{Value, json};

/// The public view's attempt has the reason code and no provider text anywhere.
fn assert_public_view_has_only_the_reason(view: &Value, reason: &str, bkash_message: &str) {
    let attempt = &view["attempt"];
    assert_eq!(attempt["status"], "failed", "{view}");
    assert_eq!(attempt["reason"], reason, "{view}");
    assert_eq!(attempt["message"], Value::Null, "{view}");
    assert!(attempt.get("code").is_none(), "{view}");
    assert!(!view.to_string().contains(bkash_message), "bKash's words stay out of the public view: {view}");
}

#[tokio::test]
async fn the_merchant_keeps_bkashs_words_and_the_widget_gets_only_the_reason_code() {
    let app = spawn_app().await;
    // Codes bKash answers Execute with when the customer's payment is declined, bKash's message for each, and
    // the reason the customer is told (README, "What the customer is told about bKash's answers").
    let cases = [
        ("2014", "Wrong PIN", "pin_failed"),
        ("2016", "Wrong verification code", "verification_failed"),
        ("2057", "Not a bKash Account", "invalid_wallet"),
        ("2038", "Debit party identity tag prohibits execution of this transaction", "account_restricted"),
        ("2029", "Duplicate for all transactions", "duplicate"),
        ("2060", "Payment execution pre-requisite hasn't been met", "failed"),
    ];
    for (i, (code, message, reason)) in cases.into_iter().enumerate() {
        app.fault(json!({"endpoint": "execute", "response": "code", "code": code, "message": message,
                         "process": false}))
            .await;
        let (id, _, back) = app.pay(&format!("{}.00", 101 + i), WALLET).await;
        assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("failed"), "{code}");
        assert_public_view_has_only_the_reason(&app.checkout(&id).await, reason, message);
        let merchant = app.session(&id).await;
        assert_eq!(merchant["attempts"][0]["code"], code, "{merchant}");
        assert_eq!(merchant["attempts"][0]["message"], message, "the merchant keeps bKash's words: {merchant}");
    }
}

#[tokio::test]
async fn insufficient_balance_reaches_the_widget_as_a_code_and_the_merchant_as_bkash_said_it() {
    let app = spawn_app().await;
    // The sandbox's failure wallet: bKash's own answer at Execute, no fault injected.
    let (id, _, back) = app.pay("1499.00", "01823074817").await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("failed"));
    let view = app.checkout(&id).await;
    assert_public_view_has_only_the_reason(&view, "insufficient_balance", "Insufficient Balance");
    assert_eq!(view["amount_minor"], 149_900, "the widget words the amount from the view");
    let merchant = app.session(&id).await;
    assert_eq!(merchant["attempts"][0]["code"], "2023");
    assert_eq!(merchant["attempts"][0]["message"], "Insufficient Balance");
}

#[tokio::test]
async fn an_unknown_decline_code_is_asked_about_and_worded_neutrally() {
    let app = spawn_app().await;
    // A code bKash does not document (a tutorial's "5014 Insufficient Balance"): bKash is asked again (Query),
    // which says the payment never completed; the customer gets the neutral words.
    app.fault(json!({"endpoint": "execute", "response": "code", "code": "5014", "message": "Insufficient Balance",
                     "process": false}))
        .await;
    let (id, _, back) = app.pay("77.00", WALLET).await;
    assert_eq!(query_param(&back, "deshpay_status").as_deref(), Some("failed"));
    let view = app.checkout(&id).await;
    assert_eq!(view["attempt"]["reason"], "failed", "{view}");
    assert_eq!(view["attempt"]["message"], Value::Null, "{view}");
    assert_eq!(app.counters().await["query"], 1, "an unknown code decides nothing: bKash is asked");
}
