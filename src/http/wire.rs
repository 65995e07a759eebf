//! The wire format: request JSON becomes domain values here and nowhere else, and domain values
//! become response JSON here.
//!
//! Bodies are first parsed into a `serde_json::Value` (with `arbitrary_precision`, so numbers
//! keep their exact text) and then walked by hand. That gives every refusal the dotted path of
//! the field (`LoyaltyCard.Wallets[1].Balance`), accepts the loosely typed fields clients really
//! send (numbers or strings), and never echoes a value into an error message.

use serde::Serialize;
use serde_json::{Map, Number, Value};

use super::error::{ApiError, Reason};
use crate::domain::CardView;
use crate::domain::{
    CardNumber, Country, Gender, Identity, Language, LockNote, LockReason, MAX_WALLETS, Money,
    MoneyError, PhoneError, PhoneNumber, PinHmac, PinHmacError, Registration, Replacement, Stat,
    Wallet, WalletId,
};

/// Longest loosely typed identity value (`PosId`, `SiteId`, …) that is kept.
const MAX_IDENTITY_LEN: usize = 64;
/// Longest wallet version token that is kept.
const MAX_VERSION_LEN: usize = 256;

/// A JSON object together with its path from the body's root, for error messages.
struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    fn root(body: &'a Value) -> Result<Self, ApiError> {
        match body {
            Value::Object(map) => Ok(Self {
                path: String::new(),
                map,
            }),
            _ => Err(ApiError::invalid("", Reason::NotAnObject)),
        }
    }

    fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key`; JSON `null` counts as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn invalid(&self, key: &str, reason: Reason) -> ApiError {
        ApiError::invalid(self.field(key), reason)
    }

    fn str(&self, key: &str) -> Result<Option<&'a str>, ApiError> {
        self.get(key)
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| self.invalid(key, Reason::NotAString))
            })
            .transpose()
    }

    fn required_str(&self, key: &str) -> Result<&'a str, ApiError> {
        self.str(key)?
            .ok_or_else(|| self.invalid(key, Reason::Missing))
    }

    fn object(&self, key: &str) -> Result<Option<Obj<'a>>, ApiError> {
        self.get(key)
            .map(|v| match v {
                Value::Object(map) => Ok(Obj {
                    path: self.field(key),
                    map,
                }),
                _ => Err(self.invalid(key, Reason::NotAnObject)),
            })
            .transpose()
    }

    fn money(&self, key: &str) -> Result<Option<Money>, ApiError> {
        self.get(key)
            .map(|v| match v {
                Value::Number(n) => Money::parse(&n.to_string()).map_err(|e| {
                    self.invalid(
                        key,
                        match e {
                            MoneyError::NotANumber => Reason::NotANumber,
                            MoneyError::TooManyDigits => Reason::Digits,
                            MoneyError::TooManyDecimals => Reason::Decimals,
                        },
                    )
                }),
                _ => Err(self.invalid(key, Reason::NotANumber)),
            })
            .transpose()
    }

    /// A value clients send as a JSON number or a string (`"5"` / `5`), kept as text.
    fn loose(&self, key: &str, max_len: usize) -> Result<Option<String>, ApiError> {
        let text = match self.get(key) {
            None => return Ok(None),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(self.invalid(key, Reason::NotAString)),
        };
        if text.len() > max_len {
            return Err(self.invalid(key, Reason::TooLong));
        }
        if text.chars().any(char::is_control) {
            return Err(self.invalid(key, Reason::ControlCharacters));
        }
        Ok(Some(text))
    }
}

/// Where a body's text fields come from: a JSON object (the API) or a submitted form (the
/// console). The parsers of the desk's changes read either, so both refuse alike.
pub trait Fields {
    /// The field's text; `None` when it is absent.
    fn text(&self, key: &str) -> Result<Option<&str>, ApiError>;

    /// The refusal of `key`, named as the client knows the field.
    fn invalid(&self, key: &str, reason: Reason) -> ApiError;

    fn required(&self, key: &str) -> Result<&str, ApiError> {
        self.text(key)?
            .ok_or_else(|| self.invalid(key, Reason::Missing))
    }

    fn pin(&self, key: &str) -> Result<PinHmac, ApiError> {
        PinHmac::parse(self.required(key)?).map_err(|e| {
            self.invalid(
                key,
                match e {
                    PinHmacError::Empty => Reason::Empty,
                    PinHmacError::TooLong => Reason::TooLong,
                    PinHmacError::NotPrintable => Reason::PrintableAscii,
                },
            )
        })
    }

    /// A reason the desk may give; required.
    fn lock_reason(&self, key: &str) -> Result<LockReason, ApiError> {
        LockReason::for_desk(self.required(key)?)
            .ok_or_else(|| self.invalid(key, Reason::LockReason))
    }

    fn phone(&self, key: &str, country: Country) -> Result<Option<PhoneNumber>, ApiError> {
        self.text(key)?
            .map(|s| {
                PhoneNumber::parse(s, country).map_err(|_| self.invalid(key, Reason::PhoneNumber))
            })
            .transpose()
    }
}

impl Fields for Obj<'_> {
    fn text(&self, key: &str) -> Result<Option<&str>, ApiError> {
        self.str(key)
    }

    fn invalid(&self, key: &str, reason: Reason) -> ApiError {
        Obj::invalid(self, key, reason)
    }
}

/// A submitted form's fields, each read under the name its JSON twin has (`inputs` maps that
/// name to the form's input), so that a refusal names the field as the API's would. A blank
/// input is absent: a browser sends every input of the form.
pub struct FormFields<'a> {
    form: &'a [(String, String)],
    inputs: &'a [(&'a str, &'a str)],
}

impl<'a> FormFields<'a> {
    pub fn new(form: &'a [(String, String)], inputs: &'a [(&'a str, &'a str)]) -> Self {
        Self { form, inputs }
    }
}

impl Fields for FormFields<'_> {
    fn text(&self, key: &str) -> Result<Option<&str>, ApiError> {
        let Some((_, input)) = self.inputs.iter().find(|(k, _)| *k == key) else {
            return Ok(None);
        };
        Ok(self
            .form
            .iter()
            .find(|(name, _)| name == input)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.trim().is_empty()))
    }

    fn invalid(&self, key: &str, reason: Reason) -> ApiError {
        ApiError::invalid(key, reason)
    }
}

/// `ResponseLanguage.CashierLanguage` of a register body, when it names a known language.
/// Read before anything else is checked, so that even a refusal speaks the cashier's language.
pub fn cashier_language(body: &Value) -> Option<Language> {
    body.get("ResponseLanguage")?
        .get("CashierLanguage")?
        .as_str()
        .and_then(Language::recognize)
}

/// The register body (contract 5.1) → the registration and the POS identity.
pub fn registration(
    body: &Value,
    path_card: &CardNumber,
    country: Country,
) -> Result<(Registration, Option<Identity>), ApiError> {
    let root = Obj::root(body)?;
    let identity = root.object("Identity")?.map(|o| identity(&o)).transpose()?;
    if let Some(rl) = root.object("ResponseLanguage")? {
        // Only the type is checked: unknown languages fall back to the default.
        rl.str("ClientLanguage")?;
        rl.str("CashierLanguage")?;
    }
    let card = root
        .object("LoyaltyCard")?
        .ok_or_else(|| root.invalid("LoyaltyCard", Reason::Missing))?;
    if let Some(number) = card.str("CardNumber")? {
        let number = CardNumber::parse(number)
            .map_err(|_| card.invalid("CardNumber", Reason::CardNumber))?;
        if &number != path_card {
            return Err(ApiError::CardNumberMismatch);
        }
    }
    let phone = match card.get("PhoneNumber") {
        // An empty string means "no number", like null.
        Some(Value::String(s)) if s.trim().is_empty() => None,
        _ => card.phone("PhoneNumber", country)?,
    };
    let gender = Gender::parse(card.required_str("Gender")?)
        .ok_or_else(|| card.invalid("Gender", Reason::Gender))?;
    let pin = card.pin("CardPinHMac")?;
    let wallets = match card.get("Wallets") {
        None => Vec::new(),
        Some(Value::Array(items)) => wallets(&card.field("Wallets"), items)?,
        Some(_) => return Err(card.invalid("Wallets", Reason::NotAnArray)),
    };
    Ok((
        Registration {
            card_number: path_card.clone(),
            phone,
            gender,
            pin,
            wallets,
        },
        identity,
    ))
}

fn identity(o: &Obj<'_>) -> Result<Identity, ApiError> {
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    Ok(Identity {
        pos_id: nonempty(o.loose("PosId", MAX_IDENTITY_LEN)?),
        pos_number: nonempty(o.loose("PosNumber", MAX_IDENTITY_LEN)?),
        // Empty / absent, and 0 / absent, mean "no cashier logged in".
        pos_operator_id: nonempty(o.loose("PosOperatorId", MAX_IDENTITY_LEN)?),
        pos_operator_number: nonempty(o.loose("PosOperatorNumber", MAX_IDENTITY_LEN)?)
            .filter(|s| !s.chars().all(|c| c == '0' || c == '.')),
        site_id: nonempty(o.loose("SiteId", MAX_IDENTITY_LEN)?),
    })
}

fn wallets(path: &str, items: &[Value]) -> Result<Vec<Wallet>, ApiError> {
    if items.len() > MAX_WALLETS {
        return Err(ApiError::invalid(path, Reason::TooMany));
    }
    let mut out: Vec<Wallet> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let here = format!("{path}[{i}]");
        let Value::Object(map) = item else {
            return Err(ApiError::invalid(here, Reason::NotAnObject));
        };
        let w = Obj { path: here, map };
        let raw_id = w.required_str("Id")?;
        let id = WalletId::parse(raw_id).ok_or_else(|| {
            let reason = if raw_id.is_empty() {
                Reason::Empty
            } else if raw_id.len() > WalletId::MAX_LEN {
                Reason::TooLong
            } else {
                Reason::WalletId
            };
            w.invalid("Id", reason)
        })?;
        if out.iter().any(|seen| seen.id == id) {
            return Err(w.invalid("Id", Reason::Duplicate));
        }
        let balance = w
            .money("Balance")?
            .ok_or_else(|| w.invalid("Balance", Reason::Missing))?;
        let stat = w
            .object("Stat")?
            .map(|s| -> Result<Stat, ApiError> {
                Ok(Stat {
                    lost: s.money("Lost")?,
                    transferred_out: s.money("TransferredOut")?,
                    transferred_in: s.money("TransferredIn")?,
                    issued: s.money("Issued")?,
                })
            })
            .transpose()?;
        let version = match w.get("Version") {
            None => None,
            Some(Value::String(s)) if s.len() > MAX_VERSION_LEN => {
                return Err(w.invalid("Version", Reason::TooLong));
            }
            // NUL cannot be stored in PostgreSQL text; newlines and escapes would reach the
            // cache and every log or screen that shows it.
            Some(Value::String(s)) if s.chars().any(char::is_control) => {
                return Err(w.invalid("Version", Reason::ControlCharacters));
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) if is_integer(n) && n.to_string().len() <= MAX_VERSION_LEN => {
                Some(n.to_string())
            }
            Some(_) => return Err(w.invalid("Version", Reason::NotAnInteger)),
        };
        out.push(Wallet {
            id,
            balance,
            stat,
            version,
        });
    }
    Ok(out)
}

fn is_integer(n: &Number) -> bool {
    let text = n.to_string();
    let digits = text.strip_prefix('-').unwrap_or(&text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The body of activate and change-phone: `{"PhoneNumber": "+48123456789"}`, required, non-null.
pub fn phone_body(body: &Value, country: Country) -> Result<PhoneNumber, ApiError> {
    phone(&Obj::root(body)?, country)
}

/// A new phone number: `PhoneNumber`, required.
pub fn phone(fields: &impl Fields, country: Country) -> Result<PhoneNumber, ApiError> {
    fields
        .phone("PhoneNumber", country)?
        .ok_or_else(|| fields.invalid("PhoneNumber", Reason::Missing))
}

/// The body of activate: like [`phone_body`], but a well-formed number that no numbering plan
/// allows (`+48999999999`) is `None`, not a bad request: it can only differ from the number on
/// record, which the rules answer as `IncorrectPhoneNumber`.
pub fn activation_phone_body(
    body: &Value,
    country: Country,
) -> Result<Option<PhoneNumber>, ApiError> {
    let root = Obj::root(body)?;
    let text = root
        .str("PhoneNumber")?
        .ok_or_else(|| root.invalid("PhoneNumber", Reason::Missing))?;
    match PhoneNumber::parse(text, country) {
        Ok(phone) => Ok(Some(phone)),
        Err(PhoneError::Invalid) => Ok(None),
        Err(PhoneError::Malformed) => Err(root.invalid("PhoneNumber", Reason::PhoneNumber)),
    }
}

/// The desk's lock: `{"Reason": "Lost", "Note": "…"}`; `Other` needs a note.
pub fn desk_lock_body(body: &Value) -> Result<(LockReason, Option<LockNote>), ApiError> {
    desk_lock(&Obj::root(body)?)
}

/// The desk's lock from its fields (`Reason`, `Note`).
pub fn desk_lock(fields: &impl Fields) -> Result<(LockReason, Option<LockNote>), ApiError> {
    let reason = fields.lock_reason("Reason")?;
    let note = fields
        .text("Note")?
        .map(|n| LockNote::parse(n).ok_or_else(|| fields.invalid("Note", Reason::Note)))
        .transpose()?;
    if reason == LockReason::Other && note.is_none() {
        return Err(fields.invalid("Note", Reason::Missing));
    }
    Ok((reason, note))
}

/// The desk's replacement: `{"NewCardNumber": "…", "CardPinHMac": "…", "Reason": "Lost"}`.
pub fn replacement_body(body: &Value, card: &CardNumber) -> Result<Replacement, ApiError> {
    replacement(&Obj::root(body)?, card)
}

/// The desk's replacement of `card` from its fields (`NewCardNumber`, `CardPinHMac`, `Reason`).
pub fn replacement(fields: &impl Fields, card: &CardNumber) -> Result<Replacement, ApiError> {
    let new_card = CardNumber::parse(fields.required("NewCardNumber")?)
        .map_err(|_| fields.invalid("NewCardNumber", Reason::CardNumber))?;
    if &new_card == card {
        return Err(fields.invalid("NewCardNumber", Reason::SameCard));
    }
    Ok(Replacement {
        new_card,
        pin: fields.pin("CardPinHMac")?,
        reason: fields.lock_reason("Reason")?,
    })
}

/// A card number from the URL path.
pub fn card_number(s: &str) -> Result<CardNumber, ApiError> {
    CardNumber::parse(s).map_err(|_| ApiError::invalid("{card-number}", Reason::CardNumber))
}

/// An amount as a JSON number with exactly the digits it was stored with (`132.00`).
fn number(m: Money) -> Number {
    // Money's text is always a valid JSON number, and with `arbitrary_precision` the parse keeps
    // it verbatim; the fallback is unreachable but avoids a panic path.
    m.to_string().parse().unwrap_or_else(|_| Number::from(0))
}

/// A point in time as answers write it: RFC 3339, UTC, milliseconds (`2026-11-29T10:00:00.123Z`).
pub fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The customer the card belongs to (new, or the earlier one on a replay).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(example = json!({"CustomerId": "6c5d2f0e9b1a4c3d8e7f6a5b4c3d2e1f"}))]
pub struct CustomerIdBody {
    pub customer_id: String,
}

/// A card as stored (never its PIN HMAC).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CardBody {
    card_number: String,
    status: &'static str,
    customer: CustomerBody,
    wallets: Vec<WalletBody>,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
struct CustomerBody {
    customer_id: String,
    status: &'static str,
    phone_number: Option<String>,
    gender: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct WalletBody {
    id: String,
    #[schema(value_type = f64)]
    balance: Number,
    #[serde(skip_serializing_if = "Option::is_none")]
    stat: Option<StatBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
struct StatBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    lost: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    transferred_out: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    transferred_in: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    issued: Option<Number>,
}

impl From<Wallet> for WalletBody {
    fn from(w: Wallet) -> Self {
        Self {
            id: w.id.as_str().to_owned(),
            balance: number(w.balance),
            stat: w.stat.map(|s| StatBody {
                lost: s.lost.map(number),
                transferred_out: s.transferred_out.map(number),
                transferred_in: s.transferred_in.map(number),
                issued: s.issued.map(number),
            }),
            version: w.version,
        }
    }
}

impl From<CardView> for CardBody {
    fn from(v: CardView) -> Self {
        Self {
            card_number: v.card_number.to_string(),
            status: v.status.as_str(),
            customer: CustomerBody {
                customer_id: v.customer_id.to_string(),
                status: v.customer_status.as_str(),
                phone_number: v.phone.map(|p| p.as_str().to_owned()),
                gender: v.gender.as_str(),
            },
            wallets: v.wallets.into_iter().map(WalletBody::from).collect(),
            created_at: time(v.created_at),
            updated_at: time(v.updated_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn card() -> CardNumber {
        CardNumber::parse("99419283746389").unwrap()
    }

    /// Runs every decoder on a body, as the handlers would.
    fn decode_all(bytes: &[u8]) {
        if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
            let _ = cashier_language(&value);
            let _ = registration(&value, &card(), Country::poland());
            let _ = phone_body(&value, Country::poland());
        }
    }

    /// JSON trees built from the names the decoders look for, so that the search reaches past
    /// the parser into every branch of the walk.
    fn json_tree() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            Just("LoyaltyCard"),
            Just("Identity"),
            Just("ResponseLanguage"),
            Just("CashierLanguage"),
            Just("CardNumber"),
            Just("PhoneNumber"),
            Just("Gender"),
            Just("CardPinHMac"),
            Just("Wallets"),
            Just("Id"),
            Just("Balance"),
            Just("Stat"),
            Just("Lost"),
            Just("Issued"),
            Just("Version"),
            Just("PosNumber"),
            Just("PosOperatorNumber"),
            Just("SiteId"),
            Just("x"),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            "[-0-9.eE+]{1,40}".prop_map(|s| s.parse::<Number>().map_or(Value::Null, Value::Number)),
            "\\PC{0,40}".prop_map(Value::String),
            "[+]?[0-9 -]{0,16}".prop_map(Value::String),
            prop_oneof![Just("M"), Just("F"), Just("U"), Just("en_US")]
                .prop_map(|s| Value::String(s.into())),
        ];
        leaf.prop_recursive(5, 64, 8, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((key.clone(), inner), 0..8).prop_map(|fields| {
                    Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            decode_all(&bytes);
        }

        #[test]
        fn arbitrary_json_never_panics_the_decoders(tree in json_tree()) {
            decode_all(tree.to_string().as_bytes());
        }

        #[test]
        fn accepted_registrations_have_valid_parts(tree in json_tree()) {
            if let Ok((reg, _)) = registration(&tree, &card(), Country::poland()) {
                prop_assert_eq!(reg.card_number, card());
                if let Some(phone) = reg.phone {
                    prop_assert!(phone.as_str().starts_with('+'));
                }
            }
        }
    }

    #[test]
    fn a_complete_registration_decodes() {
        let body: Value = serde_json::from_str(
            r#"{"Identity": {"PosNumber": 5, "PosOperatorNumber": 0, "PosOperatorId": ""},
                "LoyaltyCard": {"CardNumber": "99419283746389", "PhoneNumber": "602 123 789",
                "Gender": "F", "CardPinHMac": "x",
                "Wallets": [{"Id": "A", "Balance": 132.00, "Stat": {"Lost": 0.22}, "Version": 7}]}}"#,
        )
        .unwrap();
        let (reg, identity) = registration(&body, &card(), Country::poland()).unwrap();
        assert_eq!(reg.phone.unwrap().as_str(), "+48602123789");
        assert_eq!(reg.wallets[0].balance.to_string(), "132.00");
        assert_eq!(reg.wallets[0].version.as_deref(), Some("7"));
        let identity = identity.unwrap();
        assert_eq!(identity.pos_number.as_deref(), Some("5"));
        assert_eq!(identity.pos_operator_number, None);
        assert_eq!(identity.pos_operator_id, None);
    }
}
