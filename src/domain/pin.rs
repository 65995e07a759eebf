use std::fmt;

/// The HMAC of the card's PIN as ALCS computed it: opaque, stored exactly as given, written to the
/// cache for PIN checks at the till, and otherwise a secret — `Debug` and `Display` never show it,
/// and the API never returns it.
#[derive(Clone, PartialEq, Eq)]
pub struct PinHmac(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinHmacError {
    #[error("must not be empty")]
    Empty,
    #[error("at most 256 characters")]
    TooLong,
    #[error("printable ASCII only")]
    NotPrintable,
}

impl PinHmac {
    pub const MAX_LEN: usize = 256;

    pub fn parse(s: &str) -> Result<Self, PinHmacError> {
        if s.is_empty() {
            return Err(PinHmacError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(PinHmacError::TooLong);
        }
        if !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(PinHmacError::NotPrintable);
        }
        Ok(Self(s.to_owned()))
    }

    /// The secret itself, for the store and the cache only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PinHmac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinHmac(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_hex_and_base64_forms_as_given() {
        for s in [
            "3f729ea140a769400985ade930f695452cf622fd0dd3ca69218319333ca2386c",
            "+ewTfSPRI83xo7FIibxcqE2i3zjO/xImLEsUaCXUhtY=",
            " x ",
        ] {
            assert_eq!(PinHmac::parse(s).unwrap().expose(), s);
        }
        assert!(PinHmac::parse(&"a".repeat(256)).is_ok());
    }

    #[test]
    fn rejects_empty_long_and_unprintable_values() {
        assert_eq!(PinHmac::parse(""), Err(PinHmacError::Empty));
        assert_eq!(PinHmac::parse(&"a".repeat(257)), Err(PinHmacError::TooLong));
        for s in ["ab\ncd", "tab\there", "zażółć", "\u{7f}"] {
            assert_eq!(PinHmac::parse(s), Err(PinHmacError::NotPrintable), "{s:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let p = PinHmac::parse("supersecret").unwrap();
        assert!(!format!("{p:?}").contains("supersecret"));
    }
}
