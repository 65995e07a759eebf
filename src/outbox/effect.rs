//! What a kind of side effect is: one type per kind, implementing [`Kind`], listed once in
//! the registry (`effects!` in `outbox/mod.rs`), which makes the [`super::Effect`] enum and its
//! dispatch. A new side effect is one file with its `Kind`, and one line in the registry.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::alcs::{AlcsClient, AlcsError};
use crate::cache::RedisCache;

/// Where effects are delivered to: what a kind's delivery may use.
#[derive(Clone, Default)]
pub struct Targets {
    pub cache: Option<RedisCache>,
    pub alcs: Option<AlcsClient>,
    pub sms: Option<super::sms_gateway::SmsClient>,
}

/// Why one delivery failed; the text goes to `outbox.last_error`, so it names no personal data.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error(transparent)]
    Alcs(#[from] AlcsError),
    #[error(transparent)]
    Sms(#[from] super::sms_gateway::SmsError),
    #[error("no SMS gateway is configured")]
    NoSms,
    #[error("no cache is configured")]
    NoCache,
    #[error("no ALCS activation URL is configured")]
    NoAlcs,
}

impl DeliveryError {
    /// Trying again cannot help.
    pub fn permanent(&self) -> bool {
        match self {
            Self::Alcs(e) => e.permanent,
            Self::Sms(e) => e.permanent,
            Self::NoAlcs | Self::NoSms => true,
            Self::Cache(_) | Self::NoCache => false,
        }
    }

    /// How long the destination asked to be left alone (ALCS's `Retry-After`).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Alcs(e) => e.retry_after,
            _ => None,
        }
    }
}

/// One kind of side effect.
pub trait Kind {
    /// The outbox row's `kind` column. Stored: never change it.
    const NAME: &'static str;
    /// The request that records it delivers it before answering (else the worker does, woken
    /// at once, so that a slow destination does not hold up the request).
    const IN_REQUEST: bool;
    /// Repeated failures make it a dead letter, kept for operators (else it is retried until
    /// it succeeds).
    const CAN_DIE: bool;
    /// Its row is kept as `delivered` once delivered (else deleted).
    const KEPT: bool;
    /// Its payload holds the customer's personal data (a phone number, a PIN HMAC): erasing
    /// the customer deletes its rows, whatever their state.
    const PERSONAL: bool;

    /// The `payload` column, as JSON.
    type Payload: Serialize + DeserializeOwned + Debug + Clone + PartialEq + Eq + Send + Sync;

    /// What it concerns, for logs and `cps outbox` (a cache key, a card; never personal data).
    fn subject(payload: &Self::Payload) -> String;

    /// Delivers it. Delivering twice must be harmless: a crash between delivery and marking
    /// it done delivers it again.
    fn deliver(
        payload: &Self::Payload,
        targets: &Targets,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}

/// Makes the registry: the `Effect` enum (one variant per kind, holding its payload) and its
/// dispatch to each kind's [`Kind`].
macro_rules! effects {
    ($($(#[$doc:meta])* $variant:ident($kind:ty),)+) => {
        /// A side effect of a write, as its outbox row holds it.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Effect {
            $($(#[$doc])* $variant(<$kind as $crate::outbox::effect::Kind>::Payload),)+
        }

        impl Effect {
            /// Every kind's name (the `kind` column).
            pub const KINDS: &'static [&'static str] =
                &[$(<$kind as $crate::outbox::effect::Kind>::NAME,)+];

            /// The `kind` column and the JSON `payload` column.
            ///
            /// Kind and payload are stored apart (not as a tagged enum) because `serde_json`'s
            /// exact numbers do not survive serde's buffering of internally tagged enums.
            pub fn encode(&self) -> (&'static str, String) {
                match self {
                    // Payloads are strings and integers: serializing cannot fail.
                    $(Self::$variant(p) => (
                        <$kind as $crate::outbox::effect::Kind>::NAME,
                        serde_json::to_string(p).unwrap_or_default(),
                    ),)+
                }
            }

            pub fn decode(kind: &str, payload: &str) -> Result<Self, DecodeError> {
                $(if kind == <$kind as $crate::outbox::effect::Kind>::NAME {
                    return serde_json::from_str(payload)
                        .map(Self::$variant)
                        .map_err(|e| DecodeError { kind: kind.to_owned(), source: Some(e) });
                })+
                Err(DecodeError { kind: kind.to_owned(), source: None })
            }

            /// Its kind's name (the `kind` column), e.g. for metrics labels.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => <$kind as $crate::outbox::effect::Kind>::NAME,)+
                }
            }

            /// What it concerns, for logs and `cps outbox` (never personal data).
            pub fn subject(&self) -> String {
                match self {
                    $(Self::$variant(p) => <$kind as $crate::outbox::effect::Kind>::subject(p),)+
                }
            }

            /// Whether the request that records it delivers it before answering.
            pub fn deliver_in_request(&self) -> bool {
                match self {
                    $(Self::$variant(_) => <$kind as $crate::outbox::effect::Kind>::IN_REQUEST,)+
                }
            }

            /// Whether repeated failures make it a dead letter.
            pub fn can_die(&self) -> bool {
                match self {
                    $(Self::$variant(_) => <$kind as $crate::outbox::effect::Kind>::CAN_DIE,)+
                }
            }

            /// Whether its payload holds the customer's personal data (erasure deletes it).
            pub fn holds_personal_data(&self) -> bool {
                match self {
                    $(Self::$variant(_) => <$kind as $crate::outbox::effect::Kind>::PERSONAL,)+
                }
            }

            /// Whether its row is kept (as `delivered`) once delivered.
            pub fn kept_when_delivered(&self) -> bool {
                match self {
                    $(Self::$variant(_) => <$kind as $crate::outbox::effect::Kind>::KEPT,)+
                }
            }

            pub async fn deliver(
                &self,
                targets: &$crate::outbox::effect::Targets,
            ) -> Result<(), $crate::outbox::effect::DeliveryError> {
                match self {
                    $(Self::$variant(p) => {
                        <$kind as $crate::outbox::effect::Kind>::deliver(p, targets).await
                    })+
                }
            }
        }
    };
}

pub(crate) use effects;

#[derive(Debug, thiserror::Error)]
#[error("outbox row of kind {kind:?} cannot be decoded")]
pub struct DecodeError {
    pub(super) kind: String,
    #[source]
    pub(super) source: Option<serde_json::Error>,
}
