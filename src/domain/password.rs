//! A password a customer chooses for the portal: 8 to 128 characters of any kind (spaces,
//! letters of any script, symbols; pasted from a manager), refused when it is on the list of
//! common passwords (ASVS 6.2.1–6.2.4, 6.2.12; NIST SP 800-63B §5.1.1.2). It is a secret:
//! `Debug` never shows it.

use std::fmt;

/// Passwords refused as too common (one a line, compared ignoring case).
const COMMON: &str = include_str!("../../assets/common-passwords.txt");

#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("at least {} characters", NewPassword::MIN_CHARS)]
    TooShort,
    #[error("at most {} characters", NewPassword::MAX_CHARS)]
    TooLong,
    #[error("too common")]
    Common,
}

impl NewPassword {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(s: &str) -> Result<Self, PasswordError> {
        let chars = s.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > Self::MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        if is_common(s) {
            return Err(PasswordError::Common);
        }
        Ok(Self(s.to_owned()))
    }

    /// The secret itself, for the hash only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

fn is_common(s: &str) -> bool {
    let lower = s.to_lowercase();
    COMMON
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .any(|line| line == lower)
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_characters_not_bytes() {
        assert_eq!(NewPassword::parse("short"), Err(PasswordError::TooShort));
        assert_eq!(NewPassword::parse("żółćźęą"), Err(PasswordError::TooShort));
        assert!(NewPassword::parse("żółćźęąń").is_ok());
        assert!(NewPassword::parse(&"ż".repeat(128)).is_ok());
        assert_eq!(
            NewPassword::parse(&"a".repeat(129)),
            Err(PasswordError::TooLong)
        );
        assert!(NewPassword::parse("correct horse battery staple").is_ok());
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        for p in [
            "password1",
            "PASSWORD1",
            "Qwertyuiop",
            "12345678",
            "kochanie",
        ] {
            assert_eq!(NewPassword::parse(p), Err(PasswordError::Common), "{p}");
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let p = NewPassword::parse("my very own secret").unwrap();
        assert!(!format!("{p:?}").contains("secret"));
    }
}
