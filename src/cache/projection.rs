//! Database state → cache hashes, field for field as contract section 6 lays them out.
//!
//! Every value is a string; amounts are written exactly as stored (`10.0`, `0.22`). Each hash
//! carries the row's version; a write is applied only if it is newer than what Redis holds.

use serde::{Deserialize, Serialize};

use crate::domain::{CardNumber, CustomerId};
pub use crate::domain::{CardRecord, CardState, CustomerState};

/// A whole hash to write: its key without the configured prefix, its version, and every field
/// but `Version` (which the writer sets from `version`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashWrite {
    pub key: String,
    pub version: i64,
    pub fields: Vec<(String, String)>,
}

impl HashWrite {
    /// All fields as Redis should hold them, `Version` included.
    pub fn expected(&self) -> std::collections::BTreeMap<String, String> {
        let mut map: std::collections::BTreeMap<String, String> =
            self.fields.iter().cloned().collect();
        map.insert("Version".into(), self.version.to_string());
        map
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
        HashWrite {
            key: customer_key(&self.id),
            version: self.version,
            fields,
        }
    }
}

impl CardRecord {
    pub fn hashes(&self) -> [HashWrite; 2] {
        [self.card.hash(), self.customer.hash()]
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
            },
            customer: CustomerState {
                id,
                status: CustomerStatus::NotActivated,
                phone: Some(PhoneNumber::parse("+48602123789", Country::poland()).unwrap()),
                gender: Gender::Female,
                cards: vec![(number, CardStatus::WaitingForActivation)],
                version: 5,
            },
        }
    }

    #[test]
    fn the_card_hash_has_the_contract_layout() {
        let [card, _] = state().hashes();
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
        let [_, customer] = state().hashes();
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
    fn a_customer_without_a_phone_has_no_phone_field() {
        let mut s = state();
        s.customer.phone = None;
        assert!(!s.customer.hash().expected().contains_key("PhoneNumber"));
    }
}
