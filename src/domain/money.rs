use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

/// An amount of money or points, kept exactly as the client wrote it: `132.00` stays `132.00`
/// (value and scale), because ALCS compares the cache's strings with its own. There is no binary
/// floating point anywhere between the request and the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money(Decimal);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("not a decimal number")]
    NotANumber,
    #[error("more than 28 significant digits")]
    TooManyDigits,
    #[error("more than 6 digits after the decimal point")]
    TooManyDecimals,
}

impl Money {
    pub const MAX_SIGNIFICANT_DIGITS: u32 = 28;
    pub const MAX_SCALE: u32 = 6;

    /// Parses the text of a JSON number (`10.0`, `-1`, `1.5e2`) or of a stored amount.
    pub fn parse(s: &str) -> Result<Self, MoneyError> {
        // Bound the work on hostile input before any arithmetic: 28 digits plus sign, point and
        // a short exponent fit easily.
        if s.len() > 64 {
            return Err(MoneyError::TooManyDigits);
        }
        if !is_json_number(s) {
            return Err(MoneyError::NotANumber);
        }
        let value = if s.contains(['e', 'E']) {
            Decimal::from_scientific(s)
        } else {
            Decimal::from_str_exact(s)
        }
        // The syntax is already known good, so a failure here is a value out of range.
        .map_err(|_| MoneyError::TooManyDigits)?;
        if value.scale() > Self::MAX_SCALE {
            return Err(MoneyError::TooManyDecimals);
        }
        if value
            .mantissa()
            .unsigned_abs()
            .checked_ilog10()
            .unwrap_or(0)
            + 1
            > Self::MAX_SIGNIFICANT_DIGITS
        {
            return Err(MoneyError::TooManyDigits);
        }
        Ok(Self(value))
    }

    /// The same amount with trailing zeros removed, for comparing values regardless of how
    /// they were written (`10.0` equals `10.00`).
    pub fn normalized(&self) -> String {
        self.0.normalize().to_string()
    }
}

/// The JSON number grammar (RFC 8259 section 6): `-?int(.frac)?([eE][+-]?digits)?`.
fn is_json_number(s: &str) -> bool {
    fn digits(s: &str) -> usize {
        s.bytes().take_while(u8::is_ascii_digit).count()
    }
    let rest = s.strip_prefix('-').unwrap_or(s);
    let int = digits(rest);
    if int == 0 || (int > 1 && rest.starts_with('0')) {
        return false;
    }
    let mut rest = &rest[int..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = digits(frac);
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    if let Some(exp) = rest.strip_prefix(['e', 'E']) {
        let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        let n = digits(exp);
        if n == 0 {
            return false;
        }
        rest = &exp[n..];
    }
    rest.is_empty()
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Money {
    /// Writes the amount with the scale it was given: `132.00`, `10.0`, `0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_value_and_scale_exactly() {
        for s in [
            "132.00", "10.0", "0.22", "0", "0.0", "-5.5", "199.22", "0.000001",
        ] {
            assert_eq!(Money::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(
            Money::parse("1234567890123456789012.123456")
                .unwrap()
                .to_string(),
            "1234567890123456789012.123456"
        );
    }

    #[test]
    fn accepts_json_exponents() {
        assert_eq!(Money::parse("1.5e2").unwrap().to_string(), "150");
        assert_eq!(Money::parse("15E-3").unwrap().to_string(), "0.015");
        assert_eq!(Money::parse("1e+2").unwrap().to_string(), "100");
    }

    #[test]
    fn rejects_too_precise_or_too_large_amounts() {
        assert_eq!(Money::parse("0.0000001"), Err(MoneyError::TooManyDecimals));
        assert_eq!(Money::parse("1e-7"), Err(MoneyError::TooManyDecimals));
        assert_eq!(
            Money::parse("12345678901234567890123456789"),
            Err(MoneyError::TooManyDigits)
        );
        assert_eq!(Money::parse("1e28"), Err(MoneyError::TooManyDigits));
        assert_eq!(
            Money::parse(&format!("1{}", "0".repeat(400))),
            Err(MoneyError::TooManyDigits)
        );
        assert!(Money::parse("1e99999999999").is_err());
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        for s in [
            "", "abc", "1.", ".5", "--1", "1-", "NaN", "1e", "0x10", " 1", "01", "+1",
        ] {
            assert!(Money::parse(s).is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn normalized_form_compares_values() {
        assert_eq!(
            Money::parse("10.0").unwrap().normalized(),
            Money::parse("10.00").unwrap().normalized()
        );
    }

    proptest! {
        #[test]
        fn any_decimal_within_limits_round_trips(
            int in "-?[1-9][0-9]{0,20}",
            frac in "[0-9]{0,6}",
        ) {
            let s = if frac.is_empty() { int } else { format!("{int}.{frac}") };
            prop_assert_eq!(Money::parse(&s).unwrap().to_string(), s);
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,80}") {
            let _ = Money::parse(&s);
        }

        #[test]
        fn number_like_text_never_panics(s in "-?[0-9.]{0,40}([eE][+-]?[0-9]{0,12})?") {
            let _ = Money::parse(&s);
        }
    }
}
