//! Telling ALCS that a card became active (the contract's activation step 5), once the
//! activation has committed: delivered by the worker, retried, and kept as a dead letter when
//! ALCS will not take it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::effect::{DeliveryError, Kind, Targets};
use crate::store::NoticeRows;

pub struct AlcsActivation;

impl AlcsActivation {
    /// The subject of a card's notices: what the desk finds them by.
    pub fn subject_of(card_number: &str) -> String {
        format!("card:{card_number}")
    }

    /// Where the desk finds a card's notices in the outbox.
    pub const ROWS: NoticeRows = NoticeRows {
        kind: Self::NAME,
        subject: Self::subject_of,
    };
}

impl Kind for AlcsActivation {
    const NAME: &'static str = "alcs_activation";
    // A slow or absent ALCS must not hold up ALCS's own request: the worker delivers it.
    const IN_REQUEST: bool = false;
    // Given up after the configured attempts or age (or a final refusal), for operators.
    const CAN_DIE: bool = true;
    // Kept as `delivered`: the record that ALCS was told.
    const KEPT: bool = true;
    // The card number, the customer id and a time: nothing an erasure removes.
    const PERSONAL: bool = false;

    type Payload = ActivationNotice;

    fn subject(notice: &ActivationNotice) -> String {
        Self::subject_of(notice.card_number.as_str())
    }

    async fn deliver(notice: &ActivationNotice, targets: &Targets) -> Result<(), DeliveryError> {
        let alcs = targets.alcs.as_ref().ok_or(DeliveryError::NoAlcs)?;
        alcs.notify(notice).await?;
        tracing::info!(
            card_number = %notice.card_number,
            event_id = %notice.event_id,
            "ALCS notified of the activation"
        );
        Ok(())
    }
}

/// The body of the "card activated" notice, plus the event id ALCS deduplicates on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ActivationNotice {
    /// Sent as the `Idempotency-Key` header; the same on every retry.
    pub event_id: String,
    pub card_number: String,
    pub customer_id: String,
    /// RFC 3339, UTC, milliseconds: `2026-11-29T10:00:00.123Z`.
    pub activated_at: String,
}

impl ActivationNotice {
    pub fn new(card: &crate::domain::CardNumber, customer: &str, at: DateTime<Utc>) -> Self {
        Self {
            event_id: uuid::Uuid::new_v4().simple().to_string(),
            card_number: card.to_string(),
            customer_id: customer.to_owned(),
            activated_at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }

    /// What is POSTed: `{"CardNumber", "CustomerId", "ActivatedAt"}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "CardNumber": self.card_number,
            "CustomerId": self.customer_id,
            "ActivatedAt": self.activated_at,
        })
    }
}
