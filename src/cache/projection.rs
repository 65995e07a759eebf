//! Database state → cache hashes, field for field as contract section 6 lays them out.
//!
//! Every value is a string; amounts are written exactly as stored (`10.0`, `0.22`). Each hash
//! carries the row's version; a write is applied only if it is newer than what Redis holds.

use serde::{Deserialize, Serialize};

use crate::domain::{CardNumber, CustomerId};
pub use crate::domain::{CardRecord, CardState, CustomerState};

/// A hash to write: its key without the configured prefix, its version, and every field but
/// `Version` (which the writer sets from `version`).
///
/// With `member`, not a whole hash but one member's entry in a hash that members share (the PIN
/// index: one field per card that has this PIN HMAC): `fields` is the member's one field, or
/// none when the member leaves; the member's version is kept beside it as `Version.{member}`,
/// and stays when the member leaves, so a stale write can never bring it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashWrite {
    pub key: String,
    pub version: i64,
    pub fields: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
}

/// The PIN index's keys: `hmac:Password:{CardPinHMac}`.
pub const PIN_INDEX: &str = "hmac:Password:";

impl HashWrite {
    /// The fields this write decides as Redis should hold them, `Version` (or the member's
    /// version field) included. For a member's entry, the fields of other members are not its
    /// business.
    pub fn expected(&self) -> std::collections::BTreeMap<String, String> {
        let mut map: std::collections::BTreeMap<String, String> =
            self.fields.iter().cloned().collect();
        map.insert(self.version_field(), self.version.to_string());
        map
    }

    /// Where its version is kept: `Version`, or a member's `Version.{member}`.
    pub fn version_field(&self) -> String {
        match &self.member {
            None => "Version".to_owned(),
            Some(member) => format!("Version.{member}"),
        }
    }

    /// The key as logs and reports may show it: a PIN index key names a secret (the PIN HMAC),
    /// so it is shown by the member instead.
    pub fn shown_key(&self) -> String {
        match &self.member {
            Some(member) if self.key.starts_with(PIN_INDEX) => {
                format!("{PIN_INDEX}<PIN HMAC of card {member}>")
            }
            _ => self.key.clone(),
        }
    }
}

/// `key` as logs and reports may show it (a PIN index key's HMAC hidden).
pub fn shown_key(key: &str) -> String {
    match key.strip_prefix(PIN_INDEX) {
        Some(_) => format!("{PIN_INDEX}<PIN HMAC>"),
        None => key.to_owned(),
    }
}

pub fn card_key(card: &CardNumber) -> String {
    format!("card:{card}")
}

pub fn customer_key(id: &CustomerId) -> String {
    format!("customer:{id}")
}

impl CardState {
    pub fn hash(&self) -> HashWrite {
        let mut fields = vec![
            ("Status".to_owned(), self.status.as_str().to_owned()),
            ("Guid".to_owned(), self.customer_id.to_string()),
            ("Wallets.Initialized".to_owned(), "1".to_owned()),
        ];
        for w in &self.wallets {
            let id = w.id.as_str();
            fields.push((format!("Wallet.{id}.Balance"), w.balance.to_string()));
            if let Some(version) = &w.version {
                fields.push((format!("Wallet.{id}.Version"), version.clone()));
            }
            if let Some(stat) = &w.stat {
                for (name, amount) in stat.fields() {
                    fields.push((format!("Wallet.{id}.Stat.{name}"), amount.to_string()));
                }
            }
        }
        fields.push(("CardPinHMac".to_owned(), self.pin.expose().to_owned()));
        HashWrite {
            key: card_key(&self.number),
            version: self.version,
            fields,
            member: None,
        }
    }

    /// The card's entry in the PIN index, as the original deployment's tooling kept it:
    /// `hmac:Password:{CardPinHMac}`, field `{card-number}` = `{CustomerId}`; absent once the
    /// card is replaced or its customer erased. Guarded by the card's version.
    pub fn pin_entry(&self) -> HashWrite {
        let card = self.number.to_string();
        let fields = if self.pin_indexed {
            vec![(card.clone(), self.customer_id.to_string())]
        } else {
            Vec::new()
        };
        HashWrite {
            key: format!("{PIN_INDEX}{}", self.pin.expose()),
            version: self.version,
            fields,
            member: Some(card),
        }
    }
}

impl CustomerState {
    pub fn hash(&self) -> HashWrite {
        let mut fields = vec![("Status".to_owned(), self.status.as_str().to_owned())];
        if let Some(phone) = &self.phone {
            fields.push(("PhoneNumber".to_owned(), phone.as_str().to_owned()));
        }
        fields.push(("Gender".to_owned(), self.gender.as_str().to_owned()));
        for (card, status) in &self.cards {
            fields.push((format!("Card.{card}"), status.as_str().to_owned()));
        }
        // What the customer chose in the portal; names, e-mail and address are not projected
        // (the tills do not need them).
        if let Some(language) = self.preferred_language {
            fields.push(("PreferredLanguage".to_owned(), language.code().to_owned()));
        }
        for purpose in self.consents.in_force() {
            fields.push((format!("Consent.{purpose}"), "1".to_owned()));
        }
        if self.consents.objected {
            fields.push(("MarketingObjection".to_owned(), "1".to_owned()));
        }
        HashWrite {
            key: customer_key(&self.id),
            version: self.version,
            fields,
            member: None,
        }
    }
}

impl CardRecord {
    /// The card's hash, its customer's, and the card's entry in the PIN index.
    pub fn hashes(&self) -> [HashWrite; 3] {
        [
            self.card.hash(),
            self.customer.hash(),
            self.card.pin_entry(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        CardStatus, Country, CustomerStatus, Gender, Money, PhoneNumber, PinHmac, Stat, Wallet,
        WalletId,
    };

    fn state() -> CardRecord {
        let number = CardNumber::parse("0423").unwrap();
        let id = CustomerId::parse("df90170f3eb44124a22fa12031d25ecb").unwrap();
        CardRecord {
            card: CardState {
                number: number.clone(),
                status: CardStatus::WaitingForActivation,
                customer_id: id,
                pin: PinHmac::parse("pin").unwrap(),
                wallets: vec![Wallet {
                    id: WalletId::parse("S").unwrap(),
                    balance: Money::parse("10.0").unwrap(),
                    stat: Some(Stat {
                        lost: Some(Money::parse("0.22").unwrap()),
                        issued: Some(Money::parse("199.20").unwrap()),
                        ..Stat::default()
                    }),
                    version: Some("abc".into()),
                }],
                version: 3,
                pin_indexed: true,
            },
            customer: CustomerState {
                id,
                status: CustomerStatus::NotActivated,
                phone: Some(PhoneNumber::parse("+48602123789", Country::poland()).unwrap()),
                gender: Gender::Female,
                cards: vec![(number, CardStatus::WaitingForActivation)],
                version: 5,
                preferred_language: None,
                consents: crate::domain::Consents::default(),
            },
        }
    }

    #[test]
    fn the_card_hash_has_the_contract_layout() {
        let [card, _, _] = state().hashes();
        assert_eq!(card.key, "card:0423");
        let expected: Vec<(&str, &str)> = vec![
            ("CardPinHMac", "pin"),
            ("Guid", "df90170f3eb44124a22fa12031d25ecb"),
            ("Status", "WaitingForActivation"),
            ("Version", "3"),
            ("Wallet.S.Balance", "10.0"),
            ("Wallet.S.Stat.Issued", "199.20"),
            ("Wallet.S.Stat.Lost", "0.22"),
            ("Wallet.S.Version", "abc"),
            ("Wallets.Initialized", "1"),
        ];
        let actual = card.expected();
        let actual: Vec<(&str, &str)> = actual
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn the_customer_hash_has_the_contract_layout() {
        let [_, customer, _] = state().hashes();
        assert_eq!(customer.key, "customer:df90170f3eb44124a22fa12031d25ecb");
        let map = customer.expected();
        assert_eq!(map.len(), 5);
        assert_eq!(map["Status"], "NotActivated");
        assert_eq!(map["Version"], "5");
        assert_eq!(map["PhoneNumber"], "+48602123789");
        assert_eq!(map["Gender"], "F");
        assert_eq!(map["Card.0423"], "WaitingForActivation");
    }

    #[test]
    fn the_pin_index_entry_names_the_card_and_its_customer_until_it_leaves() {
        let mut s = state();
        let [_, _, entry] = s.hashes();
        assert_eq!(entry.key, "hmac:Password:pin");
        assert_eq!(entry.member.as_deref(), Some("0423"));
        let expected: Vec<(String, String)> = entry.expected().into_iter().collect();
        assert_eq!(
            expected,
            [
                (
                    "0423".to_owned(),
                    "df90170f3eb44124a22fa12031d25ecb".to_owned()
                ),
                ("Version.0423".to_owned(), "3".to_owned()),
            ]
        );
        assert!(!entry.shown_key().contains("pin"), "{}", entry.shown_key());
        s.card.pin_indexed = false;
        let gone = s.card.pin_entry();
        assert!(gone.fields.is_empty());
        assert_eq!(gone.expected().len(), 1, "only the version stays");
    }

    #[test]
    fn a_customer_without_a_phone_has_no_phone_field() {
        let mut s = state();
        s.customer.phone = None;
        assert!(!s.customer.hash().expected().contains_key("PhoneNumber"));
    }
}
