//! What the service desk may do, and the values it speaks in: who acts (an [`Actor`]), why a
//! card is locked ([`LockReason`]), and the decisions of the desk's operations on a customer
//! ([`CustomerCommand`]) and of a card's replacement ([`Replacement`]).

use std::fmt;
use std::str::FromStr;

use super::{CardNumber, CardStatus, CustomerStatus, Gender, PhoneNumber, PinHmac, RuleError};

/// Why a card is locked. ALCS's `/lock` records [`LockReason::Alcs`]; an erasure records
/// [`LockReason::Erased`]; the desk names one of the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockReason {
    Alcs,
    Lost,
    Stolen,
    Damaged,
    Fraud,
    CustomerRequest,
    Other,
    Erased,
}

impl LockReason {
    const ALL: [Self; 8] = [
        Self::Alcs,
        Self::Lost,
        Self::Stolen,
        Self::Damaged,
        Self::Fraud,
        Self::CustomerRequest,
        Self::Other,
        Self::Erased,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alcs => "Alcs",
            Self::Lost => "Lost",
            Self::Stolen => "Stolen",
            Self::Damaged => "Damaged",
            Self::Fraud => "Fraud",
            Self::CustomerRequest => "CustomerRequest",
            Self::Other => "Other",
            Self::Erased => "Erased",
        }
    }

    /// A reason a desk user may give, by its wire name: not those the service records itself.
    pub fn for_desk(s: &str) -> Option<Self> {
        s.parse()
            .ok()
            .filter(|r| !matches!(r, Self::Alcs | Self::Erased))
    }
}

impl FromStr for LockReason {
    type Err = super::UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| super::UnknownStatus(s.to_owned()))
    }
}

impl fmt::Display for LockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A desk user's note on a lock: 1 to [`LockNote::MAX_CHARS`] characters, no control
/// characters. Free text from a person, so it may hold personal data: it stays on the card
/// (an erasure clears it) and never goes to the audit trail, the cache or a log.
#[derive(Clone, PartialEq, Eq)]
pub struct LockNote(String);

impl LockNote {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let ok = !s.is_empty()
            && s.chars().count() <= Self::MAX_CHARS
            && !s.chars().any(char::is_control);
        ok.then(|| Self(s.to_owned()))
    }

    /// The note the service writes on a replaced card.
    pub fn replaced_by(card: &CardNumber) -> Self {
        Self(format!("replaced by {card}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LockNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockNote(..)")
    }
}

/// A locked card's lock: why, and what it was before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub reason: LockReason,
    /// The status an unlock returns to.
    pub before: CardStatus,
    /// The card that replaced this one, if it was replaced.
    pub replaced_by: Option<CardNumber>,
}

impl Lock {
    /// Whether the lock is for good: a replaced card, or an erased customer's.
    pub fn is_final(&self) -> bool {
        self.replaced_by.is_some() || self.reason == LockReason::Erased
    }
}

/// What a change does to a card's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockChange {
    Set {
        reason: LockReason,
        note: Option<LockNote>,
        before: CardStatus,
        replaced_by: Option<CardNumber>,
    },
    Clear,
}

/// A desk user's name, as the token file gives it: 1 to 64 of `A-Z a-z 0-9 . _ @ -`. It is
/// written into the audit trail under every change the user makes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeskUser(String);

impl DeskUser {
    pub fn parse(s: &str) -> Option<Self> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeskUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who makes a change: ALCS (its POS identity, when a request carries one, is recorded apart),
/// a desk user, or the customer through the portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Alcs,
    Desk(DeskUser),
    Customer(super::CustomerId),
}

/// How the audit trail names the customer as the actor: a desk user's name never holds a `:`.
pub const CUSTOMER_ACTOR: &str = "customer:self";

impl Actor {
    /// The audit trail's `actor` column: the desk user's name, [`CUSTOMER_ACTOR`] for the
    /// customer; none for ALCS.
    pub fn audit_name(&self) -> Option<&str> {
        match self {
            Self::Alcs => None,
            Self::Desk(user) => Some(user.as_str()),
            Self::Customer(_) => Some(CUSTOMER_ACTOR),
        }
    }
}

/// A card of a customer, as a customer command is decided on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerCard {
    pub number: CardNumber,
    pub status: CardStatus,
    pub lock: Option<Lock>,
}

/// A customer and its cards, as a customer command is decided on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSnapshot {
    pub status: CustomerStatus,
    pub phone: Option<PhoneNumber>,
    pub gender: Gender,
    pub version: i64,
    pub erased: bool,
    pub cards: Vec<CustomerCard>,
}

/// The versions of a customer a change may apply to, as `If-Match` names them: any (`*`),
/// or one of a list (a list in which no version matched, e.g. of weak or foreign tags, admits
/// none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedVersion {
    Any,
    OneOf(Vec<i64>),
}

impl ExpectedVersion {
    pub fn admits(&self, version: i64) -> bool {
        match self {
            Self::Any => true,
            Self::OneOf(versions) => versions.contains(&version),
        }
    }
}

impl From<i64> for ExpectedVersion {
    fn from(version: i64) -> Self {
        Self::OneOf(vec![version])
    }
}

/// An operation of the desk on a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerCommand {
    /// Set the customer's phone number, if the customer is still at a version
    /// `expected_version` admits (the version the desk user saw: `If-Match`).
    ChangePhone {
        phone: PhoneNumber,
        expected_version: ExpectedVersion,
    },
    /// Erase the customer's personal data (right to erasure): irreversible.
    Erase,
}

/// What a customer command writes. Cards not named keep their state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerChange {
    /// Set the phone number to this (`Some(None)`: remove it).
    pub phone: Option<Option<PhoneNumber>>,
    pub gender: Option<Gender>,
    /// Mark the customer erased, and forget what could identify them.
    pub erase: bool,
    /// Cards whose status or lock changes.
    pub cards: Vec<(CardNumber, Option<CardStatus>, LockChange)>,
}

impl CustomerChange {
    pub fn is_empty(&self) -> bool {
        self.phone.is_none() && self.gender.is_none() && !self.erase && self.cards.is_empty()
    }
}

impl CustomerCommand {
    /// The operation's name in logs and the audit trail.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ChangePhone { .. } => "desk_change_phone",
            Self::Erase => "erase",
        }
    }

    pub fn decide(&self, state: &CustomerSnapshot) -> Result<CustomerChange, RuleError> {
        match self {
            Self::ChangePhone {
                phone,
                expected_version,
            } => {
                // An erased customer is gone: a new number would bring personal data back.
                if state.erased {
                    return Err(RuleError::CustomerErased);
                }
                if !expected_version.admits(state.version) {
                    return Err(RuleError::VersionMismatch);
                }
                Ok(CustomerChange {
                    phone: (state.phone.as_ref() != Some(phone)).then(|| Some(phone.clone())),
                    ..CustomerChange::default()
                })
            }
            // A second erasure finds nothing left to erase.
            Self::Erase if state.erased => Ok(CustomerChange::default()),
            Self::Erase => Ok(CustomerChange {
                phone: Some(None),
                gender: Some(Gender::Unknown),
                erase: true,
                // Every card locked for good, with a note nobody wrote about the customer.
                cards: state
                    .cards
                    .iter()
                    .map(|card| {
                        let (status, before, replaced_by) = match &card.lock {
                            Some(lock) => (None, lock.before, lock.replaced_by.clone()),
                            None => (Some(CardStatus::Locked), card.status, None),
                        };
                        let lock = LockChange::Set {
                            reason: LockReason::Erased,
                            note: None,
                            before,
                            replaced_by,
                        };
                        (card.number.clone(), status, lock)
                    })
                    .collect(),
            }),
        }
    }
}

/// A new card for a lost, stolen or damaged one: the same customer, the old card's wallets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    pub new_card: CardNumber,
    pub pin: PinHmac,
    pub reason: LockReason,
}

/// What a replacement writes: the old card's lock, and the new card's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplacementPlan {
    /// The old card's new status (`None`: it is locked already and stays so).
    pub old_status: Option<CardStatus>,
    pub old_lock: LockChange,
    /// The new card's status: the old card's, or the one it had before it was locked.
    pub new_status: CardStatus,
}

impl Replacement {
    /// Decides a replacement of a card in `status` with `lock`.
    pub fn decide(
        &self,
        old: &CardNumber,
        status: CardStatus,
        lock: Option<&Lock>,
    ) -> Result<ReplacementPlan, RuleError> {
        if *old == self.new_card {
            return Err(RuleError::SameCard);
        }
        if lock.is_some_and(Lock::is_final) {
            return Err(RuleError::CardCannotBeReplaced);
        }
        let before = lock.map_or(status, |l| l.before);
        Ok(ReplacementPlan {
            old_status: (status != CardStatus::Locked).then_some(CardStatus::Locked),
            old_lock: LockChange::Set {
                reason: self.reason,
                note: Some(LockNote::replaced_by(&self.new_card)),
                before,
                replaced_by: Some(self.new_card.clone()),
            },
            new_status: before,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Country;

    fn card(s: &str) -> CardNumber {
        CardNumber::parse(s).unwrap()
    }

    fn phone(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s, Country::poland()).unwrap()
    }

    fn customer(cards: Vec<CustomerCard>) -> CustomerSnapshot {
        CustomerSnapshot {
            status: CustomerStatus::Active,
            phone: Some(phone("+48602123789")),
            gender: Gender::Female,
            version: 3,
            erased: false,
            cards,
        }
    }

    #[test]
    fn a_phone_change_needs_the_version_the_desk_saw() {
        let state = customer(Vec::new());
        let stale = CustomerCommand::ChangePhone {
            phone: phone("+48602123780"),
            expected_version: 2.into(),
        };
        assert_eq!(stale.decide(&state), Err(RuleError::VersionMismatch));
        let fresh = CustomerCommand::ChangePhone {
            phone: phone("+48602123780"),
            expected_version: 3.into(),
        };
        assert_eq!(
            fresh.decide(&state).unwrap().phone,
            Some(Some(phone("+48602123780")))
        );
        let same = CustomerCommand::ChangePhone {
            phone: phone("+48602123789"),
            expected_version: 3.into(),
        };
        assert!(same.decide(&state).unwrap().is_empty());
    }

    #[test]
    fn erasure_locks_every_card_for_good_and_twice_is_nothing() {
        let active = CustomerCard {
            number: card("1"),
            status: CardStatus::Active,
            lock: None,
        };
        let lost = CustomerCard {
            number: card("2"),
            status: CardStatus::Locked,
            lock: Some(Lock {
                reason: LockReason::Lost,
                before: CardStatus::Active,
                replaced_by: None,
            }),
        };
        let mut state = customer(vec![active, lost]);
        let change = CustomerCommand::Erase.decide(&state).unwrap();
        assert_eq!(change.phone, Some(None));
        assert_eq!(change.gender, Some(Gender::Unknown));
        assert!(change.erase);
        assert_eq!(change.cards.len(), 2);
        assert_eq!(change.cards[0].1, Some(CardStatus::Locked));
        assert_eq!(change.cards[1].1, None, "already locked: the status stays");
        for (_, _, lock) in &change.cards {
            assert!(matches!(
                lock,
                LockChange::Set {
                    reason: LockReason::Erased,
                    note: None,
                    ..
                }
            ));
        }
        state.erased = true;
        assert!(CustomerCommand::Erase.decide(&state).unwrap().is_empty());
        let phone_change = CustomerCommand::ChangePhone {
            phone: phone("+48602123780"),
            expected_version: 3.into(),
        };
        assert_eq!(phone_change.decide(&state), Err(RuleError::CustomerErased));
    }

    #[test]
    fn a_replacement_keeps_the_status_the_card_had_before_its_lock() {
        let replacement = Replacement {
            new_card: card("22"),
            pin: PinHmac::parse("abc").unwrap(),
            reason: LockReason::Lost,
        };
        let plan = replacement
            .decide(&card("11"), CardStatus::Active, None)
            .unwrap();
        assert_eq!(plan.new_status, CardStatus::Active);
        assert_eq!(plan.old_status, Some(CardStatus::Locked));
        let locked = Lock {
            reason: LockReason::Stolen,
            before: CardStatus::WaitingForActivation,
            replaced_by: None,
        };
        let plan = replacement
            .decide(&card("11"), CardStatus::Locked, Some(&locked))
            .unwrap();
        assert_eq!(plan.new_status, CardStatus::WaitingForActivation);
        assert_eq!(plan.old_status, None);
        let replaced = Lock {
            replaced_by: Some(card("33")),
            ..locked
        };
        assert_eq!(
            replacement.decide(&card("11"), CardStatus::Locked, Some(&replaced)),
            Err(RuleError::CardCannotBeReplaced)
        );
        assert_eq!(
            replacement.decide(&card("22"), CardStatus::Active, None),
            Err(RuleError::SameCard)
        );
    }

    #[test]
    fn desk_reasons_exclude_the_services_own() {
        assert_eq!(LockReason::for_desk("Lost"), Some(LockReason::Lost));
        assert_eq!(LockReason::for_desk("Alcs"), None);
        assert_eq!(LockReason::for_desk("Erased"), None);
        assert_eq!("Erased".parse::<LockReason>(), Ok(LockReason::Erased));
        assert!(LockNote::parse("  ").is_none());
        assert!(LockNote::parse("a\u{7}b").is_none());
        assert!(LockNote::parse(&"x".repeat(501)).is_none());
        assert!(DeskUser::parse("anna.kowalska@desk").is_some());
        assert!(DeskUser::parse("anna kowalska").is_none());
    }
}
