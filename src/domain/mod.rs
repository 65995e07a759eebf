//! The loyalty-card domain: identifiers, values and the rules of card state.
//!
//! Nothing in here knows about HTTP, SQL or Redis. Wire formats are turned into these types in
//! exactly one place (`crate::http::wire`), and the stores persist them as they are.

mod attempts;
mod card_number;
mod consent;
mod customer_id;
mod desk;
mod language;
mod money;
mod outcome;
mod password;
mod phone;
mod pin;
mod profile;
mod record;
mod registration;
mod rules;
mod status;

pub use attempts::{CODE_TRIES, CODE_TTL, CodePurpose, LOCKED_RETRY_AFTER, SignInLimits, Throttle};
pub use card_number::{CardNumber, CardNumberError};
pub use consent::{
    Channel, ConsentAction, ConsentCommand, ConsentText, ConsentTexts, Consents, Purpose,
    valid_version,
};
pub use customer_id::{CustomerId, CustomerIdError};
pub use desk::{
    Actor, CUSTOMER_ACTOR, CustomerCard, CustomerChange, CustomerCommand, CustomerSnapshot,
    DeskUser, ExpectedVersion, Lock, LockChange, LockNote, LockReason, Replacement,
    ReplacementPlan,
};
pub use language::Language;
pub use money::{Money, MoneyError};
pub use outcome::{Applied, CardView, Refusal, Registered};
pub use password::{NewPassword, PasswordError};
pub use phone::{Country, PhoneError, PhoneNumber};
pub use pin::{PinCheck, PinEncoding, PinHmac, PinHmacError, PinKeyError};
pub use profile::{MandatoryFields, Profile, ProfileChange, ProfileField};
pub use record::{CardRecord, CardState, CustomerState};
pub use registration::{Gender, Identity, MAX_WALLETS, Registration, Stat, Wallet, WalletId};
pub use rules::{CardCommand, CardSnapshot, Change, RuleError};
pub use status::{CardStatus, CustomerStatus, UnknownStatus};
