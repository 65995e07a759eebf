use std::fmt;
use std::str::FromStr;

use phonenumber::{Mode, country};

/// A phone number in E.164 form (`+48602123789`): how it is stored, compared and returned.
///
/// `Debug` does not print the number: it is personal data and must not reach logs by accident.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

/// The country whose numbering plan applies to numbers written without a country code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country(country::Id);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("a phone number has digits, optionally a leading '+', spaces and dashes")]
    Malformed,
    #[error("not a valid phone number")]
    Invalid,
}

impl Country {
    /// An ISO 3166-1 alpha-2 code such as `PL`.
    pub fn parse(code: &str) -> Option<Self> {
        if code.len() != 2 {
            return None;
        }
        let id = country::Id::from_str(&code.to_ascii_uppercase()).ok()?;
        // Ids the metadata knows but cannot number (none today) would make every national
        // number fail; refuse them at start-up instead.
        phonenumber::metadata::DATABASE.by_id(id.as_ref())?;
        Some(Self(id))
    }

    pub fn poland() -> Self {
        Self(country::Id::PL)
    }

    /// Its ISO 3166-1 alpha-2 code (`PL`).
    pub fn code(&self) -> &str {
        self.0.as_ref()
    }
}

impl PhoneNumber {
    /// Accepts the forms real clients send: `+48123456789`, `48602123789` (the rest of CPS
    /// writes numbers without `+`), a bare national number (`602123789`, read in `default`'s
    /// numbering plan), each optionally with spaces or dashes.
    pub fn parse(input: &str, default: Country) -> Result<Self, PhoneError> {
        // The phonenumber crate has had panics on crafted input: give it only short strings of
        // the characters a phone number is written with.
        if input.len() > 32 {
            return Err(PhoneError::Malformed);
        }
        let (plus, rest) = match input.trim().strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, input.trim()),
        };
        if !rest
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b' ' || b == b'-')
        {
            return Err(PhoneError::Malformed);
        }
        let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
        if !(4..=15).contains(&digits.len()) {
            return Err(PhoneError::Malformed);
        }
        if plus {
            return Self::valid(&format!("+{digits}"), None);
        }
        // Without '+': first as a national number or one carrying the default country's code
        // (`48602123789`), then as an international number written without its '+'.
        Self::valid(&digits, Some(default.0)).or_else(|_| Self::valid(&format!("+{digits}"), None))
    }

    fn valid(text: &str, region: Option<country::Id>) -> Result<Self, PhoneError> {
        let number = phonenumber::parse(region, text).map_err(|_| PhoneError::Invalid)?;
        if !phonenumber::is_valid(&number) {
            return Err(PhoneError::Invalid);
        }
        Ok(Self(number.format().mode(Mode::E164).to_string()))
    }

    /// Wraps a number read back from the store, where only E.164 numbers are ever written.
    pub fn from_stored(e164: String) -> Self {
        Self(e164)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhoneNumber(<redacted>)")
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pl(s: &str) -> Result<String, PhoneError> {
        PhoneNumber::parse(s, Country::poland()).map(|p| p.as_str().to_owned())
    }

    #[test]
    fn accepts_every_variant_clients_send() {
        for s in [
            "+48602123789",
            "48602123789",
            "602123789",
            "+48 602 123 789",
            "+48-602-123-789",
            "48 602-123-789",
            "602 123 789",
            " +48602123789 ",
        ] {
            assert_eq!(pl(s).as_deref(), Ok("+48602123789"), "{s:?}");
        }
        assert_eq!(pl("+48123456789").as_deref(), Ok("+48123456789"));
    }

    #[test]
    fn foreign_numbers_keep_their_country() {
        assert_eq!(pl("+4915112345678").as_deref(), Ok("+4915112345678"));
        assert_eq!(pl("4915112345678").as_deref(), Ok("+4915112345678"));
        let de = Country::parse("de").unwrap();
        assert_eq!(
            PhoneNumber::parse("015112345678", de).unwrap().as_str(),
            "+4915112345678"
        );
    }

    #[test]
    fn rejects_what_is_not_a_phone_number() {
        for s in [
            "",
            "abc",
            "+",
            "12",
            "+48abc",
            "++48602123789",
            "(602)123789",
            "6021237890123456789",
            "+48 602 123 789 123 456 789 123 456",
            "60212378",
            "+0000000000",
        ] {
            assert!(pl(s).is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn debug_output_hides_the_number() {
        let p = PhoneNumber::parse("+48602123789", Country::poland()).unwrap();
        assert!(!format!("{p:?}").contains("602"));
    }

    #[test]
    fn country_codes_are_checked() {
        assert!(Country::parse("PL").is_some());
        assert!(Country::parse("pl").is_some());
        assert!(Country::parse("XX").is_none());
        assert!(Country::parse("POL").is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,40}") {
            let _ = pl(&s);
        }

        #[test]
        fn phone_like_text_never_panics(s in "[+]?[0-9 -]{0,30}") {
            if let Ok(p) = pl(&s) {
                // Whatever is accepted is E.164 and parses to itself.
                prop_assert!(p.starts_with('+'));
                prop_assert_eq!(pl(&p), Ok(p.clone()));
            }
        }
    }
}
