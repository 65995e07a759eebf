//! The desk API's answers, in the ALCS API's style (PascalCase, times in RFC 3339 UTC with
//! milliseconds, amounts exact). Never a PIN HMAC; history never carries a phone number.

use serde::Serialize;
use serde_json::Value;

use crate::http::wire::{WalletBody, time};
use crate::store::{DeskCard, DeskCustomer, DeskCustomerHead, HistoryEntry, NoticeState};

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CardBody {
    card_number: String,
    status: &'static str,
    lock: Option<LockBody>,
    /// Bumped by every change of the card.
    version: i64,
    /// Absent where the card is shown within its customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<CustomerHeadBody>,
    wallets: Vec<WalletBody>,
    alcs_notice: Option<NoticeBody>,
    last_change: Option<EntryBody>,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LockBody {
    reason: &'static str,
    note: Option<String>,
    /// The status an unlock returns the card to.
    status_before_lock: &'static str,
    replaced_by: Option<String>,
    /// Whether the desk may unlock it.
    can_unlock: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomerHeadBody {
    customer_id: String,
    status: &'static str,
    phone_number: Option<String>,
    gender: &'static str,
    /// What `If-Match` names when changing the customer.
    version: i64,
    erased_at: Option<String>,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct NoticeBody {
    /// `pending`, `delivered`, `dead` (gave up; can be retried) or `unsent` (no ALCS URL
    /// was configured; can be retried).
    state: String,
    attempts: i32,
    last_error: Option<String>,
    created_at: String,
    delivered_at: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomerBody {
    #[serde(flatten)]
    head: CustomerHeadBody,
    cards: Vec<CardBody>,
    /// The consents in force and every change of them (given through the portal).
    consents: ConsentsBody,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ConsentsBody {
    /// Each purpose with the version of the text it was given on.
    given: Vec<GivenBody>,
    marketing_objection: bool,
    history: Vec<ConsentEventBody>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GivenBody {
    purpose: String,
    text_version: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ConsentEventBody {
    purpose: Option<String>,
    action: String,
    text_version: Option<String>,
    text_sha256: Option<String>,
    language: Option<String>,
    channel: String,
    /// `customer:self`, or the desk user's name.
    actor: String,
    at: String,
    request_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CardsBody {
    pub cards: Vec<CardBody>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EntryBody {
    at: String,
    operation: String,
    card_number: Option<String>,
    customer_id: String,
    by: Value,
    changes: Value,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryBody {
    pub entries: Vec<EntryBody>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetriedBody {
    pub notices_queued: u64,
}

impl From<DeskCustomerHead> for CustomerHeadBody {
    fn from(c: DeskCustomerHead) -> Self {
        Self {
            customer_id: c.id.to_string(),
            status: c.status.as_str(),
            phone_number: c.phone.map(|p| p.as_str().to_owned()),
            gender: c.gender.as_str(),
            version: c.version,
            erased_at: c.erased_at.map(time),
            created_at: time(c.created_at),
            updated_at: time(c.updated_at),
        }
    }
}

impl CardBody {
    /// The card, with its customer unless `within_customer`.
    pub fn new(card: DeskCard, within_customer: bool) -> Self {
        Self {
            card_number: card.number.to_string(),
            status: card.status.as_str(),
            lock: card.lock.map(|lock| LockBody {
                reason: lock.reason.as_str(),
                note: card.lock_note,
                status_before_lock: lock.before.as_str(),
                can_unlock: !lock.is_final(),
                replaced_by: lock.replaced_by.map(|c| c.to_string()),
            }),
            version: card.version,
            customer: (!within_customer).then(|| card.customer.into()),
            wallets: card.wallets.into_iter().map(WalletBody::from).collect(),
            alcs_notice: card.notice.map(NoticeBody::from),
            last_change: card.last_change.map(EntryBody::from),
            created_at: time(card.created_at),
            updated_at: time(card.updated_at),
        }
    }
}

impl From<NoticeState> for NoticeBody {
    fn from(n: NoticeState) -> Self {
        Self {
            state: n.status,
            attempts: n.attempts,
            last_error: n.last_error,
            created_at: time(n.created_at),
            delivered_at: n.delivered_at.map(time),
        }
    }
}

impl CustomerBody {
    pub fn new(
        c: DeskCustomer,
        (consents, events): (crate::domain::Consents, Vec<crate::store::ConsentEvent>),
    ) -> Self {
        Self {
            head: c.customer.into(),
            cards: c
                .cards
                .into_iter()
                .map(|card| CardBody::new(card, true))
                .collect(),
            consents: ConsentsBody {
                given: consents
                    .given
                    .into_iter()
                    .map(|(purpose, text_version)| GivenBody {
                        purpose: purpose.to_string(),
                        text_version,
                    })
                    .collect(),
                marketing_objection: consents.objected,
                history: events
                    .into_iter()
                    .map(|e| ConsentEventBody {
                        purpose: e.purpose,
                        action: e.action,
                        text_version: e.text_version,
                        text_sha256: e.text_sha256,
                        language: e.language,
                        channel: e.channel,
                        actor: e.actor,
                        at: time(e.occurred_at),
                        request_id: e.request_id,
                    })
                    .collect(),
            },
        }
    }
}

impl From<HistoryEntry> for EntryBody {
    fn from(e: HistoryEntry) -> Self {
        let json = |text: Option<String>| {
            text.and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .unwrap_or(Value::Null)
        };
        // Who: a desk user by name, the customer (through the portal), or ALCS with the till's
        // identity when it sent one.
        let by = match e.actor {
            Some(name) if name == crate::domain::CUSTOMER_ACTOR => {
                serde_json::json!({ "Kind": "Customer" })
            }
            Some(name) => serde_json::json!({ "Kind": "Desk", "Name": name }),
            None => serde_json::json!({ "Kind": "Alcs", "Identity": json(e.identity) }),
        };
        Self {
            at: time(e.occurred_at),
            operation: e.operation,
            card_number: e.card_number,
            customer_id: e.customer_id,
            by,
            changes: match json(e.details) {
                Value::Null => Value::Object(serde_json::Map::new()),
                details => details,
            },
        }
    }
}

/// A card number's web sign-in, as the portal's throttle holds it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignInBody {
    card_number: String,
    /// Failed sign-ins in a row (0 after a success or a reset).
    failures: i64,
    last_failed_at: Option<String>,
    /// `Open`, `Waiting` (until `RetryAfterSecs` have passed) or `Locked` (until reset here).
    state: &'static str,
    retry_after_secs: Option<u64>,
}

impl SignInBody {
    pub fn new(card: &crate::domain::CardNumber, state: crate::service::desk::SignInState) -> Self {
        use crate::domain::Throttle;
        let (name, retry) = match state.throttle {
            Throttle::Open => ("Open", None),
            Throttle::Wait(wait) => ("Waiting", Some(wait.as_secs())),
            Throttle::Locked => ("Locked", None),
        };
        Self {
            card_number: card.to_string(),
            failures: state.failures.map_or(0, |f| f.count),
            last_failed_at: state.failures.map(|f| time(f.last)),
            state: name,
            retry_after_secs: retry,
        }
    }
}
