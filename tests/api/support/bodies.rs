//! Request bodies and the values tests use.

use serde_json::{Value, json};

pub const CARD: &str = "99419283746389";
pub const PHONE: &str = "+48602123789";
pub const OTHER_PHONE: &str = "+48602123780";
pub const PIN: &str = "3f729ea140a769400985ade930f695452cf622fd0dd3ca69218319333ca2386c";

/// The contract's example registration, for `card`.
pub fn registration(card: &str) -> Value {
    json!({
        "Identity": { "PosId": "09fae9a5d4ea40e79dd7c1096c3694e0", "PosNumber": "5",
                      "PosOperatorId": "b614f1dbda36454b970b4e1d409f4b01", "PosOperatorNumber": 23,
                      "SiteId": "2345" },
        "ResponseLanguage": { "ClientLanguage": "pl_PL", "CashierLanguage": "pl_PL" },
        "LoyaltyCard": {
            "CardNumber": card, "PhoneNumber": PHONE, "Gender": "M", "CardPinHMac": PIN,
            "Wallets": [
                { "Id": "Strickers2016", "Balance": 10.0,
                  "Stat": { "Lost": 0.22, "TransferredOut": 132.00, "TransferredIn": 9.12, "Issued": 199.22 },
                  "Version": "abc" },
                { "Id": "SomethingElse", "Balance": 0.0, "Stat": { "Lost": 0.0, "TransferredOut": 0.0 }, "Version": "xyz" }
            ]
        }
    })
}

/// A registration body given as raw JSON text, for amounts whose spelling matters (`132.00`):
/// `serde_json::json!` would not keep it.
pub fn raw_registration(card: &str, wallets: &str) -> String {
    format!(
        r#"{{"LoyaltyCard": {{"CardNumber": "{card}", "PhoneNumber": "{PHONE}", "Gender": "F",
            "CardPinHMac": "{PIN}", "Wallets": {wallets}}}}}"#
    )
}

/// Sets `value` at a dotted path in `body` (`LoyaltyCard.Gender`); `None` removes the field.
pub fn with(mut body: Value, path: &str, value: Option<Value>) -> Value {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().expect("a path");
    let mut target = &mut body;
    for part in parts {
        target = match part.parse::<usize>() {
            Ok(i) => &mut target[i],
            Err(_) => &mut target[part],
        };
    }
    let obj = target.as_object_mut().expect("an object at the path");
    match value {
        Some(v) => {
            obj.insert(last.to_owned(), v);
        }
        None => {
            obj.remove(last);
        }
    }
    body
}
