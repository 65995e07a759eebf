//! A card and its customer as they stand in the system of record: what a write leaves behind,
//! what the cache shows of it, and what a cache rebuild reads.

use super::{
    CardNumber, CardStatus, Consents, CustomerId, CustomerStatus, Gender, Language, PhoneNumber,
    PinHmac, Registration, Wallet,
};

/// A card as stored, with its wallets and version.
#[derive(Debug, Clone)]
pub struct CardState {
    pub number: CardNumber,
    pub status: CardStatus,
    pub customer_id: CustomerId,
    pub pin: PinHmac,
    pub wallets: Vec<Wallet>,
    pub version: i64,
    /// Whether the card stands in the PIN index (the tills check a card and its PIN there):
    /// until it is replaced or its customer erased.
    pub pin_indexed: bool,
}

/// A customer as stored, with the statuses of all its cards.
#[derive(Debug, Clone)]
pub struct CustomerState {
    pub id: CustomerId,
    pub status: CustomerStatus,
    pub phone: Option<PhoneNumber>,
    pub gender: Gender,
    pub cards: Vec<(CardNumber, CardStatus)>,
    pub version: i64,
    /// The profile's preferred language, when the customer chose one.
    pub preferred_language: Option<Language>,
    /// The consents in force and the objection to marketing.
    pub consents: Consents,
}

/// One card and its customer as stored: what the cache shows (a change of the card writes it,
/// a rebuild writes every one).
#[derive(Debug, Clone)]
pub struct CardRecord {
    pub card: CardState,
    pub customer: CustomerState,
}

impl CardRecord {
    /// What a registration stores: a new customer whose only card waits for activation, both
    /// at their first version. The write knows it without reading it back.
    pub fn registered(registration: &Registration, customer: CustomerId) -> Self {
        let number = registration.card_number.clone();
        Self {
            card: CardState {
                number: number.clone(),
                status: CardStatus::WaitingForActivation,
                customer_id: customer,
                pin: registration.pin.clone(),
                wallets: registration.wallets.clone(),
                version: 1,
                pin_indexed: true,
            },
            customer: CustomerState {
                id: customer,
                status: CustomerStatus::NotActivated,
                phone: registration.phone.clone(),
                gender: registration.gender,
                cards: vec![(number, CardStatus::WaitingForActivation)],
                version: 1,
                preferred_language: None,
                consents: Consents::default(),
            },
        }
    }
}
