use std::fmt;

/// The languages `Message` texts are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Polish,
    English,
}

impl Language {
    /// Recognizes the spellings clients send (`pl_PL`, `pl-PL`, `pl`, `en_US`, `en-US`, `en`),
    /// ignoring case. Anything else is `None`: callers fall back rather than reject, because
    /// clients send arbitrary locales such as `de_AT`.
    pub fn recognize(tag: &str) -> Option<Self> {
        let tag = tag.trim();
        for (lang, spellings) in [
            (Self::Polish, ["pl_PL", "pl-PL", "pl"]),
            (Self::English, ["en_US", "en-US", "en"]),
        ] {
            if spellings.iter().any(|s| s.eq_ignore_ascii_case(tag)) {
                return Some(lang);
            }
        }
        None
    }

    /// Picks the most preferred recognized language from an `Accept-Language` header value
    /// (`en-US,pl;q=0.8`). Entries with `q=0` are refusals and never chosen.
    pub fn from_accept_language(header: &str) -> Option<Self> {
        let mut best: Option<(f32, Self)> = None;
        for entry in header.split(',') {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or_default();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q.is_nan() || q <= 0.0 {
                continue;
            }
            if let Some(lang) = Self::recognize(tag) {
                // Strictly greater: among equal weights the first listed wins.
                if best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, lang));
                }
            }
        }
        best.map(|(_, lang)| lang)
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Polish => "pl_PL",
            Self::English => "en_US",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_the_six_spellings_and_nothing_else() {
        for t in ["pl_PL", "pl-PL", "pl", "PL_pl"] {
            assert_eq!(Language::recognize(t), Some(Language::Polish), "{t}");
        }
        for t in ["en_US", "en-US", "en", "EN-us"] {
            assert_eq!(Language::recognize(t), Some(Language::English), "{t}");
        }
        for t in ["de_AT", "", "english", "pl_PL_x"] {
            assert_eq!(Language::recognize(t), None, "{t}");
        }
    }

    #[test]
    fn accept_language_honours_weights_and_skips_unknown_tags() {
        let f = Language::from_accept_language;
        assert_eq!(f("en-US,pl;q=0.8"), Some(Language::English));
        assert_eq!(f("pl;q=0.5, en;q=0.9"), Some(Language::English));
        assert_eq!(f("de-AT, en;q=0.1"), Some(Language::English));
        assert_eq!(f("en;q=0, pl;q=0.1"), Some(Language::Polish));
        assert_eq!(f("de-AT, fr"), None);
        assert_eq!(f(""), None);
        assert_eq!(f("en;q=abc"), Some(Language::English));
    }
}
