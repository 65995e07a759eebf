//! What each write records besides its rows: the audit account and the side effects. The
//! store runs the transaction and asks this policy (its [`Recorder`]) what to write with it.

use chrono::{DateTime, Utc};

use crate::domain::{CardCommand, CardRecord, CardSnapshot, CardStatus, Change, CustomerStatus};
use crate::outbox::{ActivationNotice, Effect, Hashes};
use crate::store::{AttemptLimit, NewEffect, OutboxStatus, Record, Recorder, Write, WriteKind};

/// The audit operations besides the commands' own names ([`CardCommand::name`]).
pub const REGISTER: &str = "register";
pub const ACTIVATE_FAILED: &str = "activate-failed";

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

impl Recorder for Policy {
    fn needs_record(&self, write: &Write<'_>) -> bool {
        self.cache && !matches!(write.kind, WriteKind::ActivationFailed { .. })
    }

    fn record(&self, write: &Write<'_>, record: Option<&CardRecord>) -> Record {
        // The card's and the customer's hashes, written together.
        let mut effects: Vec<Effect> = record
            .map(|r| Effect::CacheWrite(Hashes(r.hashes().into())))
            .into_iter()
            .collect();
        match &write.kind {
            WriteKind::Registered {
                registration,
                identity,
            } => Record {
                operation: REGISTER,
                // An Identity is strings: serializing cannot fail.
                identity: identity.and_then(|i| serde_json::to_string(i).ok()),
                details: serde_json::json!({
                    "CardStatus": CardStatus::WaitingForActivation.as_str(),
                    "CustomerStatus": CustomerStatus::NotActivated.as_str(),
                    "Wallets": registration.wallets.len(),
                })
                .to_string(),
                effects: self.new_effects(effects, write.at),
            },
            WriteKind::Changed {
                command,
                before,
                change,
            } => {
                if activated(command, change) {
                    let customer = write.customer.to_string();
                    let notice = ActivationNotice::new(write.card, &customer, write.at);
                    effects.push(Effect::AlcsActivation(notice));
                }
                Record {
                    operation: command.name(),
                    identity: None,
                    details: change_details(before, change),
                    effects: self.new_effects(effects, write.at),
                }
            }
            WriteKind::ActivationFailed { failures, limit } => Record {
                operation: ACTIVATE_FAILED,
                identity: None,
                details: failure_details(*failures, *limit),
                effects: Vec::new(),
            },
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
        details.insert(
            "CardStatus".into(),
            serde_json::json!({ "From": before.card_status.as_str(), "To": to.as_str() }),
        );
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
    serde_json::Value::Object(details).to_string()
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
