//! The customer's own data beyond what the till registers (contract section 8): names, e-mail,
//! address, date of birth, preferred language and store. Registration leaves them missing; the
//! customer completes and corrects them. Each value is parsed into its stored form here, once:
//! a refused value is named by its property, never echoed (it is personal data).

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::Language;

/// A property of the profile the customer may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProfileField {
    FirstName,
    LastName,
    Email,
    Street,
    HouseNumber,
    ApartmentNumber,
    PostalCode,
    City,
    DateOfBirth,
    PreferredLanguage,
    PreferredStore,
}

impl ProfileField {
    pub const ALL: [Self; 11] = [
        Self::FirstName,
        Self::LastName,
        Self::Email,
        Self::Street,
        Self::HouseNumber,
        Self::ApartmentNumber,
        Self::PostalCode,
        Self::City,
        Self::DateOfBirth,
        Self::PreferredLanguage,
        Self::PreferredStore,
    ];

    /// The property's name on the wire (and in `--mandatory-profile-fields`).
    pub fn name(self) -> &'static str {
        match self {
            Self::FirstName => "FirstName",
            Self::LastName => "LastName",
            Self::Email => "Email",
            Self::Street => "Street",
            Self::HouseNumber => "HouseNumber",
            Self::ApartmentNumber => "ApartmentNumber",
            Self::PostalCode => "PostalCode",
            Self::City => "City",
            Self::DateOfBirth => "DateOfBirth",
            Self::PreferredLanguage => "PreferredLanguage",
            Self::PreferredStore => "PreferredStore",
        }
    }

    /// The column that holds it.
    pub fn column(self) -> &'static str {
        match self {
            Self::FirstName => "first_name",
            Self::LastName => "last_name",
            Self::Email => "email",
            Self::Street => "street",
            Self::HouseNumber => "house_number",
            Self::ApartmentNumber => "apartment_number",
            Self::PostalCode => "postal_code",
            Self::City => "city",
            Self::DateOfBirth => "date_of_birth",
            Self::PreferredLanguage => "preferred_language",
            Self::PreferredStore => "preferred_store",
        }
    }

    pub fn parse_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == s)
    }

    /// The stored form of `raw` for this property, or `None` when it is not a valid value.
    /// `today` bounds a date of birth.
    pub fn parse_value(self, raw: &str, today: NaiveDate) -> Option<String> {
        let text = raw.trim();
        let plain = |max: usize| {
            let ok = !text.is_empty()
                && text.chars().count() <= max
                && !text.chars().any(char::is_control);
            ok.then(|| text.to_owned())
        };
        match self {
            Self::FirstName | Self::LastName | Self::City => plain(64),
            Self::Street => plain(100),
            Self::HouseNumber | Self::ApartmentNumber => plain(16),
            Self::PreferredStore => plain(64),
            Self::Email => email(text),
            Self::PostalCode => {
                let ok = (3..=10).contains(&text.len())
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b' ');
                ok.then(|| text.to_ascii_uppercase())
            }
            Self::DateOfBirth => {
                let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
                let earliest = NaiveDate::from_ymd_opt(1900, 1, 1)?;
                (text.len() == 10 && date >= earliest && date <= today)
                    .then(|| date.format("%Y-%m-%d").to_string())
            }
            Self::PreferredLanguage => Language::recognize(text).map(|l| l.code().to_owned()),
        }
    }
}

/// An address of the form `local@domain.tld`: no spaces or controls, at most 254 characters.
/// Whether it reaches anyone only a message could tell.
fn email(text: &str) -> Option<String> {
    let (local, domain) = text.rsplit_once('@')?;
    let ok = text.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() || (!c.is_ascii() && !c.is_control()));
    ok.then(|| text.to_owned())
}

/// The profile as stored: each property that has a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile(pub BTreeMap<ProfileField, String>);

impl Profile {
    pub fn get(&self, field: ProfileField) -> Option<&str> {
        self.0.get(&field).map(String::as_str)
    }
}

/// A partial update: each named property set to a value, or removed (`None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChange(pub Vec<(ProfileField, Option<String>)>);

/// The properties the operator requires (`--mandatory-profile-fields`): listed as missing
/// until given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MandatoryFields(pub Vec<ProfileField>);

impl MandatoryFields {
    /// A comma-separated list of property names.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut fields = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let field = ProfileField::parse_name(name).ok_or_else(|| {
                format!(
                    "{name:?} is not a profile property ({})",
                    ProfileField::ALL.map(ProfileField::name).join(", ")
                )
            })?;
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
        Ok(Self(fields))
    }

    /// Those not given in `profile`.
    pub fn missing(&self, profile: &Profile) -> Vec<ProfileField> {
        self.0
            .iter()
            .copied()
            .filter(|f| profile.get(*f).is_none())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 7).unwrap()
    }

    #[test]
    fn values_are_kept_in_their_stored_form_or_refused() {
        use ProfileField as F;
        let t = today();
        assert_eq!(
            F::FirstName.parse_value("  Zofia ", t).as_deref(),
            Some("Zofia")
        );
        assert_eq!(F::FirstName.parse_value("", t), None);
        assert_eq!(F::FirstName.parse_value("a\u{7}b", t), None);
        assert_eq!(F::FirstName.parse_value(&"ż".repeat(65), t), None);
        assert_eq!(
            F::Email.parse_value("zofia@example.pl", t).as_deref(),
            Some("zofia@example.pl")
        );
        for bad in [
            "zofia",
            "@example.pl",
            "zofia@example",
            "zo fia@example.pl",
            "z@.pl",
        ] {
            assert_eq!(F::Email.parse_value(bad, t), None, "{bad}");
        }
        assert_eq!(
            F::PostalCode.parse_value("00-950", t).as_deref(),
            Some("00-950")
        );
        assert_eq!(F::PostalCode.parse_value("00/950", t), None);
        assert_eq!(
            F::DateOfBirth.parse_value("1990-02-28", t).as_deref(),
            Some("1990-02-28")
        );
        for bad in [
            "1990-02-30",
            "2027-01-01",
            "1899-12-31",
            "90-02-28",
            "1990-2-28",
        ] {
            assert_eq!(F::DateOfBirth.parse_value(bad, t), None, "{bad}");
        }
        assert_eq!(
            F::PreferredLanguage.parse_value("en", t).as_deref(),
            Some("en_US")
        );
        assert_eq!(F::PreferredLanguage.parse_value("de_AT", t), None);
    }

    #[test]
    fn mandatory_fields_are_named_by_their_properties() {
        let m = MandatoryFields::parse("FirstName, Email,FirstName").unwrap();
        assert_eq!(m.0, vec![ProfileField::FirstName, ProfileField::Email]);
        assert!(MandatoryFields::parse("Shoe").unwrap_err().contains("Shoe"));
        let mut profile = Profile::default();
        profile.0.insert(ProfileField::Email, "a@b.pl".to_owned());
        assert_eq!(m.missing(&profile), vec![ProfileField::FirstName]);
    }
}
