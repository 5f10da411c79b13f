//! The payment providers, one folder each.

pub mod bestin;
pub mod bkash;
