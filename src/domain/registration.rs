use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::{CardNumber, Money, PhoneNumber, PinHmac};

/// `M`, `F` or `U` (unknown), exactly as the wire spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    Male,
    Female,
    Unknown,
}

impl Gender {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "M" => Some(Self::Male),
            "F" => Some(Self::Female),
            "U" => Some(Self::Unknown),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Male => "M",
            Self::Female => "F",
            Self::Unknown => "U",
        }
    }
}

/// A wallet's name within its card (`Strickers2016`): 1 to 64 of `A-Z a-z 0-9 _ -`. It becomes
/// part of cache field names (`Wallet.{Id}.Balance`), so it can hold no `.` (a reader splitting
/// on dots would misread it), no spaces and no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalletId(String);

impl WalletId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The most wallets one card may have: each is a row and a handful of cache fields, so an
/// unbounded list would let one request cost thousands of writes.
pub const MAX_WALLETS: usize = 32;

/// A wallet's statistics. Each figure is optional, and an absent one stays absent (it is not 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stat {
    pub lost: Option<Money>,
    pub transferred_out: Option<Money>,
    pub transferred_in: Option<Money>,
    pub issued: Option<Money>,
}

impl Stat {
    /// The figures with their wire names, in wire order, skipping absent ones.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, Money)> + '_ {
        [
            ("Lost", self.lost),
            ("TransferredOut", self.transferred_out),
            ("TransferredIn", self.transferred_in),
            ("Issued", self.issued),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.map(|v| (name, v)))
    }
}

/// One wallet of a card as ALCS registered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub id: WalletId,
    pub balance: Money,
    pub stat: Option<Stat>,
    /// ALCS's wallet version token ("wallet versioning", source v1.2), kept as its string form.
    pub version: Option<String>,
}

/// The point of sale that made a request, kept in the audit trail. Loosely typed fields arrive
/// as numbers or strings and are kept as their string form.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Identity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pos_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pos_number: Option<String>,
    /// `None` also when the till sent an empty value: no cashier logged in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pos_operator_id: Option<String>,
    /// `None` also when the till sent 0: no cashier logged in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pos_operator_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_id: Option<String>,
}

/// A card registration after parsing: everything `LoyaltyCard` said, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub card_number: CardNumber,
    pub phone: Option<PhoneNumber>,
    pub gender: Gender,
    pub pin: PinHmac,
    pub wallets: Vec<Wallet>,
}

impl Registration {
    /// A digest of the normalized content, stored with the card so that a replayed registration
    /// (ALCS retries after a timeout) can be told from a different one without keeping a second
    /// copy of the personal data. Wallet order and how an amount is written (`10.0` / `10.00`)
    /// do not matter; every value does.
    pub fn fingerprint(&self) -> String {
        let mut canonical = String::new();
        let mut field = |value: &str| {
            // Length-prefixed, so that no two different contents share a canonical form.
            let _ = write!(canonical, "{}:{value};", value.len());
        };
        field(self.card_number.as_str());
        field(self.phone.as_ref().map_or("-", PhoneNumber::as_str));
        field(self.gender.as_str());
        field(self.pin.expose());
        let mut wallets: Vec<&Wallet> = self.wallets.iter().collect();
        wallets.sort_by(|a, b| a.id.cmp(&b.id));
        for w in wallets {
            field(w.id.as_str());
            field(&w.balance.normalized());
            match &w.stat {
                None => field("no-stat"),
                Some(stat) => {
                    for v in [
                        stat.lost,
                        stat.transferred_out,
                        stat.transferred_in,
                        stat.issued,
                    ] {
                        field(&v.map_or_else(|| "-".to_owned(), |m| m.normalized()));
                    }
                }
            }
            field(w.version.as_deref().map_or("-", |v| v));
        }
        let digest = Sha256::digest(canonical.as_bytes());
        digest.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Country;

    fn money(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn sample() -> Registration {
        Registration {
            card_number: CardNumber::parse("99419283746389").unwrap(),
            phone: Some(PhoneNumber::parse("+48602123789", Country::poland()).unwrap()),
            gender: Gender::Male,
            pin: PinHmac::parse("abc").unwrap(),
            wallets: vec![
                Wallet {
                    id: WalletId::parse("A").unwrap(),
                    balance: money("10.0"),
                    stat: Some(Stat {
                        lost: Some(money("0.22")),
                        ..Stat::default()
                    }),
                    version: Some("abc".into()),
                },
                Wallet {
                    id: WalletId::parse("B").unwrap(),
                    balance: money("0"),
                    stat: None,
                    version: None,
                },
            ],
        }
    }

    #[test]
    fn fingerprint_ignores_wallet_order_and_amount_spelling() {
        let a = sample();
        let mut b = sample();
        b.wallets.reverse();
        b.wallets[1].balance = money("10.000");
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
    }

    #[test]
    fn fingerprint_changes_with_any_value() {
        let base = sample().fingerprint();
        let mut changes: Vec<Registration> = Vec::new();
        let mut r = sample();
        r.phone = None;
        changes.push(r);
        let mut r = sample();
        r.gender = Gender::Female;
        changes.push(r);
        let mut r = sample();
        r.pin = PinHmac::parse("abd").unwrap();
        changes.push(r);
        let mut r = sample();
        r.wallets[0].stat = None;
        changes.push(r);
        let mut r = sample();
        r.wallets[1].stat = Some(Stat::default());
        changes.push(r);
        let mut r = sample();
        r.wallets[0].version = None;
        changes.push(r);
        let mut r = sample();
        r.wallets.pop();
        changes.push(r);
        let mut r = sample();
        r.wallets[0].balance = money("10.01");
        changes.push(r);
        for (i, r) in changes.iter().enumerate() {
            assert_ne!(r.fingerprint(), base, "change {i} not seen");
        }
    }

    #[test]
    fn gender_is_exactly_m_f_or_u() {
        assert_eq!(Gender::parse("M"), Some(Gender::Male));
        assert_eq!(Gender::parse("F"), Some(Gender::Female));
        assert_eq!(Gender::parse("U"), Some(Gender::Unknown));
        for s in ["m", "", "X", "Male"] {
            assert_eq!(Gender::parse(s), None);
        }
    }

    #[test]
    fn wallet_ids_are_bounded_and_printable() {
        assert!(WalletId::parse("Strickers2016").is_some());
        assert!(WalletId::parse("").is_none());
        assert!(WalletId::parse("a\nb").is_none());
        assert!(WalletId::parse(&"x".repeat(129)).is_none());
    }
}
