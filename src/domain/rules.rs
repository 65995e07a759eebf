//! What activate, change-phone and lock do to a card, decided from the card's current state.
//! Stores load the state inside their transaction, ask [`CardCommand::decide`], and write the
//! [`Change`] — so every backend applies the same rules, and a handler never decides them.

use super::{CardStatus, CustomerStatus, Lock, LockChange, LockNote, LockReason, PhoneNumber};

/// An operation on an existing card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardCommand {
    /// The SMS to this number was delivered (contract 5.2). `None`: a well-formed number that
    /// no numbering plan allows — it cannot be the one on record.
    Activate { phone: Option<PhoneNumber> },
    /// The cashier typed the customer's correct number (contract 5.3).
    ChangePhone { phone: PhoneNumber },
    /// Lock the card, from any state (contract 5.4; ALCS's reason is [`LockReason::Alcs`]).
    /// A locked card stays as it was locked: the first reason holds.
    Lock {
        reason: LockReason,
        note: Option<LockNote>,
    },
    /// Return a locked card to the status it had before (the desk), unless its lock is final.
    Unlock,
}

/// The state a command is decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSnapshot {
    pub card_status: CardStatus,
    pub customer_status: CustomerStatus,
    pub phone: Option<PhoneNumber>,
    /// Why the card is locked, when it is.
    pub lock: Option<Lock>,
}

/// What to write. `None` means "unchanged"; an all-`None` change is a successful no-op
/// (activating an active card, locking a locked one, setting the same number).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub card_status: Option<CardStatus>,
    pub customer_status: Option<CustomerStatus>,
    pub phone: Option<PhoneNumber>,
    pub lock: Option<LockChange>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.card_status.is_none()
            && self.customer_status.is_none()
            && self.phone.is_none()
            && self.lock.is_none()
    }
}

/// Why a command is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("the card is neither waiting for activation nor active")]
    CardWasNotWaitingForActivation,
    #[error("the phone number differs from the one on record")]
    IncorrectPhoneNumber,
    #[error("the card is not locked")]
    CardNotLocked,
    #[error("the card's lock is final (replaced, or its customer erased)")]
    CardCannotBeUnlocked,
    #[error("the card was replaced, or its customer erased")]
    CardCannotBeReplaced,
    #[error("a card cannot replace itself")]
    SameCard,
    #[error("the customer's personal data was erased")]
    CustomerErased,
    #[error("the customer changed since the version given")]
    VersionMismatch,
}

impl CardCommand {
    /// The operation's name in logs and the audit trail.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Activate { .. } => "activate",
            Self::ChangePhone { .. } => "change_phone",
            Self::Lock {
                reason: LockReason::Alcs,
                ..
            } => "lock",
            Self::Lock { .. } => "desk_lock",
            Self::Unlock => "unlock",
        }
    }

    pub fn decide(&self, state: &CardSnapshot) -> Result<Change, RuleError> {
        match self {
            // The contract's order: locked first, then the phone, then "already active".
            Self::Activate { phone } => {
                if state.card_status == CardStatus::Locked {
                    return Err(RuleError::CardWasNotWaitingForActivation);
                }
                let matches = phone.is_some() && state.phone.as_ref() == phone.as_ref();
                if !matches {
                    return Err(RuleError::IncorrectPhoneNumber);
                }
                if state.card_status == CardStatus::Active {
                    return Ok(Change::default());
                }
                Ok(Change {
                    card_status: Some(CardStatus::Active),
                    customer_status: (state.customer_status != CustomerStatus::Active)
                        .then_some(CustomerStatus::Active),
                    ..Change::default()
                })
            }
            Self::ChangePhone { phone } => Ok(Change {
                phone: (state.phone.as_ref() != Some(phone)).then(|| phone.clone()),
                ..Change::default()
            }),
            Self::Lock { .. } if state.card_status == CardStatus::Locked => Ok(Change::default()),
            Self::Lock { reason, note } => Ok(Change {
                card_status: Some(CardStatus::Locked),
                lock: Some(LockChange::Set {
                    reason: *reason,
                    note: note.clone(),
                    before: state.card_status,
                    replaced_by: None,
                }),
                ..Change::default()
            }),
            Self::Unlock => {
                let (CardStatus::Locked, Some(lock)) = (state.card_status, &state.lock) else {
                    return Err(RuleError::CardNotLocked);
                };
                if lock.is_final() {
                    return Err(RuleError::CardCannotBeUnlocked);
                }
                Ok(Change {
                    card_status: Some(lock.before),
                    lock: Some(LockChange::Clear),
                    ..Change::default()
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Country;

    fn phone(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s, Country::poland()).unwrap()
    }

    fn state(card: CardStatus, phone_on_record: Option<&str>) -> CardSnapshot {
        CardSnapshot {
            card_status: card,
            customer_status: if card == CardStatus::Active {
                CustomerStatus::Active
            } else {
                CustomerStatus::NotActivated
            },
            phone: phone_on_record.map(phone),
            lock: (card == CardStatus::Locked).then_some(Lock {
                reason: LockReason::Alcs,
                before: CardStatus::Active,
                replaced_by: None,
            }),
        }
    }

    const ALCS_LOCK: CardCommand = CardCommand::Lock {
        reason: LockReason::Alcs,
        note: None,
    };

    const P: &str = "+48602123789";
    const Q: &str = "+48602123780";

    #[test]
    fn activation_follows_the_contract_order() {
        let activate = CardCommand::Activate {
            phone: Some(phone(P)),
        };
        assert_eq!(
            activate.decide(&state(CardStatus::Locked, Some(Q))),
            Err(RuleError::CardWasNotWaitingForActivation),
            "locked is reported before a wrong phone"
        );
        assert_eq!(
            activate.decide(&state(CardStatus::Active, Some(Q))),
            Err(RuleError::IncorrectPhoneNumber),
            "a wrong phone is reported before already-active"
        );
        assert_eq!(
            activate.decide(&state(CardStatus::WaitingForActivation, None)),
            Err(RuleError::IncorrectPhoneNumber)
        );
        assert_eq!(
            activate.decide(&state(CardStatus::Active, Some(P))),
            Ok(Change::default())
        );
        assert_eq!(
            activate.decide(&state(CardStatus::WaitingForActivation, Some(P))),
            Ok(Change {
                card_status: Some(CardStatus::Active),
                customer_status: Some(CustomerStatus::Active),
                ..Change::default()
            })
        );
    }

    #[test]
    fn a_number_no_plan_allows_is_an_incorrect_phone_even_where_none_is_on_record() {
        let activate = CardCommand::Activate { phone: None };
        for on_record in [Some(P), None] {
            assert_eq!(
                activate.decide(&state(CardStatus::WaitingForActivation, on_record)),
                Err(RuleError::IncorrectPhoneNumber)
            );
        }
        assert_eq!(
            activate.decide(&state(CardStatus::Locked, Some(P))),
            Err(RuleError::CardWasNotWaitingForActivation),
            "locked is still reported first"
        );
    }

    #[test]
    fn lock_works_from_every_state_and_is_idempotent() {
        for s in [CardStatus::WaitingForActivation, CardStatus::Active] {
            let change = ALCS_LOCK.decide(&state(s, None)).unwrap();
            assert_eq!(change.card_status, Some(CardStatus::Locked));
            assert_eq!(change.customer_status, None);
            assert_eq!(
                change.lock,
                Some(LockChange::Set {
                    reason: LockReason::Alcs,
                    note: None,
                    before: s,
                    replaced_by: None
                })
            );
        }
        assert!(
            ALCS_LOCK
                .decide(&state(CardStatus::Locked, None))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn unlock_returns_to_the_status_before_the_lock_unless_the_lock_is_final() {
        let locked = state(CardStatus::Locked, None);
        let change = CardCommand::Unlock.decide(&locked).unwrap();
        assert_eq!(change.card_status, Some(CardStatus::Active));
        assert_eq!(change.lock, Some(LockChange::Clear));
        assert_eq!(
            CardCommand::Unlock.decide(&state(CardStatus::Active, None)),
            Err(RuleError::CardNotLocked)
        );
        let mut erased = locked.clone();
        erased.lock.as_mut().unwrap().reason = LockReason::Erased;
        assert_eq!(
            CardCommand::Unlock.decide(&erased),
            Err(RuleError::CardCannotBeUnlocked)
        );
        let mut replaced = locked;
        replaced.lock.as_mut().unwrap().replaced_by =
            Some(crate::domain::CardNumber::parse("7").unwrap());
        assert_eq!(
            CardCommand::Unlock.decide(&replaced),
            Err(RuleError::CardCannotBeUnlocked)
        );
    }

    #[test]
    fn changing_the_phone_to_the_same_number_changes_nothing() {
        let cmd = CardCommand::ChangePhone { phone: phone(P) };
        assert!(
            cmd.decide(&state(CardStatus::Active, Some(P)))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            cmd.decide(&state(CardStatus::Locked, Some(Q)))
                .unwrap()
                .phone,
            Some(phone(P))
        );
        assert_eq!(
            cmd.decide(&state(CardStatus::WaitingForActivation, None))
                .unwrap()
                .phone,
            Some(phone(P))
        );
    }
}
