//! What the operations on a card come to, as the application answers them.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{
    CardNumber, CardStatus, CustomerId, CustomerStatus, Gender, PhoneNumber, RuleError, Wallet,
};

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A new customer and card were stored.
    Created(CustomerId),
    /// The same registration was already stored and the card still waits for activation:
    /// a retry, answered with the customer it created.
    Replayed(CustomerId),
    /// The card number belongs to a different registration, or the card moved on.
    AlreadyRegistered,
}

/// What applying a command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Changed,
    /// The command succeeded without changing anything (e.g. locking a locked card).
    Unchanged,
}

/// Why a command on a card was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no such card")]
    CardNotFound,
    #[error("no such customer")]
    CustomerNotFound,
    /// A replacement's new card number is registered already.
    #[error("the new card number is already registered")]
    CardAlreadyRegistered,
    /// The card has no dead or unsent ALCS notice to send again.
    #[error("no ALCS notice to retry")]
    NoNoticeToRetry,
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// Too many failed activations of this card lately; the next may come after `retry_after`.
    #[error("too many failed activation attempts")]
    TooManyAttempts { retry_after: Duration },
}

/// A card as support staff and ALCS read it. Never carries the PIN HMAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardView {
    pub card_number: CardNumber,
    pub status: CardStatus,
    pub customer_id: CustomerId,
    pub customer_status: CustomerStatus,
    pub phone: Option<PhoneNumber>,
    pub gender: Gender,
    pub wallets: Vec<Wallet>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
