//! Rows as both adapters read them, and their meaning as domain values. The SQL differs per
//! backend (placeholders, casts, locking); what a row means does not, so it is said once here.

use std::str::FromStr;

use crate::domain::{
    CardNumber, CardSnapshot, CustomerId, Gender, Money, PhoneNumber, PinHmac, Stat, Wallet,
    WalletId,
};
use crate::domain::{CardRecord, CardState, CardStatus, CardView, CustomerState, Lock, LockReason};

use super::StoreError;

pub(super) fn money(s: Option<String>) -> Result<Option<Money>, StoreError> {
    s.map(|s| Money::parse(&s).map_err(|e| StoreError::failed("read an amount", e)))
        .transpose()
}

/// An amount as the text both databases take (`132.00`).
pub(super) fn amount(m: Option<Money>) -> Option<String> {
    m.map(|m| m.to_string())
}

pub(super) fn status<T: FromStr<Err = crate::domain::UnknownStatus>>(
    s: &str,
) -> Result<T, StoreError> {
    s.parse()
        .map_err(|e| StoreError::failed("read a status", e))
}

pub(super) fn customer_id(s: &str) -> Result<CustomerId, StoreError> {
    CustomerId::parse(s).map_err(|e| StoreError::failed("read a customer id", e))
}

pub(super) fn card_number(s: &str) -> Result<CardNumber, StoreError> {
    CardNumber::parse(s).map_err(|e| StoreError::failed("read a card number", e))
}

pub(super) fn gender(s: &str) -> Result<Gender, StoreError> {
    Gender::parse(s).ok_or_else(|| StoreError::failed("read a gender", "unknown gender"))
}

/// A wallet; amounts selected as text so that their scale survives.
#[derive(sqlx::FromRow)]
pub(super) struct WalletRow {
    wallet_id: String,
    balance: String,
    has_stat: bool,
    stat_lost: Option<String>,
    stat_transferred_out: Option<String>,
    stat_transferred_in: Option<String>,
    stat_issued: Option<String>,
    version: Option<String>,
}

impl WalletRow {
    pub(super) fn into_wallet(self) -> Result<Wallet, StoreError> {
        let stat = Stat {
            lost: money(self.stat_lost)?,
            transferred_out: money(self.stat_transferred_out)?,
            transferred_in: money(self.stat_transferred_in)?,
            issued: money(self.stat_issued)?,
        };
        Ok(Wallet {
            id: WalletId::parse(&self.wallet_id)
                .ok_or_else(|| StoreError::failed("read a wallet id", "invalid wallet id"))?,
            balance: money(Some(self.balance))?
                .ok_or_else(|| StoreError::failed("read a balance", "missing balance"))?,
            stat: self.has_stat.then_some(stat),
            version: self.version,
        })
    }
}

pub(super) fn wallets(rows: Vec<WalletRow>) -> Result<Vec<Wallet>, StoreError> {
    rows.into_iter().map(WalletRow::into_wallet).collect()
}

/// A card and its customer, as a command is decided on them.
#[derive(sqlx::FromRow)]
pub(super) struct SnapshotRow {
    pub(super) card_status: String,
    pub(super) customer_id: String,
    pub(super) customer_status: String,
    pub(super) phone_number: Option<String>,
    pub(super) lock_reason: Option<String>,
    pub(super) status_before_lock: Option<String>,
    pub(super) replaced_by: Option<String>,
}

impl SnapshotRow {
    pub(super) fn snapshot(&self) -> Result<CardSnapshot, StoreError> {
        Ok(CardSnapshot {
            card_status: status(&self.card_status)?,
            customer_status: status(&self.customer_status)?,
            phone: self.phone_number.clone().map(PhoneNumber::from_stored),
            lock: lock(
                &self.card_status,
                self.lock_reason.as_deref(),
                self.status_before_lock.as_deref(),
                self.replaced_by.as_deref(),
            )?,
        })
    }
}

/// A card's lock from its columns: none unless the card is locked.
pub(super) fn lock(
    card_status: &str,
    reason: Option<&str>,
    before: Option<&str>,
    replaced_by: Option<&str>,
) -> Result<Option<Lock>, StoreError> {
    if card_status != "Locked" {
        return Ok(None);
    }
    Ok(Some(Lock {
        // Locks older than reasons were ALCS's (the migration says so too).
        reason: reason.map_or(Ok(LockReason::Alcs), status)?,
        before: before.map_or(Ok(CardStatus::WaitingForActivation), status)?,
        replaced_by: replaced_by.map(card_number).transpose()?,
    }))
}

/// A card as [`crate::domain::CardView`] shows it, without its wallets.
#[derive(sqlx::FromRow)]
pub(super) struct CardViewRow {
    card_status: String,
    customer_id: String,
    customer_status: String,
    phone_number: Option<String>,
    gender: String,
    #[sqlx(try_from = "super::sql::Time")]
    created_at: chrono::DateTime<chrono::Utc>,
    #[sqlx(try_from = "super::sql::Time")]
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl CardViewRow {
    pub(super) fn into_view(
        self,
        card: &CardNumber,
        wallets: Vec<Wallet>,
    ) -> Result<CardView, StoreError> {
        Ok(CardView {
            card_number: card.clone(),
            status: status(&self.card_status)?,
            customer_id: customer_id(&self.customer_id)?,
            customer_status: status(&self.customer_status)?,
            phone: self.phone_number.map(PhoneNumber::from_stored),
            gender: gender(&self.gender)?,
            wallets,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A card of a batch (rebuilds, verify), with its customer.
#[derive(sqlx::FromRow)]
pub(super) struct BatchRow {
    pub(super) card_number: String,
    /// The card's `updated_at`: its place in the reading order.
    pub(super) changed_at: super::sql::Time,
    #[sqlx(flatten)]
    pub(super) row: CacheRow,
}

/// A wallet of a batch, with its card.
#[derive(sqlx::FromRow)]
pub(super) struct BatchWalletRow {
    pub(super) card_number: String,
    #[sqlx(flatten)]
    pub(super) wallet: WalletRow,
}

/// The columns of [`WalletRow`], from `wallets`: amounts as text, so that numeric's scale
/// (`132.00`) survives.
pub(super) const WALLET_COLUMNS: &str = "wallet_id, balance::text as balance, has_stat,
    stat_lost::text as stat_lost, stat_transferred_out::text as stat_transferred_out,
    stat_transferred_in::text as stat_transferred_in, stat_issued::text as stat_issued, version";

/// A card and its customer, as the cache shows them (without wallets and the customer's cards,
/// which are read separately).
#[derive(sqlx::FromRow)]
pub(super) struct CacheRow {
    pub(super) card_status: String,
    pub(super) customer_id: String,
    pin_hmac: String,
    card_version: i64,
    customer_status: String,
    phone_number: Option<String>,
    gender: String,
    customer_version: i64,
    /// 1 while the card stands in the PIN index (not replaced, its customer not erased).
    pin_indexed: i32,
    preferred_language: Option<String>,
    consents: String,
    /// 1 while the customer objects to marketing.
    objected: i32,
}

impl CacheRow {
    /// `cards` are the customer's (card number, status) pairs.
    pub(super) fn into_record(
        self,
        card: &CardNumber,
        wallets: Vec<Wallet>,
        cards: Vec<(String, String)>,
    ) -> Result<CardRecord, StoreError> {
        let id = customer_id(&self.customer_id)?;
        let cards = cards
            .into_iter()
            .map(|(number, s)| Ok((card_number(&number)?, status(&s)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(CardRecord {
            card: CardState {
                number: card.clone(),
                status: status(&self.card_status)?,
                customer_id: id,
                pin: PinHmac::parse(&self.pin_hmac)
                    .map_err(|e| StoreError::failed("read a PIN HMAC", e))?,
                wallets,
                version: self.card_version,
                pin_indexed: self.pin_indexed == 1,
            },
            customer: CustomerState {
                id,
                status: status(&self.customer_status)?,
                phone: self.phone_number.map(PhoneNumber::from_stored),
                gender: gender(&self.gender)?,
                cards,
                version: self.customer_version,
                preferred_language: self
                    .preferred_language
                    .as_deref()
                    .and_then(crate::domain::Language::recognize),
                consents: crate::domain::Consents::from_stored(&self.consents, self.objected == 1),
            },
        })
    }
}

/// The columns of [`CacheRow`], from `cards c join customers u`.
pub(super) const CACHE_COLUMNS: &str = "c.status as card_status, c.customer_id, c.pin_hmac,
    c.version as card_version, u.status as customer_status, u.phone_number, u.gender,
    u.version as customer_version,
    case when c.replaced_by is null and u.erased_at is null then 1 else 0 end as pin_indexed,
    u.preferred_language, u.consents,
    case when u.objected_at is null then 0 else 1 end as objected";

/// The columns of [`SnapshotRow`], from `cards c join customers u`.
pub(super) const SNAPSHOT_COLUMNS: &str = "c.status as card_status, c.customer_id,
    u.status as customer_status, u.phone_number, c.lock_reason, c.status_before_lock,
    c.replaced_by";
