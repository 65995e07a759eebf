//! Consents with proof (contract section 8, GDPR art. 7(1)): the purposes the operator asks
//! consent for, the texts shown (versioned per language, each known by its SHA-256), and the
//! append-only events that record who gave or withdrew which consent, when, through which
//! channel, having been shown which text. The art. 21 objection to all marketing overrides
//! every consent while it stands. Nothing is given by default.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use super::Language;

/// A purpose the operator asks consent for: `Marketing`, `Profiling`, `PartnerOffers`
/// (a letter, then up to 31 letters and digits: it names a cache field, `Consent.{Purpose}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Purpose(String);

impl Purpose {
    pub fn parse(s: &str) -> Option<Self> {
        let mut chars = s.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && s.len() <= 32
            && chars.all(|c| c.is_ascii_alphanumeric());
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A text's version, as the operator names it (`2026-12`, `v3`): 1 to 32 of
/// `A-Z a-z 0-9 . _ -`.
pub fn valid_version(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One text the customer is shown when asked for a consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentText {
    pub purpose: Purpose,
    pub version: String,
    pub language: Language,
    pub text: String,
    /// SHA-256 of the text's UTF-8 bytes, 64 lowercase hex digits: what the proof records.
    pub sha256: String,
    /// What the purpose is called in this language, for the pages (the purpose's name
    /// without one).
    pub title: Option<String>,
}

impl ConsentText {
    pub fn new(purpose: Purpose, version: String, language: Language, text: String) -> Self {
        let sha256 = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            purpose,
            version,
            language,
            text,
            sha256,
            title: None,
        }
    }

    pub fn titled(mut self, title: Option<String>) -> Self {
        self.title = title.filter(|t| !t.trim().is_empty());
        self
    }
}

/// Every text the operator publishes, by purpose, version and language.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentTexts(Vec<ConsentText>);

impl ConsentTexts {
    /// The texts, refused when two share a purpose, version and language.
    pub fn new(texts: Vec<ConsentText>) -> Result<Self, String> {
        for (i, t) in texts.iter().enumerate() {
            if texts[..i].iter().any(|o| {
                o.purpose == t.purpose && o.version == t.version && o.language == t.language
            }) {
                return Err(format!(
                    "{} version {} in {} is given twice",
                    t.purpose,
                    t.version,
                    t.language.code()
                ));
            }
        }
        Ok(Self(texts))
    }

    pub fn all(&self) -> &[ConsentText] {
        &self.0
    }

    /// The purposes, in the order first published.
    pub fn purposes(&self) -> Vec<&Purpose> {
        let mut seen: Vec<&Purpose> = Vec::new();
        for t in &self.0 {
            if !seen.contains(&&t.purpose) {
                seen.push(&t.purpose);
            }
        }
        seen
    }

    /// The text of `purpose` at `version` in `language` (or, when not written in it, in any
    /// language of that version).
    pub fn find(
        &self,
        purpose: &Purpose,
        version: &str,
        language: Language,
    ) -> Option<&ConsentText> {
        let of = |t: &&ConsentText| t.purpose == *purpose && t.version == version;
        self.0
            .iter()
            .filter(of)
            .find(|t| t.language == language)
            .or_else(|| self.0.iter().find(of))
    }
}

/// What a consent event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentAction {
    Given,
    Withdrawn,
    /// The art. 21 objection to all marketing.
    Objected,
    ObjectionWithdrawn,
}

impl ConsentAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Given => "Given",
            Self::Withdrawn => "Withdrawn",
            Self::Objected => "Objected",
            Self::ObjectionWithdrawn => "ObjectionWithdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Given,
            Self::Withdrawn,
            Self::Objected,
            Self::ObjectionWithdrawn,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// Through what the change was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The portal's pages.
    Web,
    /// The customer API.
    Api,
    Desk,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Api => "api",
            Self::Desk => "desk",
        }
    }
}

/// The consents in force (each purpose with the version of the text it was given on) and the
/// objection: what the customer's row holds, and the cache shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consents {
    pub given: BTreeMap<Purpose, String>,
    pub objected: bool,
}

/// A change asked of the consents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentCommand {
    Give(ConsentText),
    Withdraw(Purpose),
    Object,
    WithdrawObjection,
}

impl ConsentCommand {
    /// The event to record, or `None` when nothing changes (a consent given again on the same
    /// text, one withdrawn that was not given): no event records a change that did not happen.
    pub fn decide(&self, state: &Consents) -> Option<ConsentAction> {
        match self {
            Self::Give(text) => (state.given.get(&text.purpose) != Some(&text.version))
                .then_some(ConsentAction::Given),
            Self::Withdraw(purpose) => state
                .given
                .contains_key(purpose)
                .then_some(ConsentAction::Withdrawn),
            Self::Object => (!state.objected).then_some(ConsentAction::Objected),
            Self::WithdrawObjection => state.objected.then_some(ConsentAction::ObjectionWithdrawn),
        }
    }

    /// `state` after the change.
    pub fn apply(&self, mut state: Consents) -> Consents {
        match self {
            Self::Give(text) => {
                state
                    .given
                    .insert(text.purpose.clone(), text.version.clone());
            }
            Self::Withdraw(purpose) => {
                state.given.remove(purpose);
            }
            Self::Object => state.objected = true,
            Self::WithdrawObjection => state.objected = false,
        }
        state
    }
}

impl Consents {
    /// The row's form: `Purpose=version` entries, comma-separated, in purpose order.
    pub fn stored(&self) -> String {
        self.given
            .iter()
            .map(|(p, v)| format!("{p}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// From the row's form; entries that do not read are dropped (nothing is given by default).
    pub fn from_stored(given: &str, objected: bool) -> Self {
        let given = given
            .split(',')
            .filter_map(|e| e.split_once('='))
            .filter_map(|(p, v)| Some((Purpose::parse(p)?, v.to_owned())))
            .filter(|(_, v)| valid_version(v))
            .collect();
        Self { given, objected }
    }

    /// The purposes in force for the tills: none while the customer objects to marketing
    /// (the objection overrides every consent).
    pub fn in_force(&self) -> Vec<&Purpose> {
        if self.objected {
            return Vec::new();
        }
        self.given.keys().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(purpose: &str, version: &str) -> ConsentText {
        ConsentText::new(
            Purpose::parse(purpose).unwrap(),
            version.to_owned(),
            Language::Polish,
            "Zgadzam się.".to_owned(),
        )
    }

    #[test]
    fn a_text_is_known_by_the_sha256_of_its_bytes() {
        let t = text("Marketing", "1");
        assert_eq!(t.sha256.len(), 64);
        assert_eq!(
            ConsentText::new(
                t.purpose.clone(),
                "2".into(),
                Language::English,
                t.text.clone()
            )
            .sha256,
            t.sha256
        );
    }

    #[test]
    fn only_changes_are_recorded_and_the_objection_overrides() {
        let state = Consents::default();
        let give = ConsentCommand::Give(text("Marketing", "1"));
        assert_eq!(give.decide(&state), Some(ConsentAction::Given));
        let state = give.apply(state);
        assert_eq!(give.decide(&state), None, "the same text again");
        assert_eq!(
            ConsentCommand::Give(text("Marketing", "2")).decide(&state),
            Some(ConsentAction::Given),
            "a new text is a new consent"
        );
        let marketing = Purpose::parse("Marketing").unwrap();
        assert_eq!(state.in_force(), vec![&marketing]);
        let objected = ConsentCommand::Object.apply(state.clone());
        assert!(objected.in_force().is_empty());
        assert_eq!(
            Consents::from_stored(&objected.stored(), true),
            objected,
            "the row's form reads back"
        );
        let withdraw = ConsentCommand::Withdraw(marketing);
        assert_eq!(withdraw.decide(&state), Some(ConsentAction::Withdrawn));
        assert_eq!(withdraw.decide(&withdraw.apply(state)), None);
    }

    #[test]
    fn purposes_and_versions_are_plain_names() {
        assert!(Purpose::parse("PartnerOffers").is_some());
        for bad in ["", "1st", "Con.sent", "a b", &"a".repeat(33)] {
            assert!(Purpose::parse(bad).is_none(), "{bad}");
        }
        assert!(valid_version("2026-12.v1"));
        assert!(!valid_version("1,2") && !valid_version("a=b") && !valid_version(""));
    }
}
