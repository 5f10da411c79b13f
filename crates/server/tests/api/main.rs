//! Backend tests over real HTTP: each test spawns its own sandbox and backend (port 0, own SQLite file).

mod helpers;

mod attacks;
mod bkash_payments;
mod customer_words;
mod edges;
mod hosted_page;
mod ipn;
mod money_rules;
mod openapi;
mod refunds;
mod restart;
mod scale_out;
mod sessions;
mod tokens;
mod upi;
mod webhooks;
