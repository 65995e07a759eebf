//! What every wing that serves pages to people shares (the desk's console, the customer's
//! account pages): the answer's security headers, redirects and cookies, the page's language,
//! the CSRF token of a session and the same-origin check, the stylesheet as an asset, and the
//! page chrome ([`layout`]). Each wing brings its own cookie names, paths and words.

pub mod layout;

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::Language;
use crate::http::extract::field;
use crate::http::origin::Origin;
use crate::secret::{hash_hex, same_secret};

/// The policy of every page: nothing but this site's stylesheet and images, no script at all,
/// forms only to this site, never framed.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What every page answers with besides its body.
pub fn html(status: StatusCode, body: maud::Markup) -> Response {
    let mut response = (status, body.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: under it a browser sends `Origin: null` with the site's own forms,
    // and the origin check would refuse them.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// `Strict-Transport-Security` on every answer of a public wing (not the desk's console, which
/// may sit behind an internal certificate that staff must be able to click past). Browsers heed
/// it only over HTTPS and on a name: behind a TLS proxy, where a public listener stands, it
/// keeps the next visit off plain HTTP.
pub async fn strict_transport(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    response
}

/// `303 See Other` to `to`, with cookies to set.
pub fn redirect(to: &str, cookies: &[String]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::try_from(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in cookies {
        set_cookie(&mut response, cookie);
    }
    response
}

pub fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::try_from(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The value of the cookie `name` the request sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// How a wing's cookies are made: every one out of scripts' reach.
#[derive(Debug, Clone, Copy)]
pub struct Cookies {
    /// `/console`; `/` for `__Host-` cookies, which must have it.
    pub path: &'static str,
    /// `Strict` or `Lax`.
    pub same_site: &'static str,
    pub secure: bool,
}

impl Cookies {
    /// `name=value` with the wing's attributes; `max_age` in seconds (`Some(0)` removes it,
    /// `None` keeps it for the browser's session).
    pub fn make(&self, name: &str, value: &str, max_age: Option<u32>) -> String {
        let max_age = max_age
            .map(|s| format!("; Max-Age={s}"))
            .unwrap_or_default();
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{name}={value}; Path={}; HttpOnly; SameSite={}{max_age}{secure}",
            self.path, self.same_site
        )
    }

    pub fn remove(&self, name: &str) -> String {
        self.make(name, "", Some(0))
    }
}

/// How long a chosen language is remembered.
pub const LANGUAGE_KEPT: u32 = 31_536_000;

/// The page's language: the one chosen on the page (the cookie `chosen`), else the browser's,
/// else `default`.
pub fn language(headers: &HeaderMap, chosen: &str, default: Language) -> Language {
    match cookie(headers, chosen) {
        Some("pl") => return Language::Polish,
        Some("en") => return Language::English,
        _ => {}
    }
    headers
        .get_all(header::ACCEPT_LANGUAGE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(Language::from_accept_language)
        .unwrap_or(default)
}

/// The code a language switch names: `en`, else Polish.
pub fn language_code(requested: &str) -> &'static str {
    if requested == "en" { "en" } else { "pl" }
}

/// Where a page returns to (a language switch's `back`, a step-up's `next`): `wanted` when it
/// is a page under `mount`, else `mount` itself; never an open redirect.
pub fn within<'a>(wanted: Option<&'a str>, mount: &'a str) -> &'a str {
    wanted
        .filter(|b| {
            b.starts_with(mount)
                && matches!(b.as_bytes().get(mount.len()), None | Some(b'/' | b'?'))
                && !b.starts_with("//")
                && !b.contains('\\')
        })
        .unwrap_or(mount)
}

/// The CSRF token of a session: derived from its id under the wing's `label`, so nothing more
/// is stored and every instance behind a balancer agrees, and a page of another site can
/// neither read nor compute it.
pub fn csrf_for(label: &str, session_id: &str) -> String {
    hash_hex(&format!("{label}\0{session_id}"))
}

/// Whether the form's `csrf` field is `expected`, compared in constant time.
pub fn csrf_matches(form: &[(String, String)], name: &str, expected: &str) -> bool {
    !expected.is_empty()
        && same_secret(
            field(form, name).unwrap_or_default().as_bytes(),
            expected.as_bytes(),
        )
}

/// Whether a request comes from this site: its `Origin`, when sent, is the origin the `Host`
/// the browser sent names (either scheme: a TLS-terminating proxy may stand in front).
pub fn same_origin(headers: &HeaderMap) -> bool {
    headers.get(header::ORIGIN).is_none_or(|origin| {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin = Origin::from_header(origin);
        host.zip(origin).is_some_and(|(host, origin)| {
            ["http", "https"].iter().any(|scheme| {
                Origin::configured(&format!("{scheme}://{host}")).is_ok_and(|own| own == origin)
            })
        })
    })
}

/// A submitted form's fields, in order. Never refused: a body that is not a form reads as
/// fields that are not there (the envelope has already bounded its size), and the handler
/// answers with its page.
pub struct FormBody(pub Vec<(String, String)>);

impl<S: Send + Sync> axum::extract::FromRequest<S> for FormBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .unwrap_or_default();
        Ok(Self(
            url::form_urlencoded::parse(&bytes).into_owned().collect(),
        ))
    }
}

/// A stylesheet embedded in the binary, served under a name that changes with its content, so
/// a new release is never served a stale copy while an unchanged one is cached for good.
pub struct Stylesheet {
    /// Where the wing serves its assets (`/console/assets`).
    pub at: &'static str,
    pub stem: &'static str,
    pub css: &'static str,
    name: OnceLock<String>,
}

impl Stylesheet {
    pub const fn new(at: &'static str, stem: &'static str, css: &'static str) -> Self {
        Self {
            at,
            stem,
            css,
            name: OnceLock::new(),
        }
    }

    fn name(&self) -> &str {
        self.name
            .get_or_init(|| format!("{}-{}.css", self.stem, &hash_hex(self.css)[..12]))
    }

    /// Its path, for the pages' `<link>`.
    pub fn href(&self) -> String {
        format!("{}/{}", self.at, self.name())
    }

    /// The answer to `GET {at}/{requested}`.
    pub fn serve(&self, requested: &str) -> Response {
        if requested != self.name() {
            return (StatusCode::NOT_FOUND, "").into_response();
        }
        let mut response = self.css.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_language_switch_returns_only_to_the_wings_own_pages() {
        assert_eq!(
            within(Some("/account/profile"), "/account"),
            "/account/profile"
        );
        assert_eq!(within(Some("/account?x=1"), "/account"), "/account?x=1");
        assert_eq!(within(Some("/account"), "/account"), "/account");
        assert_eq!(within(None, "/account"), "/account");
        for foreign in [
            "//evil.example/account",
            "/accountant",
            "https://evil.example",
            "/account\\..\\x",
            "/console",
        ] {
            assert_eq!(within(Some(foreign), "/account"), "/account", "{foreign}");
        }
    }

    #[test]
    fn cookies_carry_the_wings_attributes() {
        let host = Cookies {
            path: "/",
            same_site: "Lax",
            secure: true,
        };
        assert_eq!(
            host.make("__Host-s", "v", None),
            "__Host-s=v; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            host.remove("__Host-s"),
            "__Host-s=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; Secure"
        );
    }

    #[test]
    fn csrf_tokens_differ_by_wing_and_session() {
        assert_ne!(csrf_for("a", "s"), csrf_for("b", "s"));
        assert_ne!(csrf_for("a", "s"), csrf_for("a", "t"));
        let form = vec![("csrf".to_owned(), csrf_for("a", "s"))];
        assert!(csrf_matches(&form, "csrf", &csrf_for("a", "s")));
        assert!(!csrf_matches(&form, "csrf", &csrf_for("a", "t")));
        assert!(!csrf_matches(&[], "csrf", ""));
    }
}
