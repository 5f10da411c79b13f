//! Bestin Pay (UPI).

pub mod client;
