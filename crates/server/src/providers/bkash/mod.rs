//! bKash (tokenized checkout).

pub mod client;
pub mod codes;
pub mod token;
