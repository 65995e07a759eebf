//! What each write records besides its rows: the audit account and the side effects. The
//! store runs the transaction and asks this policy (its [`WritePolicy`]) what to write with it.

use chrono::{DateTime, Utc};

use crate::cache::HashWrite;
use crate::domain::{
    CardCommand, CardNumber, CardRecord, CardSnapshot, CardStatus, Change, CustomerChange,
    CustomerCommand, CustomerSnapshot, CustomerStatus, LockChange, Replacement, ReplacementPlan,
};
use crate::outbox::sms::SmsMessage;
use crate::outbox::{ActivationNotice, Effect, Hashes};
use crate::store::{
    AttemptLimit, Audit, Consequences, NewEffect, OutboxStatus, Write, WriteKind, WritePolicy,
};

/// The audit operations besides the commands' own names ([`CardCommand::name`]).
pub const REGISTER: &str = "register";
pub const ACTIVATE_FAILED: &str = "activate-failed";
pub const REPLACE: &str = "replace";
pub const REPLACEMENT: &str = "replacement";
pub const RETRY_NOTICE: &str = "retry_notice";
pub const SET_PASSWORD: &str = "set_password";
pub const CLEAR_SIGN_IN: &str = "clear_sign_in_lock";
pub const PROFILE_CHANGE: &str = "profile_change";
pub const CONSENT_CHANGE: &str = "consent_change";
pub const CODE_SENT: &str = "sms_code_sent";

/// How long an effect recorded by a request waits before the background worker may take it:
/// the request itself delivers it right after commit, so the worker only sees the leftovers.
pub const EFFECT_GRACE: chrono::Duration = chrono::Duration::seconds(5);

/// Which side effects this deployment has.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// A cache is configured: every change writes the card's and the customer's hashes.
    pub cache: bool,
    /// An ALCS URL is configured: activation notices are queued (else kept as unsent, for
    /// `cps outbox retry` once one is).
    pub alcs_notices: bool,
}

impl WritePolicy for Policy {
    fn needs_cards(&self, write: &Write<'_>) -> bool {
        self.cache
            && !matches!(
                write.kind,
                WriteKind::ActivationFailed { .. }
                    | WriteKind::NoticeRetried { .. }
                    | WriteKind::PasswordSet { .. }
                    | WriteKind::SignInCleared { .. }
                    | WriteKind::CodeIssued { .. }
            )
    }

    fn consequences(&self, write: &Write<'_>, cards: &[CardRecord]) -> Consequences {
        // Every changed card's hash, its PIN index entry, and their customer's, once each.
        let mut hashes: Vec<HashWrite> = Vec::new();
        for card in cards {
            for hash in card.hashes() {
                if !hashes
                    .iter()
                    .any(|h| h.key == hash.key && h.member == hash.member)
                {
                    hashes.push(hash);
                }
            }
        }
        let mut effects: Vec<Effect> = Vec::new();
        if !hashes.is_empty() {
            effects.push(Effect::CacheWrite(Hashes(hashes)));
        }
        let audit = match &write.kind {
            WriteKind::Registered {
                card,
                registration,
                identity,
            } => vec![Audit {
                card: Some((*card).clone()),
                operation: REGISTER,
                // An Identity is strings: serializing cannot fail.
                identity: identity.and_then(|i| serde_json::to_string(i).ok()),
                details: serde_json::json!({
                    "CardStatus": CardStatus::WaitingForActivation.as_str(),
                    "CustomerStatus": CustomerStatus::NotActivated.as_str(),
                    "Wallets": registration.wallets.len(),
                })
                .to_string(),
            }],
            WriteKind::Changed {
                card,
                command,
                before,
                change,
            } => {
                if activated(command, change) {
                    let customer = write.customer.to_string();
                    let notice = ActivationNotice::new(card, &customer, write.at);
                    effects.push(Effect::AlcsActivation(notice));
                }
                vec![Audit {
                    card: Some((*card).clone()),
                    operation: command.name(),
                    identity: None,
                    details: change_details(before, change),
                }]
            }
            WriteKind::ActivationFailed {
                card,
                failures,
                limit,
            } => vec![Audit {
                card: Some((*card).clone()),
                operation: ACTIVATE_FAILED,
                identity: None,
                details: failure_details(*failures, *limit),
            }],
            WriteKind::Replaced {
                old,
                before,
                replacement,
                plan,
            } => replacement_audit(old, before, replacement, plan),
            WriteKind::CustomerChanged {
                command,
                before,
                change,
            } => customer_audit(command, before, change),
            WriteKind::NoticeRetried { card, queued } => vec![Audit {
                card: Some((*card).clone()),
                operation: RETRY_NOTICE,
                identity: None,
                details: serde_json::json!({ "NoticesQueued": queued }).to_string(),
            }],
            WriteKind::SignInCleared { card } => vec![Audit {
                card: Some((*card).clone()),
                operation: CLEAR_SIGN_IN,
                identity: None,
                details: "{}".to_owned(),
            }],
            // The properties' names, never their values.
            WriteKind::ProfileChanged { card, fields } => vec![Audit {
                card: Some((*card).clone()),
                operation: PROFILE_CHANGE,
                identity: None,
                details: serde_json::json!({
                    "Fields": fields.iter().map(|f| f.name()).collect::<Vec<_>>(),
                })
                .to_string(),
            }],
            // Which consent is the customer's personal data, kept with its proof (which the
            // erasure removes); the trail, kept for years, says only that one changed.
            WriteKind::ConsentChanged { card, .. } => vec![Audit {
                card: Some((*card).clone()),
                operation: CONSENT_CHANGE,
                identity: None,
                details: "{}".to_owned(),
            }],
            // Never the code or the number: what it was for.
            WriteKind::CodeIssued {
                card,
                purpose,
                to,
                text,
            } => {
                effects.push(Effect::Sms(SmsMessage::new(to, (*text).to_owned())));
                vec![Audit {
                    card: Some((*card).clone()),
                    operation: CODE_SENT,
                    identity: None,
                    details: serde_json::json!({ "Purpose": purpose.as_str() }).to_string(),
                }]
            }
            // Never the password or its hash: only that it was set.
            WriteKind::PasswordSet { card } => vec![Audit {
                card: Some((*card).clone()),
                operation: SET_PASSWORD,
                identity: None,
                details: "{}".to_owned(),
            }],
        };
        Consequences {
            audit,
            effects: self.new_effects(effects, write.at),
        }
    }
}

impl Policy {
    /// The outbox rows of `effects`: the state each starts in, and when a worker may take it.
    fn new_effects(&self, effects: Vec<Effect>, at: DateTime<Utc>) -> Vec<NewEffect> {
        effects
            .into_iter()
            .map(|effect| {
                // What the request delivers itself, the worker leaves alone for a while.
                let due = if effect.deliver_in_request() {
                    at + EFFECT_GRACE
                } else {
                    at
                };
                let status = match effect {
                    Effect::AlcsActivation(_) if !self.alcs_notices => OutboxStatus::Unsent,
                    _ => OutboxStatus::Pending,
                };
                let (kind, payload) = effect.encode();
                NewEffect {
                    kind,
                    subject: effect.subject(),
                    payload,
                    personal: effect.holds_personal_data(),
                    status,
                    due,
                    // Every queued row comes back: the request delivers what it must, and
                    // wakes the worker for the rest.
                    report: status == OutboxStatus::Pending,
                }
            })
            .collect()
    }
}

/// Whether the command made the card active: ALCS is told.
fn activated(command: &CardCommand, change: &Change) -> bool {
    matches!(command, CardCommand::Activate { .. })
        && change.card_status == Some(CardStatus::Active)
}

/// The audit trail's account of a change: the statuses before and after, and whether the phone
/// changed — never the number itself.
fn change_details(before: &CardSnapshot, change: &Change) -> String {
    let mut details = serde_json::Map::new();
    if let Some(to) = change.card_status {
        details.insert("CardStatus".into(), status_change(before.card_status, to));
    }
    if let Some(to) = change.customer_status {
        details.insert(
            "CustomerStatus".into(),
            serde_json::json!({ "From": before.customer_status.as_str(), "To": to.as_str() }),
        );
    }
    if change.phone.is_some() {
        details.insert("PhoneNumberChanged".into(), serde_json::Value::Bool(true));
    }
    if let Some(lock) = &change.lock {
        lock_details(&mut details, lock);
    }
    serde_json::Value::Object(details).to_string()
}

/// A lock's reason and whether a note came with it (the note is free text: never audited).
fn lock_details(details: &mut serde_json::Map<String, serde_json::Value>, lock: &LockChange) {
    match lock {
        LockChange::Set {
            reason,
            note,
            replaced_by,
            ..
        } => {
            details.insert("LockReason".into(), reason.as_str().into());
            if replaced_by.is_none() {
                details.insert("NoteGiven".into(), note.is_some().into());
            }
            if let Some(card) = replaced_by {
                details.insert("ReplacedBy".into(), card.as_str().into());
            }
        }
        LockChange::Clear => {
            details.insert("Unlocked".into(), true.into());
        }
    }
}

fn status_change(from: CardStatus, to: CardStatus) -> serde_json::Value {
    serde_json::json!({ "From": from.as_str(), "To": to.as_str() })
}

/// A replacement's entries: the old card's lock, and the new card's arrival.
fn replacement_audit(
    old: &CardNumber,
    before: &CardSnapshot,
    replacement: &Replacement,
    plan: &ReplacementPlan,
) -> Vec<Audit> {
    let mut locked = serde_json::Map::new();
    if let Some(to) = plan.old_status {
        locked.insert("CardStatus".into(), status_change(before.card_status, to));
    }
    lock_details(&mut locked, &plan.old_lock);
    let arrived = serde_json::json!({
        "CardStatus": plan.new_status.as_str(),
        "ReplacementOf": old.as_str(),
        "LockReason": replacement.reason.as_str(),
    });
    vec![
        Audit {
            card: Some(old.clone()),
            operation: REPLACE,
            identity: None,
            details: serde_json::Value::Object(locked).to_string(),
        },
        Audit {
            card: Some(replacement.new_card.clone()),
            operation: REPLACEMENT,
            identity: None,
            details: arrived.to_string(),
        },
    ]
}

/// A customer command's entries: one for the customer, and one per card it changed. Field
/// names only: never the number removed or set.
fn customer_audit(
    command: &CustomerCommand,
    before: &CustomerSnapshot,
    change: &CustomerChange,
) -> Vec<Audit> {
    let mut details = serde_json::Map::new();
    match change.phone {
        Some(Some(_)) => {
            details.insert("PhoneNumberChanged".into(), true.into());
        }
        Some(None) if before.phone.is_some() => {
            details.insert("PhoneNumberRemoved".into(), true.into());
        }
        _ => {}
    }
    if let Some(gender) = change.gender {
        details.insert("Gender".into(), gender.as_str().into());
    }
    if change.erase {
        details.insert("PersonalDataErased".into(), true.into());
        details.insert("Cards".into(), before.cards.len().into());
    }
    let mut audit = vec![Audit {
        card: None,
        operation: command.name(),
        identity: None,
        details: serde_json::Value::Object(details).to_string(),
    }];
    for (card, status, lock) in &change.cards {
        let mut details = serde_json::Map::new();
        let from = before.cards.iter().find(|c| &c.number == card);
        if let (Some(to), Some(from)) = (status, from) {
            details.insert("CardStatus".into(), status_change(from.status, *to));
        }
        lock_details(&mut details, lock);
        audit.push(Audit {
            card: Some(card.clone()),
            operation: command.name(),
            identity: None,
            details: serde_json::Value::Object(details).to_string(),
        });
    }
    audit
}

/// The audit trail's account of a failed activation: how many failures now count.
fn failure_details(failures: i64, limit: AttemptLimit) -> String {
    serde_json::json!({
        "Refused": "IncorrectPhoneNumber",
        "FailedAttempts": failures,
        "MaxFailures": limit.max_failures,
        "Locked": failures >= i64::from(limit.max_failures),
    })
    .to_string()
}
