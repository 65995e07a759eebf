//! The PIN of a card: its HMAC as ALCS computed it ([`PinHmac`], stored verbatim), and the
//! portal's check of a typed PIN against it ([`PinCheck`], contract section 8): HMAC-SHA256
//! over the card number followed by the PIN, key and message encoded as UTF-16LE (the original
//! .NET tooling's `Encoding.Unicode`) or UTF-8, the stored tag as 64 hex digits or 44 base64
//! characters, every key of the rotation tried, in time that depends on neither.

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::CardNumber;

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

/// How the key's text and the message are turned into bytes before the HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PinEncoding {
    /// UTF-16, little-endian, no byte-order mark: what the original tooling did.
    #[default]
    Utf16Le,
    Utf8,
}

impl PinEncoding {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "utf16le" => Some(Self::Utf16Le),
            "utf8" => Some(Self::Utf8),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Utf16Le => "utf16le",
            Self::Utf8 => "utf8",
        }
    }

    fn bytes(self, text: &str) -> Vec<u8> {
        match self {
            Self::Utf16Le => text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
            Self::Utf8 => text.as_bytes().to_vec(),
        }
    }
}

/// Why a key file was refused (never with the key's text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinKeyError {
    #[error("the file holds no key")]
    NoKey,
    #[error("line {0}: not valid hex after `hex:`")]
    Hex(usize),
    #[error("line {0}: not valid base64 after `base64:`")]
    Base64(usize),
    #[error("line {0}: an empty key")]
    Empty(usize),
}

/// Tags are 32 bytes (SHA-256).
type Tag = [u8; 32];

/// The keys ALCS's PIN HMACs may have been made with (the current one first, older ones during
/// a rotation), and the encoding: what checks a typed PIN. Never shown: `Debug` says how many
/// keys there are, nothing else.
#[derive(Clone)]
pub struct PinCheck {
    keys: Vec<Vec<u8>>,
    encoding: PinEncoding,
}

impl fmt::Debug for PinCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinCheck")
            .field("keys", &self.keys.len())
            .field("encoding", &self.encoding)
            .finish()
    }
}

impl PinCheck {
    /// The keys of a key file, one a line: the key's text (encoded as the message is), or
    /// `hex:…` / `base64:…` for raw bytes. Blank lines are skipped; a line's end (`\n`, `\r\n`)
    /// is not part of the key.
    pub fn parse(file: &str, encoding: PinEncoding) -> Result<Self, PinKeyError> {
        let mut keys = Vec::new();
        for (i, line) in file.lines().enumerate() {
            let n = i + 1;
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let key = if let Some(hex) = line.strip_prefix("hex:") {
                decode_hex(hex.trim()).ok_or(PinKeyError::Hex(n))?
            } else if let Some(b64) = line.strip_prefix("base64:") {
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| PinKeyError::Base64(n))?
            } else {
                encoding.bytes(line)
            };
            if key.is_empty() {
                return Err(PinKeyError::Empty(n));
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(PinKeyError::NoKey);
        }
        Ok(Self { keys, encoding })
    }

    pub fn encoding(&self) -> PinEncoding {
        self.encoding
    }

    /// The tag the key at `key` makes for `card` and `pin` (for tests and tools that make
    /// vectors).
    pub fn tag(&self, key: usize, card: &str, pin: &str) -> Option<Tag> {
        let key = self.keys.get(key)?;
        Some(self.mac(key, card, pin).finalize().into_bytes().into())
    }

    fn mac(&self, key: &[u8], card: &str, pin: &str) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
        mac.update(&self.encoding.bytes(card));
        mac.update(&self.encoding.bytes(pin));
        mac
    }

    /// Whether `pin` is the PIN of `card` whose stored HMAC is `stored`. Every key is tried,
    /// each compared in constant time; a stored value in neither form (it cannot be checked)
    /// is compared all the same, against a tag no key makes, and never matches.
    pub fn matches(&self, card: &CardNumber, pin: &str, stored: &PinHmac) -> bool {
        let (tag, checkable) = match decode_tag(stored.expose()) {
            Some(tag) => (tag, true),
            None => ([0u8; 32], false),
        };
        self.compare(card.as_str(), pin, &tag) && checkable
    }

    /// The same work as [`PinCheck::matches`] for a card number no card has, so that its
    /// refusal takes the time a wrong PIN takes.
    pub fn matches_nothing(&self, card: &str, pin: &str) {
        let _ = self.compare(card, pin, &[0u8; 32]);
    }

    fn compare(&self, card: &str, pin: &str, tag: &Tag) -> bool {
        let mut any = false;
        for key in &self.keys {
            // `verify_slice` compares in constant time; `|` (not `||`) keeps trying every key.
            any |= self.mac(key, card, pin).verify_slice(tag).is_ok();
        }
        any
    }
}

/// A stored tag: 64 hex digits (either case) or 44 characters of standard, padded base64;
/// both are 32 bytes. Anything else cannot be checked.
fn decode_tag(stored: &str) -> Option<Tag> {
    let bytes = match stored.len() {
        64 => decode_hex(stored)?,
        44 => base64::engine::general_purpose::STANDARD
            .decode(stored)
            .ok()?,
        _ => return None,
    };
    bytes.try_into().ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(tag: &[u8]) -> String {
        tag.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn b64(tag: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(tag)
    }

    #[test]
    fn hmac_sha256_itself_matches_rfc_4231_test_case_2() {
        // Key "Jefe", data "what do ya want for nothing?" (RFC 4231 §4.3), as UTF-8 and
        // split where the check splits it: card number, then PIN.
        let check = PinCheck::parse("Jefe", PinEncoding::Utf8).unwrap();
        let tag = check.tag(0, "what do ya want ", "for nothing?").unwrap();
        assert_eq!(
            hex(&tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_vectors_of_a_test_key_in_both_encodings_and_both_tag_forms() {
        let card = CardNumber::parse("7950000000000").unwrap();
        // Made with this test key outside cps, by Python's `hmac` over the encoded strings:
        // hmac.new(key.encode(E), (card + pin).encode(E), sha256), E = utf-16-le and utf-8.
        let vectors = [
            (
                PinEncoding::Utf16Le,
                "81e14cd4ee5c0b451e3209d28cb1c39f222d91a4ddbce82eda74bb0b1790bfb7",
                "geFM1O5cC0UeMgnSjLHDnyItkaTdvOgu2nS7CxeQv7c=",
            ),
            (
                PinEncoding::Utf8,
                "fd8dbe703c95a1c552a58dcf3081cebed3740061971ece4986162d001c2c53a7",
                "/Y2+cDyVocVSpY3PMIHOvtN0AGGXHs5JhhYtABwsU6c=",
            ),
        ];
        let other = CardNumber::parse("7950000000001").unwrap();
        for (encoding, hex_tag, base64_tag) in vectors {
            let check = PinCheck::parse("cps-test-key", encoding).unwrap();
            assert_eq!(hex(&check.tag(0, card.as_str(), "1234").unwrap()), hex_tag);
            for stored in [
                hex_tag.to_owned(),
                hex_tag.to_uppercase(),
                base64_tag.to_owned(),
            ] {
                let stored = PinHmac::parse(&stored).unwrap();
                assert!(check.matches(&card, "1234", &stored), "{encoding:?}");
                assert!(!check.matches(&card, "1235", &stored), "{encoding:?}");
                assert!(!check.matches(&other, "1234", &stored), "{encoding:?}");
            }
        }
    }

    #[test]
    fn a_tag_that_is_neither_hex_nor_base64_never_matches() {
        let check = PinCheck::parse("k", PinEncoding::Utf8).unwrap();
        let card = CardNumber::parse("1").unwrap();
        for stored in ["abc", &"g".repeat(64), &"=".repeat(44)] {
            assert!(!check.matches(&card, "1234", &PinHmac::parse(stored).unwrap()));
        }
    }

    #[test]
    fn every_key_of_a_rotation_is_tried_and_raw_keys_are_bytes() {
        let card = CardNumber::parse("42").unwrap();
        let old = PinCheck::parse("old-key", PinEncoding::Utf16Le).unwrap();
        let tag = old.tag(0, "42", "9999").unwrap();
        let stored = PinHmac::parse(&hex(&tag)).unwrap();
        let rotated = PinCheck::parse("new-key\r\n\nold-key\n", PinEncoding::Utf16Le).unwrap();
        assert!(rotated.matches(&card, "9999", &stored));
        let new_only = PinCheck::parse("new-key", PinEncoding::Utf16Le).unwrap();
        assert!(!new_only.matches(&card, "9999", &stored));
        // The same bytes given raw: `old-key` in UTF-16LE.
        let raw: String = "old-key"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .map(|b| format!("{b:02x}"))
            .collect();
        let as_hex = PinCheck::parse(&format!("hex:{raw}"), PinEncoding::Utf16Le).unwrap();
        assert!(as_hex.matches(&card, "9999", &stored));
        let bytes: Vec<u8> = "old-key"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        // Raw bytes stay bytes whatever the encoding of the message.
        let as_b64 =
            PinCheck::parse(&format!("base64:{}", b64(&bytes)), PinEncoding::Utf16Le).unwrap();
        assert!(as_b64.matches(&card, "9999", &stored));
    }

    #[test]
    fn key_files_are_refused_without_naming_the_key() {
        assert_eq!(
            PinCheck::parse("\n \n", PinEncoding::Utf8).unwrap_err(),
            PinKeyError::NoKey
        );
        assert_eq!(
            PinCheck::parse("a\nhex:xyz", PinEncoding::Utf8).unwrap_err(),
            PinKeyError::Hex(2)
        );
        assert_eq!(
            PinCheck::parse("base64:!!", PinEncoding::Utf8).unwrap_err(),
            PinKeyError::Base64(1)
        );
        let check = PinCheck::parse("very-secret", PinEncoding::Utf8).unwrap();
        assert!(!format!("{check:?}").contains("very-secret"));
    }

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
