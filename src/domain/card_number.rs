use std::fmt;

/// A loyalty card number: 1–32 ASCII digits, kept as text because leading zeros are significant
/// (`0423770896985` and `423770896985` are different cards).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardNumberError {
    #[error("a card number must not be empty")]
    Empty,
    #[error("a card number has at most 32 digits")]
    TooLong,
    #[error("a card number consists of ASCII digits only")]
    NotDigits,
}

impl CardNumber {
    pub const MAX_LEN: usize = 32;

    pub fn parse(s: &str) -> Result<Self, CardNumberError> {
        if s.is_empty() {
            return Err(CardNumberError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(CardNumberError::TooLong);
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardNumberError::NotDigits);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn leading_zeros_survive() {
        assert_eq!(
            CardNumber::parse("0423770896985").unwrap().as_str(),
            "0423770896985"
        );
    }

    #[test]
    fn rejects_what_is_not_1_to_32_digits() {
        assert_eq!(CardNumber::parse(""), Err(CardNumberError::Empty));
        assert_eq!(
            CardNumber::parse(&"1".repeat(33)),
            Err(CardNumberError::TooLong)
        );
        assert!(CardNumber::parse(&"9".repeat(32)).is_ok());
        for bad in [
            "12a4",
            " 123",
            "123 ",
            "-1",
            "+1",
            "1.0",
            "１２３",
            "12\u{0}",
        ] {
            assert!(CardNumber::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    proptest! {
        #[test]
        fn any_digit_string_of_valid_length_round_trips(s in "[0-9]{1,32}") {
            let parsed = CardNumber::parse(&s).unwrap();
            prop_assert_eq!(parsed.as_str(), s.as_str());
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".*") {
            let _ = CardNumber::parse(&s);
        }
    }
}
