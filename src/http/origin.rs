//! Web origins (RFC 6454) compared as origins: scheme, host and port, with a scheme's default
//! port dropped and the host folded to lower case (and to its ASCII form), so that
//! `https://Desk.example.com:443/` and the `Origin: https://desk.example.com` a browser sends
//! are the same origin.

/// An origin of an `http` or `https` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(url::Origin);

impl Origin {
    /// An origin an operator configured: `scheme://host[:port]`, with at most a trailing `/`.
    /// Any path, query, fragment or credentials is a mistake worth stopping for: the setting
    /// would never match what a browser sends.
    pub fn configured(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text.trim()).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("not an http:// or https:// origin".to_owned());
        }
        if url.host().is_none() {
            return Err("names no host".to_owned());
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err("an origin has no path, query or fragment".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("an origin has no credentials".to_owned());
        }
        Ok(Self(url.origin()))
    }

    /// The origin an `Origin` header names; `None` for `null` or anything that is not an
    /// http(s) origin.
    pub fn from_header(value: &axum::http::HeaderValue) -> Option<Self> {
        let url = url::Url::parse(value.to_str().ok()?.trim()).ok()?;
        matches!(url.scheme(), "http" | "https")
            .then(|| Self(url.origin()))
            .filter(|o| o.0.is_tuple())
    }

    /// As a browser writes it (`https://desk.example.com`).
    pub fn ascii(&self) -> String {
        self.0.ascii_serialization()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> Option<Origin> {
        Origin::from_header(&axum::http::HeaderValue::from_str(text).unwrap())
    }

    #[test]
    fn origins_are_compared_as_origins() {
        let configured = Origin::configured("https://Desk.Example.com:443/").unwrap();
        assert_eq!(header("https://desk.example.com"), Some(configured.clone()));
        assert_eq!(configured.ascii(), "https://desk.example.com");
        assert_eq!(
            Origin::configured("http://desk.example.com:80").unwrap(),
            header("http://desk.example.com").unwrap()
        );
        assert_ne!(
            header("https://desk.example.com:8443"),
            Some(configured.clone())
        );
        assert_ne!(header("http://desk.example.com"), Some(configured));
        assert_eq!(
            Origin::configured("http://[::1]:8443").unwrap(),
            header("http://[::1]:8443").unwrap()
        );
        assert_eq!(header("null"), None);
        for wrong in [
            "https://desk.example.com/console",
            "https://desk.example.com/?a",
            "https://u:p@desk.example.com",
            "ftp://desk.example.com",
            "desk.example.com",
            "https://",
        ] {
            assert!(Origin::configured(wrong).is_err(), "{wrong}");
        }
    }
}
