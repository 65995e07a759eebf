//! The customer API's bodies: the profile as the customer reads it and the partial update they
//! send, the consents and their history, the customer's trail. PascalCase and RFC 3339 times,
//! as the rest of the API; never a PIN HMAC.

use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::{ConsentTexts, Consents, ProfileChange, ProfileField};
use crate::http::error::{ApiError, Violation};
use crate::http::wire::{WalletBody, time};
use crate::service::portal::AccountView;
use crate::store::{ConsentEvent, HistoryEntry};

/// Properties the customer reads but may not change here.
const READ_ONLY: [&str; 6] = [
    "CustomerId",
    "PhoneNumber",
    "Gender",
    "Status",
    "LoyaltyCard",
    "MissingMandatoryData",
];

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CardBody {
    card_number: String,
    status: &'static str,
    wallets: Vec<WalletBody>,
}

/// `GET /loyalty/v1/customers/current`: every property, `null` where not given.
pub fn profile(view: AccountView) -> Value {
    let mut body = Map::new();
    body.insert(
        "CustomerId".into(),
        Value::String(view.card.customer_id.to_string()),
    );
    for field in ProfileField::ALL {
        let value = view
            .account
            .profile
            .get(field)
            .map_or(Value::Null, |v| Value::String(v.to_owned()));
        body.insert(field.name().into(), value);
    }
    body.insert(
        "PhoneNumber".into(),
        view.account
            .phone
            .as_ref()
            .map_or(Value::Null, |p| Value::String(p.as_str().to_owned())),
    );
    body.insert(
        "Gender".into(),
        Value::String(view.account.gender.as_str().to_owned()),
    );
    body.insert(
        "Status".into(),
        Value::String(view.account.status.as_str().to_owned()),
    );
    let card = CardBody {
        card_number: view.card.card_number.to_string(),
        status: view.card.status.as_str(),
        wallets: view
            .card
            .wallets
            .into_iter()
            .map(WalletBody::from)
            .collect(),
    };
    body.insert(
        "LoyaltyCard".into(),
        serde_json::to_value(card).unwrap_or(Value::Null),
    );
    body.insert(
        "MissingMandatoryData".into(),
        Value::Array(
            view.missing
                .iter()
                .map(|f| Value::String(f.name().to_owned()))
                .collect(),
        ),
    );
    Value::Object(body)
}

/// A partial update of the profile: each property to a value, or `null` to remove it. A name
/// the profile does not have is 400 `NotSupportedProperties`; values the rules refuse (and
/// read-only properties) are 422, each named.
pub fn profile_change(body: &Value, mandatory: &[ProfileField]) -> Result<ProfileChange, ApiError> {
    let Value::Object(map) = body else {
        return Err(ApiError::InvalidProperties(Vec::new()));
    };
    if map
        .keys()
        .any(|k| ProfileField::parse_name(k).is_none() && !READ_ONLY.contains(&k.as_str()))
    {
        return Err(ApiError::NotSupportedProperties);
    }
    let today = Utc::now().date_naive();
    let mut violations = Vec::new();
    let mut change = ProfileChange::default();
    for (key, value) in map {
        let Some(field) = ProfileField::parse_name(key) else {
            violations.push(Violation {
                property: key.clone(),
                error: "ReadOnly",
            });
            continue;
        };
        match value {
            Value::Null if mandatory.contains(&field) => violations.push(Violation {
                property: key.clone(),
                error: "Missing",
            }),
            Value::Null => change.0.push((field, None)),
            Value::String(raw) => match field.parse_value(raw, today) {
                Some(stored) => change.0.push((field, Some(stored))),
                None => violations.push(Violation {
                    property: key.clone(),
                    error: "Invalid",
                }),
            },
            _ => violations.push(Violation {
                property: key.clone(),
                error: "Invalid",
            }),
        }
    }
    if violations.is_empty() {
        // In the profile's order, whatever the body's.
        change.0.sort_by_key(|(field, _)| *field);
        Ok(change)
    } else {
        Err(ApiError::InvalidProperties(violations))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TextBody {
    purpose: String,
    version: String,
    language: &'static str,
    text: String,
    sha256: String,
}

/// `GET /loyalty/v1/consent-texts`: every published text.
pub fn texts(texts: &ConsentTexts) -> Vec<TextBody> {
    texts
        .all()
        .iter()
        .map(|t| TextBody {
            purpose: t.purpose.to_string(),
            version: t.version.clone(),
            language: t.language.code(),
            text: t.text.clone(),
            sha256: t.sha256.clone(),
        })
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventBody {
    purpose: Option<String>,
    action: String,
    text_version: Option<String>,
    text_sha256: Option<String>,
    language: Option<String>,
    channel: String,
    /// `Customer` or `Desk`.
    by: &'static str,
    at: String,
    request_id: Option<String>,
}

impl From<ConsentEvent> for EventBody {
    fn from(e: ConsentEvent) -> Self {
        Self {
            purpose: e.purpose,
            action: e.action,
            text_version: e.text_version,
            text_sha256: e.text_sha256,
            language: e.language,
            channel: e.channel,
            by: if e.actor == crate::domain::CUSTOMER_ACTOR {
                "Customer"
            } else {
                "Desk"
            },
            at: time(e.occurred_at),
            request_id: e.request_id,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PurposeBody {
    purpose: String,
    given: bool,
    /// The version of the text it was given on, while given.
    text_version: Option<String>,
    /// In force for the tills: given, and no objection.
    in_force: bool,
}

/// `GET …/consents`: each published purpose (and any given one no longer published), the
/// objection, and the whole history.
pub fn consents(texts: &ConsentTexts, state: &Consents, events: Vec<ConsentEvent>) -> Value {
    let mut purposes: Vec<String> = texts.purposes().iter().map(|p| p.to_string()).collect();
    for given in state.given.keys() {
        if !purposes.iter().any(|p| p == given.as_str()) {
            purposes.push(given.to_string());
        }
    }
    let list: Vec<PurposeBody> = purposes
        .into_iter()
        .map(|purpose| {
            let version = state
                .given
                .iter()
                .find(|(p, _)| p.as_str() == purpose)
                .map(|(_, v)| v.clone());
            PurposeBody {
                given: version.is_some(),
                in_force: version.is_some() && !state.objected,
                text_version: version,
                purpose,
            }
        })
        .collect();
    serde_json::json!({
        "Consents": list,
        "MarketingObjection": state.objected,
        "History": events.into_iter().map(EventBody::from).collect::<Vec<_>>(),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryEntryBody {
    id: i64,
    at: String,
    operation: String,
    card_number: Option<String>,
    /// Who: `{"Kind": "Customer"}`, `{"Kind": "Desk"}`, or `{"Kind": "Till", "SiteId": …,
    /// "PosNumber": …}` (ALCS, with the till when it named one).
    by: Value,
    changes: Value,
}

impl From<HistoryEntry> for HistoryEntryBody {
    fn from(e: HistoryEntry) -> Self {
        let json = |text: Option<String>| {
            text.and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .unwrap_or(Value::Null)
        };
        let by = match e.actor.as_deref() {
            Some(crate::domain::CUSTOMER_ACTOR) => serde_json::json!({ "Kind": "Customer" }),
            // Staff are named to the customer by their role, not their name.
            Some(_) => serde_json::json!({ "Kind": "Desk" }),
            None => {
                let identity = json(e.identity);
                serde_json::json!({
                    "Kind": "Till",
                    "SiteId": identity.get("SiteId").cloned().unwrap_or(Value::Null),
                    "PosNumber": identity.get("PosNumber").cloned().unwrap_or(Value::Null),
                })
            }
        };
        Self {
            id: e.id,
            at: time(e.occurred_at),
            operation: e.operation,
            card_number: e.card_number,
            by,
            changes: match json(e.details) {
                Value::Null => Value::Object(Map::new()),
                details => details,
            },
        }
    }
}

/// The version of the export's shape, as `docs/portal-export.schema.json` describes it.
pub const EXPORT_SCHEMA: &str = "https://cps.invalid/schemas/portal-export/1";

/// `GET …/export`: every personal datum held about the customer and the art. 15(1)
/// information, as one document (described by `docs/portal-export.schema.json`).
pub fn export(e: crate::service::portal::Export) -> Value {
    let mut profile = Map::new();
    for field in ProfileField::ALL {
        profile.insert(
            field.name().into(),
            e.account
                .profile
                .get(field)
                .map_or(Value::Null, |v| Value::String(v.to_owned())),
        );
    }
    let head = &e.cards.customer;
    let cards: Vec<Value> = e
        .cards
        .cards
        .iter()
        .map(|card| {
            serde_json::json!({
                "CardNumber": card.number.as_str(),
                "Status": card.status.as_str(),
                "LockReason": card.lock.as_ref().map(|l| l.reason.as_str()),
                "LockNote": card.lock_note,
                "Wallets": card.wallets.iter().cloned().map(WalletBody::from).collect::<Vec<_>>(),
                "CreatedAt": time(card.created_at),
                "UpdatedAt": time(card.updated_at),
            })
        })
        .collect();
    let in_force: Vec<Value> = e
        .account
        .consents
        .given
        .iter()
        .map(|(purpose, version)| {
            serde_json::json!({
                "Purpose": purpose.as_str(),
                "TextVersion": version,
                "InForce": !e.account.consents.objected,
            })
        })
        .collect();
    let sessions: Vec<Value> = e
        .sessions
        .iter()
        .map(|s| {
            serde_json::json!({
                "Id": s.public_id,
                "CreatedAt": time(s.created_at),
                "LastSeenAt": time(s.last_seen_at),
                "ExpiresAt": time(s.expires_at),
            })
        })
        .collect();
    serde_json::json!({
        "$schema": EXPORT_SCHEMA,
        "ExportedAt": time(Utc::now()),
        "Customer": {
            "CustomerId": head.id.to_string(),
            "Status": e.account.status.as_str(),
            "Gender": e.account.gender.as_str(),
            "PhoneNumber": e.account.phone.as_ref().map(|p| p.as_str()),
            "Profile": profile,
            "MissingMandatoryData": e.missing.iter().map(|f| f.name()).collect::<Vec<_>>(),
            "CreatedAt": time(head.created_at),
            "UpdatedAt": time(head.updated_at),
        },
        "Cards": cards,
        "Consents": {
            "Given": in_force,
            "MarketingObjection": e.account.consents.objected,
            "ObjectedAt": e.account.objected_at.map(time),
            "History": e.consents.into_iter().map(EventBody::from).collect::<Vec<_>>(),
        },
        "Sessions": sessions,
        "History": e.history.into_iter().map(HistoryEntryBody::from).collect::<Vec<_>>(),
        "Processing": (*e.notice).clone(),
    })
}

/// An erasure's receipt.
pub fn receipt(r: &crate::service::portal::Receipt) -> Value {
    serde_json::json!({
        "ReceiptId": r.id,
        "ErasedAt": time(r.at),
        "ConsentEventsRemoved": r.removed,
    })
}
