//! Merchant API authentication: `Authorization: Bearer <api key>`, checked against `merchant.api_key` and,
//! during a rotation, `merchant.api_key_next`.
//!
//! A missing or malformed header is refused before any comparison. The presented key and each configured key
//! are hashed with SHA-256 and the digests compared with `subtle` in constant time, every configured key every
//! time, so neither the key's bytes nor its length nor which key matched shows in the response time.

use crate::configuration::MerchantSettings;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Longest `Authorization` value looked at; a key is far shorter.
const MAX_HEADER_BYTES: usize = 512;

/// Why a request is not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// Not `Bearer <token>` with a token of visible ASCII.
    Malformed,
    /// A well-formed key that is not one of ours.
    Wrong,
}

impl AuthFailure {
    /// The public message (names the header and the fix, never a key).
    pub fn message(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing Authorization header: send `Authorization: Bearer <api key>`",
            AuthFailure::Malformed => "malformed Authorization header: send `Authorization: Bearer <api key>`",
            AuthFailure::Wrong => "wrong API key",
        }
    }
}

/// The token of a well-formed `Bearer` header.
///
/// # Errors
/// [`AuthFailure::Missing`] or [`AuthFailure::Malformed`].
pub fn bearer(header: Option<&[u8]>) -> Result<&str, AuthFailure> {
    let raw = header.ok_or(AuthFailure::Missing)?;
    if raw.len() > MAX_HEADER_BYTES {
        return Err(AuthFailure::Malformed);
    }
    let text = std::str::from_utf8(raw).map_err(|_| AuthFailure::Malformed)?;
    let (scheme, token) = text.split_once(' ').ok_or(AuthFailure::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AuthFailure::Malformed);
    }
    Ok(token)
}

/// Whether `presented` is one of the configured keys. An empty configured key never matches (and is refused at
/// start anyway).
pub fn accepts(merchant: &MerchantSettings, presented: &str) -> bool {
    let digest = Sha256::digest(presented.as_bytes());
    let mut matched = subtle::Choice::from(0);
    for key in std::iter::once(&merchant.api_key).chain(merchant.api_key_next.as_ref()) {
        let key = key.expose_secret();
        let same = Sha256::digest(key.as_bytes()).ct_eq(&digest);
        matched |= same & subtle::Choice::from(u8::from(!key.is_empty()));
    }
    matched.into()
}

/// Checks the `Authorization` header against the merchant's keys.
///
/// # Errors
/// The [`AuthFailure`].
pub fn authenticate(merchant: &MerchantSettings, header: Option<&[u8]>) -> Result<(), AuthFailure> {
    let token = bearer(header)?;
    if accepts(merchant, token) { Ok(()) } else { Err(AuthFailure::Wrong) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merchant(key: &str, next: Option<&str>) -> MerchantSettings {
        MerchantSettings {
            api_key: key.into(),
            api_key_next: next.map(Into::into),
            name: "Shop".into(),
            session_ttl_secs: 1800,
        }
    }

    #[test]
    fn malformed_headers_are_refused_before_any_comparison() {
        let cases: [(Option<&[u8]>, AuthFailure); 7] = [
            (None, AuthFailure::Missing),
            (Some(b""), AuthFailure::Malformed),
            (Some(b"Bearer"), AuthFailure::Malformed),
            (Some(b"Bearer "), AuthFailure::Malformed),
            (Some(b"Basic abc"), AuthFailure::Malformed),
            (Some(b"Bearer a b"), AuthFailure::Malformed),
            (Some(b"Bearer \xff\xfe"), AuthFailure::Malformed),
        ];
        for (header, expected) in cases {
            assert_eq!(bearer(header), Err(expected), "{header:?}");
        }
        assert_eq!(bearer(Some(b"bearer k3y")), Ok("k3y"));
    }

    #[test]
    fn both_keys_are_accepted_during_a_rotation_and_nothing_else() {
        let m = merchant("old-key-0123456789", Some("new-key-0123456789"));
        assert!(accepts(&m, "old-key-0123456789"));
        assert!(accepts(&m, "new-key-0123456789"));
        for wrong in ["", "old-key-012345678", "old-key-01234567890", "new-key", "x"] {
            assert!(!accepts(&m, wrong), "{wrong}");
        }
        assert!(!accepts(&merchant("", None), ""), "an empty key never authenticates");
        assert_eq!(authenticate(&m, Some(b"Bearer nope")), Err(AuthFailure::Wrong));
        assert_eq!(authenticate(&m, Some(b"Bearer new-key-0123456789")), Ok(()));
    }
}
