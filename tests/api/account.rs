//! The customer's pages under `/account/` (contract section 8): over HTTP on every backend
//! (the cookie, the headers, forged forms, the shared throttle), and in Chromium on one (the
//! whole journey, every page checked for WCAG 2.2 AA with axe-core and scripted checks).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::support::*;

const PASSWORD: &str = "a long and private phrase";

const TEXTS: &str = r#"[
  {"Purpose": "Marketing", "Version": "1", "Language": "pl_PL", "Title": "Oferty programu", "Text": "Zgadzam się na otrzymywanie ofert programu SMS-em i e-mailem."},
  {"Purpose": "Marketing", "Version": "1", "Language": "en_US", "Title": "The programme's offers", "Text": "I agree to receive the programme's offers by text message and email."},
  {"Purpose": "Profiling", "Version": "1", "Language": "pl_PL", "Text": "Zgadzam się na dopasowanie ofert do moich zakupów."},
  {"Purpose": "Profiling", "Version": "1", "Language": "en_US", "Text": "I agree to offers matched to my purchases."},
  {"Purpose": "Newsletter", "Version": "1", "Language": "pl_PL", "Text": "Chcę dostawać gazetkę co miesiąc."},
  {"Purpose": "Newsletter", "Version": "1", "Language": "en_US", "Text": "I want the monthly leaflet."},
  {"Purpose": "Newsletter", "Version": "2", "Language": "pl_PL", "Text": "Chcę dostawać gazetkę co tydzień."},
  {"Purpose": "Newsletter", "Version": "2", "Language": "en_US", "Text": "I want the weekly leaflet."}
]"#;

/// An app with the portal (the test's consent texts, two mandatory properties) and the desk.
async fn with_pages() -> Option<(TestApp, Portal, Desk, tempfile::TempDir)> {
    with_pages_and_sms(None).await
}

/// The same, its text messages sent to the webhook at `sms` when given.
async fn with_pages_and_sms(
    sms: Option<String>,
) -> Option<(TestApp, Portal, Desk, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let texts = dir.path().join("consents.json");
    std::fs::write(&texts, TEXTS).unwrap();
    let (key_dir, key) = key_file();
    let (app, desk) = TestApp::spawn_desk_with(move |c| {
        let mut portal = cps::http::portal::PortalSettings::at("127.0.0.1:0".parse().unwrap(), key);
        portal.consent_texts_file = Some(texts);
        portal.mandatory = cps::domain::MandatoryFields::parse("FirstName,Email").unwrap();
        c.portal = Some(portal);
        c.sms = sms.map(|url| cps::outbox::sms::SmsSettings {
            timeout: Duration::from_secs(2),
            ..cps::outbox::sms::SmsSettings::at(&url)
        });
    })
    .await?;
    let portal = Portal::at(app.portal.clone().unwrap(), key_dir);
    Some((app, portal, desk, dir))
}

/// A browser as plain HTTP sees it: the cookies it was given, sent back.
struct Visit {
    base: String,
    client: reqwest::Client,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The `Set-Cookie` line for `name`.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The value of the hidden input `name` (the first one).
    fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let at = self
            .text
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.text));
        let rest = &self.text[at + marker.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

impl Visit {
    fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
        }
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let jar: Vec<String> = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        let req = if jar.is_empty() {
            req
        } else {
            req.header("cookie", jar.join("; "))
        };
        let response = req.send().await.expect("the portal answers");
        let headers = response.headers().clone();
        for line in headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let pair = line.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            self.cookies.retain(|(n, _)| n != name);
            if !line.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        Page {
            status: response.status().as_u16(),
            headers,
            text: response.text().await.unwrap_or_default(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self
            .client
            .get(format!("{}{path}", self.base))
            .header("accept-language", "pl-PL");
        self.send(req).await
    }

    /// Posts `form` from `origin` (this site's own when `None`).
    async fn post(&mut self, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> Page {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept-language", "pl-PL")
            .header("origin", origin.unwrap_or(&self.base))
            .body(body);
        self.send(req).await
    }
}

const SESSION: &str = "__Host-cps_account";
const EVIL: &str = "http://evil.example";

/// What every `__Host-` cookie of the pages must say.
fn assert_host_cookie(line: &str) {
    for part in ["; Path=/;", "; HttpOnly", "; SameSite=Lax", "; Secure"] {
        assert!(line.contains(part), "{part} missing from {line}");
    }
    assert!(!line.to_ascii_lowercase().contains("domain="), "{line}");
}

#[tokio::test]
async fn the_pages_sign_in_with_a_host_cookie_and_refuse_forged_forms() {
    let Some((app, portal, _desk, _dir)) = with_pages().await else {
        return;
    };
    app.registered_with_pin(CARD).await;
    let mut visit = Visit::new(&portal.base);

    let page = visit.get("/account").await;
    assert_eq!((page.status, page.location()), (303, "/account/sign-in"));
    let page = visit.get("/account/sign-in").await;
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(page.header("cache-control"), "no-store");
    assert_eq!(page.header("referrer-policy"), "same-origin");
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert!(
        page.header("strict-transport-security")
            .starts_with("max-age=")
    );
    assert!(page.text.contains("<html lang=\"pl\">"), "{}", page.text);
    assert_host_cookie(
        &page
            .set_cookie("__Host-cps_form")
            .expect("the form's token"),
    );
    let token = page.hidden("form");

    // Without the form's token, or from another site with it: refused, nobody signed in.
    let page = visit
        .post(
            "/account/sign-in",
            &[("card", CARD), ("secret", CARD_PIN)],
            None,
        )
        .await;
    assert_eq!(page.status, 403);
    let form = [
        ("form", token.as_str()),
        ("card", CARD),
        ("secret", CARD_PIN),
    ];
    let page = visit.post("/account/sign-in", &form, Some(EVIL)).await;
    assert_eq!(page.status, 403);
    assert!(page.set_cookie(SESSION).is_none());

    // A wrong PIN: the API's one refusal, on the page.
    let wrong = [("form", token.as_str()), ("card", CARD), ("secret", "9999")];
    let page = visit.post("/account/sign-in", &wrong, None).await;
    assert_eq!(page.status, 403);
    assert!(
        page.text.contains("Błędny numer karty lub pin"),
        "{}",
        page.text
    );
    assert!(page.set_cookie(SESSION).is_none());

    // The PIN: a `__Host-` session cookie, and the password to set first.
    let page = visit.post("/account/sign-in", &form, None).await;
    assert_eq!((page.status, page.location()), (303, "/account/password"));
    assert_host_cookie(&page.set_cookie(SESSION).expect("a session cookie"));
    let page = visit.get("/account/consents").await;
    assert_eq!((page.status, page.location()), (303, "/account/password"));
    let page = visit.get("/account/password").await;
    assert_eq!(page.status, 200);
    let csrf = page.hidden("csrf");

    // Without the session's CSRF token nothing is set: the PIN still signs in on the API.
    let set = [("old", CARD_PIN), ("new", PASSWORD)];
    assert_eq!(
        visit.post("/account/password", &set, None).await.status,
        403
    );
    let with_csrf = [
        ("csrf", csrf.as_str()),
        ("old", CARD_PIN),
        ("new", PASSWORD),
    ];
    assert_eq!(
        visit
            .post("/account/password", &with_csrf, Some(EVIL))
            .await
            .status,
        403
    );
    assert_eq!(
        portal.login(CARD, CARD_PIN).await.json()["MustSetPassword"],
        json!(true)
    );
    let page = visit.post("/account/password", &with_csrf, None).await;
    assert_eq!(
        (page.status, page.location()),
        (303, "/account?done=password")
    );
    let page = visit.get("/account?done=password").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains(CARD) && page.text.contains("Hasło zostało ustawione"));

    // A consent posted by another site, even with this session's token, changes nothing.
    let session = portal.session(CARD, PASSWORD).await;
    let consents = || async {
        portal
            .send(
                Method::GET,
                "/loyalty/v1/customers/current/consents",
                Some(&session),
                None,
            )
            .await
            .json()
    };
    let page = visit.get("/account/consents").await;
    assert!(
        page.text
            .contains("<h2 id=\"Marketing-title\">Oferty programu</h2>"),
        "{}",
        page.text
    );
    let csrf = page.hidden("csrf");
    // The first purpose's form: the text shown goes with it, by version, language and hash.
    let (lang, sha256) = (page.hidden("lang"), page.hidden("sha256"));
    assert_eq!(lang, "pl_PL");
    let give = [
        ("csrf", csrf.as_str()),
        ("action", "give"),
        ("version", "1"),
        ("lang", &lang),
        ("sha256", &sha256),
    ];
    let page = visit
        .post("/account/consents/Marketing", &give, Some(EVIL))
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(consents().await["Consents"][0]["Given"], json!(false));
    // Not the text shown (another language's, or words changed since): nothing is given.
    for (lang, sha256) in [("en_US", sha256.as_str()), ("pl_PL", &"0".repeat(64))] {
        let stale = [
            ("csrf", csrf.as_str()),
            ("action", "give"),
            ("version", "1"),
            ("lang", lang),
            ("sha256", sha256),
        ];
        let page = visit
            .post("/account/consents/Marketing", &stale, None)
            .await;
        assert_eq!(page.location(), "/account/consents?done=changed");
    }
    assert_eq!(consents().await["Consents"][0]["Given"], json!(false));
    let page = visit.post("/account/consents/Marketing", &give, None).await;
    assert_eq!(page.status, 303, "{}", page.text);
    let now = consents().await;
    assert_eq!(now["Consents"][0]["Given"], json!(true), "{now}");
    assert_eq!(now["History"][0]["Channel"], json!("web"), "{now}");
    assert_eq!(now["History"][0]["Language"], json!("pl_PL"), "{now}");

    // A consent given on an older text shows that text, and offers the new one beside it.
    portal
        .give(&session, "Newsletter", "1")
        .await
        .assert_no_content();
    let page = visit.get("/account/consents").await;
    let at = page.text.find("id=\"Newsletter\"").unwrap();
    let section = &page.text[at..at + page.text[at..].find("</section>").unwrap()];
    let (old, new) = (
        section.find("co miesiąc").unwrap(),
        section.find("co tydzień").unwrap(),
    );
    assert!(
        old < new,
        "the text given first, then the new one: {section}"
    );
    assert!(section.contains("Wyrażam zgodę na nową treść"), "{section}");
    assert!(
        section.contains("name=\"version\" value=\"2\""),
        "{section}"
    );

    // Signing out ends the session on the server: the old cookie opens nothing.
    let old = visit.cookie(SESSION).unwrap().to_owned();
    let page = visit
        .post("/account/sign-out", &[("csrf", csrf.as_str())], None)
        .await;
    assert_eq!(
        (page.status, page.location()),
        (303, "/account/sign-in?done=signed-out")
    );
    assert!(visit.cookie(SESSION).is_none());
    visit.cookies.push((SESSION.to_owned(), old));
    let page = visit.get("/account").await;
    assert_eq!(
        (page.status, page.location()),
        (303, "/account/sign-in?done=ended")
    );
}

#[tokio::test]
async fn the_pages_share_the_apis_throttle_and_answer_html_for_every_refusal() {
    let Some((app, portal, _desk, _dir)) = with_pages().await else {
        return;
    };
    app.registered_with_pin(CARD).await;
    let mut visit = Visit::new(&portal.base);
    let token = visit.get("/account/sign-in").await.hidden("form");
    let wrong = [("form", token.as_str()), ("card", CARD), ("secret", "0000")];
    // Three failures are free, the fourth starts the waits: through the pages as on the API.
    for _ in 0..4 {
        assert_eq!(
            visit.post("/account/sign-in", &wrong, None).await.status,
            403
        );
    }
    // The card's failures are counted once, whichever door they came through.
    let page = visit.post("/account/sign-in", &wrong, None).await;
    assert_eq!(page.status, 429, "{}", page.text);
    assert!(page.header("retry-after").parse::<u64>().unwrap() > 0);
    assert!(page.header("content-type").starts_with("text/html"));
    portal
        .login(CARD, CARD_PIN)
        .await
        .assert_error(429, "TooManyAttempts");

    // Garbage and an unknown page are pages, not crashes or JSON.
    let garbage = visit
        .client
        .post(format!("{}/account/sign-in", portal.base))
        .header("content-type", "application/octet-stream")
        .body(vec![0xff, 0xfe, 0x00, 0x80])
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 403);
    let page = visit.get("/account/no-such-page").await;
    assert_eq!(page.status, 404);
    assert!(page.header("content-type").starts_with("text/html"));
    // The API keeps its envelope beside the pages.
    let reply = portal
        .send(Method::GET, "/loyalty/v1/nothing", None, None)
        .await;
    reply.assert_error(404, "NotFound");
    // The whole public listener asks browsers for HTTPS, the API's answers too.
    assert!(reply.headers.contains_key("strict-transport-security"));
}

/// The section `css` asks one action of its form: a button, nothing to tick, fill or choose.
async fn only_a_button(browser: &Browser, css: &str) {
    assert_eq!(
        browser.count(&format!("{css} form button")).await,
        1,
        "{css}"
    );
    let inputs = format!("{css} form input:not([type=hidden]), {css} form select");
    assert_eq!(browser.count(&inputs).await, 0, "{css}");
}

/// A page of another site that posts `fields` to `action`: what a forged form is.
async fn foreign_site(
    action: &str,
    fields: &[(&str, &str)],
) -> (String, tokio::task::JoinHandle<()>) {
    let inputs: String = fields
        .iter()
        .map(|(k, v)| format!("<input type=hidden name=\"{k}\" value=\"{v}\">"))
        .collect();
    // Careless in other ways too (an image without a text, an input without a label): the
    // audit must see them, or it proves nothing of the portal's pages.
    let html = format!(
        "<!doctype html><html lang=en><title>Win a prize</title><img src=/prize.png><input name=email><form method=post action=\"{action}\">{inputs}<button type=submit>Claim</button></form></html>"
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let html = html.clone();
            async move { axum::response::Html(html) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, task)
}

#[tokio::test]
async fn a_customer_goes_from_the_till_to_deleting_their_account_in_the_browser() {
    // One backend is enough: the pages sit on the portal's operations, tested on every backend.
    if crate::BACKEND != Backend::Sqlite {
        return;
    }
    let gateway = FakeReceiver::start().await;
    let Some((app, portal, _desk, _dir)) = with_pages_and_sms(Some(gateway.url("/sms"))).await
    else {
        return;
    };
    let Some(axe) = axe_source() else {
        return;
    };
    let Some(browser) = Browser::start().await else {
        return;
    };
    // At the till: the card registered through ALCS's API, with its PIN.
    app.registered_with_pin(CARD).await;
    let base = portal.base.clone();

    // Signed out: the sign-in page, the help and the notices, then a wrong PIN.
    browser.goto(&format!("{base}/account")).await;
    assert!(browser.url().await.ends_with("/account/sign-in"));
    browser.check_page(&axe, "sign-in (pl)", "pl").await;
    browser.secret_field("#card", "text", "username", 2).await;
    browser
        .secret_field("#secret", "password", "current-password", 2)
        .await;
    for path in ["help", "privacy", "accessibility", "reset", "no-such-page"] {
        browser.goto(&format!("{base}/account/{path}")).await;
        browser
            .check_page(&axe, &format!("{path} (pl, signed out)"), "pl")
            .await;
    }
    // The reset by SMS code: the code's page, and a wrong code refused on it.
    browser.goto(&format!("{base}/account/reset")).await;
    browser.fill("#card", CARD).await;
    browser.click("main button[type=submit]").await;
    browser
        .secret_field("#code", "text", "one-time-code", 3)
        .await;
    browser
        .secret_field("#new", "password", "new-password", 3)
        .await;
    browser.check_page(&axe, "reset: the code (pl)", "pl").await;
    gateway.wait_for(1, Duration::from_secs(10)).await;
    browser.fill("#code", "000000").await;
    browser.fill("#new", "an entirely new phrase").await;
    browser.click("main form.stack button[type=submit]").await;
    assert!(
        browser
            .text(".message.error")
            .await
            .contains("To nie jest wysłany kod")
    );
    browser
        .check_page(&axe, "reset: a wrong code (pl)", "pl")
        .await;
    browser.goto(&format!("{base}/account/sign-in")).await;
    browser.fill("#card", CARD).await;
    browser.fill("#secret", "0000").await;
    browser.click("main button[type=submit]").await;
    assert!(
        browser
            .text(".message.error")
            .await
            .contains("Błędny numer karty lub pin")
    );
    browser.check_page(&axe, "sign-in refused (pl)", "pl").await;

    // The PIN, then a password of one's own: a weak one is refused at its field.
    browser.fill("#card", CARD).await;
    browser.fill("#secret", CARD_PIN).await;
    browser.click("main button[type=submit]").await;
    assert!(browser.url().await.ends_with("/account/password"));
    browser
        .check_page(&axe, "set the password (pl)", "pl")
        .await;
    browser
        .secret_field("#old", "password", "current-password", 2)
        .await;
    browser
        .secret_field("#new", "password", "new-password", 2)
        .await;
    browser.fill("#old", CARD_PIN).await;
    browser.fill("#new", "password").await;
    browser.click("main button[type=submit]").await;
    assert_eq!(
        browser.property("#new", "aria-invalid").await,
        json!("true")
    );
    browser
        .check_page(&axe, "set the password, refused (pl)", "pl")
        .await;
    browser.fill("#old", CARD_PIN).await;
    browser.fill("#new", PASSWORD).await;
    browser.click("main button[type=submit]").await;
    assert!(
        browser
            .text(".message.done")
            .await
            .contains("Hasło zostało ustawione")
    );
    assert!(browser.page_text().await.contains("Uzupełnij swój profil"));
    browser.check_page(&axe, "overview (pl)", "pl").await;

    // The profile: a wrong e-mail named at its field, then the data completed.
    browser.click("nav a[href='/account/profile']").await;
    browser.check_page(&axe, "profile (pl)", "pl").await;
    browser.fill("#FirstName", "Anna").await;
    browser.fill("#Email", "anna-at-example").await;
    browser.click("main form.stack button[type=submit]").await;
    assert_eq!(
        browser.property("#Email", "aria-invalid").await,
        json!("true")
    );
    assert!(
        browser
            .text(".message.error")
            .await
            .contains("Adres e-mail")
    );
    browser
        .check_page(&axe, "profile with errors (pl)", "pl")
        .await;
    browser.fill("#Email", "anna@example.pl").await;
    browser.fill("#City", "Kraków").await;
    browser.click("main form.stack button[type=submit]").await;
    assert!(browser.text(".message.done").await.contains("Zapisano"));
    browser
        .screenshot_at(390, &screenshot_path("account-profile-phone.png"))
        .await;

    // Consents: giving one and withdrawing it take the same single action.
    browser.click("nav a[href='/account/consents']").await;
    browser.check_page(&axe, "consents (pl)", "pl").await;
    // One button, nothing to tick or fill: the whole of what giving asks.
    only_a_button(&browser, "#Marketing").await;
    let before = browser.actions();
    browser.click("#Marketing button[type=submit]").await;
    let give = browser.actions() - before;
    assert!(
        browser
            .text(".message.done")
            .await
            .contains("Zgoda została wyrażona")
    );
    assert!(
        browser
            .text("#Marketing .state")
            .await
            .contains("Zgoda wyrażona")
    );
    browser
        .check_page(&axe, "consents, one given (pl)", "pl")
        .await;
    browser
        .screenshot(&screenshot_path("account-consents-desktop.png"))
        .await;
    browser
        .screenshot_at(390, &screenshot_path("account-consents-phone.png"))
        .await;
    // Withdrawing asks no more: one button, and no page of confirmation after it.
    only_a_button(&browser, "#Marketing").await;
    let before = browser.actions();
    browser.click("#Marketing button[type=submit]").await;
    let withdraw = browser.actions() - before;
    assert!(
        browser
            .text("#Marketing .state")
            .await
            .contains("Brak zgody")
    );
    assert!(
        browser
            .text(".message.done")
            .await
            .contains("Zgoda została wycofana")
    );
    assert_eq!(
        (give, withdraw),
        (1, 1),
        "giving and withdrawing: one action each"
    );
    let session = portal.session(CARD, PASSWORD).await;
    let consents = portal
        .send(
            Method::GET,
            "/loyalty/v1/customers/current/consents",
            Some(&session),
            None,
        )
        .await
        .json();
    let actions: Vec<&str> = consents["History"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["Given", "Withdrawn"], "{consents}");
    assert_eq!(consents["History"][0]["Channel"], json!("web"));

    // A form of another site, carrying this session's own token, is refused by its origin.
    let csrf = browser
        .property(
            "form[action='/account/objection'] input[name=csrf]",
            "value",
        )
        .await;
    let csrf = csrf.as_str().unwrap().to_owned();
    let (evil, evil_task) = foreign_site(
        &format!("{base}/account/objection"),
        &[("csrf", &csrf), ("action", "object")],
    )
    .await;
    browser.goto(&evil).await;
    let found: Vec<String> = browser
        .violations(&axe)
        .await
        .iter()
        .map(|v| v["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        found.contains(&"image-alt".to_owned()) && found.contains(&"label".to_owned()),
        "axe sees a careless page's faults: {found:?}"
    );
    browser.click("button").await;
    assert!(
        browser
            .page_text()
            .await
            .contains("nie pochodzi z tej strony")
    );
    evil_task.abort();
    let consents = portal
        .send(
            Method::GET,
            "/loyalty/v1/customers/current/consents",
            Some(&session),
            None,
        )
        .await
        .json();
    assert_eq!(consents["MarketingObjection"], json!(false), "{consents}");

    // The other places, signed in.
    for path in [
        "",
        "/card",
        "/sessions",
        "/phone",
        "/step-up?next=/account/my-data",
        "/delete",
        "/help",
    ] {
        browser.goto(&format!("{base}/account{path}")).await;
        browser
            .check_page(&axe, &format!("/account{path} (pl, signed in)"), "pl")
            .await;
    }
    // A step-up by SMS code: the page once the code is sent.
    browser
        .goto(&format!("{base}/account/step-up?next=/account/my-data"))
        .await;
    browser
        .click("form[action='/account/step-up/code'] button")
        .await;
    assert!(
        browser
            .text(".message.done")
            .await
            .contains("Wysłaliśmy kod")
    );
    browser
        .check_page(&axe, "step-up: the code sent (pl)", "pl")
        .await;
    browser.goto(&format!("{base}/account")).await;
    browser
        .screenshot(&screenshot_path("account-overview-desktop.png"))
        .await;
    browser
        .screenshot_at(390, &screenshot_path("account-overview-phone.png"))
        .await;
    // A phone change asks for the password first: a wrong one is refused at its field.
    browser.goto(&format!("{base}/account/phone")).await;
    browser.fill("#phone", "602 123 456").await;
    browser.fill("#password", "not my password").await;
    browser.click("main button[type=submit]").await;
    assert!(
        browser
            .text(".message.error")
            .await
            .contains("Hasło jest nieprawidłowe")
    );
    assert_eq!(
        browser.property("#password", "aria-invalid").await,
        json!("true")
    );
    browser
        .check_page(&axe, "phone change refused (pl)", "pl")
        .await;

    // In English: the same places, and an error state.
    browser.click("header a[lang=en]").await;
    assert!(
        browser
            .page_text()
            .await
            .contains("Change the phone number")
    );
    for path in [
        "",
        "/profile",
        "/consents",
        "/my-data",
        "/sessions",
        "/card",
        "/delete",
    ] {
        browser.goto(&format!("{base}/account{path}")).await;
        browser
            .check_page(&axe, &format!("/account{path} (en, signed in)"), "en")
            .await;
    }
    browser.goto(&format!("{base}/account/profile")).await;
    browser.fill("#PostalCode", "!!").await;
    browser.click("main form.stack button[type=submit]").await;
    assert!(browser.text(".message.error").await.contains("Postal code"));
    browser
        .check_page(&axe, "profile with errors (en)", "en")
        .await;

    // The download: step-up with the password, then the file itself.
    browser.goto(&format!("{base}/account/my-data")).await;
    browser.fill("#password", "not my password").await;
    browser
        .click("form[action='/account/my-data/download'] button")
        .await;
    assert!(
        browser
            .text(".message.error")
            .await
            .contains("That password is not right")
    );
    browser
        .check_page(&axe, "download refused (en)", "en")
        .await;
    browser.fill("#password", PASSWORD).await;
    browser
        .press("form[action='/account/my-data/download'] button")
        .await;
    let file = browser.downloads.path().join("cps-my-data.json");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !file.exists() {
        assert!(
            Instant::now() < deadline,
            "no download in {:?}",
            browser.downloads.path()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let data: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        data["Customer"]["Profile"]["FirstName"],
        json!("Anna"),
        "{data}"
    );
    assert_eq!(
        data["Customer"]["Profile"]["Email"],
        json!("anna@example.pl"),
        "{data}"
    );
    assert!(data["Processing"]["Rights"].is_array());

    // Raised now: a new number is asked for its code at once.
    browser.goto(&format!("{base}/account/phone")).await;
    browser.fill("#phone", "+48 601 000 111").await;
    browser.click("main button[type=submit]").await;
    browser
        .secret_field("#code", "text", "one-time-code", 1)
        .await;
    browser
        .check_page(&axe, "phone change: the code (en)", "en")
        .await;

    // Deleting the account: its consequences, the confirmation asked for, then the receipt.
    browser.goto(&format!("{base}/account/delete")).await;
    assert!(browser.page_text().await.contains("This cannot be undone"));
    browser.click("main form.stack button[type=submit]").await;
    assert_eq!(
        browser.property("#confirm", "aria-invalid").await,
        json!("true")
    );
    browser
        .check_page(&axe, "delete, not confirmed (en)", "en")
        .await;
    browser.press("label[for=confirm]").await;
    browser.click("main form.stack button[type=submit]").await;
    assert!(browser.text("h1").await.contains("Account deleted"));
    assert!(browser.page_text().await.contains("Receipt number"));
    browser
        .check_page(&axe, "deleted, the receipt (en)", "en")
        .await;

    // Afterwards the card signs in no more, with the same refusal as any other.
    browser.goto(&format!("{base}/account")).await;
    assert!(browser.url().await.ends_with("/account/sign-in"));
    browser.fill("#card", CARD).await;
    browser.fill("#secret", PASSWORD).await;
    browser.click("main button[type=submit]").await;
    assert!(
        browser
            .text(".message.error")
            .await
            .contains("Wrong card number or PIN")
    );
    browser.check_page(&axe, "sign-in refused (en)", "en").await;
    for path in ["sign-in", "help", "privacy", "accessibility", "reset"] {
        browser.goto(&format!("{base}/account/{path}")).await;
        browser
            .check_page(&axe, &format!("{path} (en, signed out)"), "en")
            .await;
    }
    browser.goto(&format!("{base}/account/sign-in")).await;
    browser
        .screenshot(&screenshot_path("account-sign-in-desktop.png"))
        .await;
    browser
        .screenshot_at(390, &screenshot_path("account-sign-in-phone.png"))
        .await;
    portal
        .login(CARD, PASSWORD)
        .await
        .assert_error(403, "NoAuthothorization");
    browser.close().await;
}

/// The six digits of a message's text (the webhook's JSON `Text`).
fn code_in(body: &[u8]) -> String {
    let message: Value = serde_json::from_slice(body).expect("the webhook's JSON");
    let text = message["Text"].as_str().unwrap_or_default();
    let codes: Vec<&str> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| w.len() == 6)
        .collect();
    assert_eq!(codes.len(), 1, "one code in {text}");
    codes[0].to_owned()
}

#[tokio::test]
async fn sms_codes_sign_in_step_up_and_change_the_phone_on_the_pages() {
    let gateway = FakeReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = gateway.url("/sms");
    let (key_dir, key) = key_file();
    let Some(app) = TestApp::spawn_with(move |c| {
        c.portal = Some(cps::http::portal::PortalSettings::at(
            "127.0.0.1:0".parse().unwrap(),
            key,
        ));
        c.sms = Some(cps::outbox::sms::SmsSettings {
            timeout: Duration::from_secs(2),
            ..cps::outbox::sms::SmsSettings::at(&url)
        });
    })
    .await
    else {
        return;
    };
    let portal = Portal::at(app.portal.clone().unwrap(), key_dir);
    app.registered_with_pin(CARD).await;
    portal.with_password(CARD, PASSWORD).await;
    let mut visit = Visit::new(&portal.base);

    // Forgotten password: a code to the phone on record, then a new password, signed in.
    let token = visit.get("/account/reset").await.hidden("form");
    let page = visit
        .post("/account/reset", &[("form", &token), ("card", CARD)], None)
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.hidden("card"), CARD, "the card is not asked again");
    let sent = gateway.wait_for(1, Duration::from_secs(10)).await;
    let code = code_in(&sent[0].body);
    let new = "a brand new private phrase";
    let wrong = [
        ("form", token.as_str()),
        ("card", CARD),
        ("code", "000000"),
        ("new", new),
    ];
    let page = visit.post("/account/reset/code", &wrong, None).await;
    assert_eq!(page.status, 403);
    assert!(page.set_cookie(SESSION).is_none());
    let right = [
        ("form", token.as_str()),
        ("card", CARD),
        ("code", &code),
        ("new", new),
    ];
    let page = visit.post("/account/reset/code", &right, None).await;
    assert_eq!(
        (page.status, page.location()),
        (303, "/account?done=reset"),
        "{}",
        page.text
    );
    assert_eq!(visit.get("/account").await.status, 200);
    portal
        .login(CARD, PASSWORD)
        .await
        .assert_error(403, "NoAuthothorization");

    // A step-up by code instead of the password, back to the page that asked.
    let page = visit.get("/account/step-up?next=/account/my-data").await;
    let csrf = page.hidden("csrf");
    assert_eq!(page.hidden("next"), "/account/my-data");
    let form = [("csrf", csrf.as_str()), ("next", "/account/my-data")];
    assert_eq!(
        visit
            .post("/account/step-up/code", &form, None)
            .await
            .status,
        200
    );
    let sent = gateway.wait_for(2, Duration::from_secs(10)).await;
    let code = code_in(&sent[1].body);
    // A `next` of another site is not followed: the step-up returns to the account.
    let form = [
        ("csrf", csrf.as_str()),
        ("next", "//evil.example/account"),
        ("code", &code),
    ];
    let page = visit.post("/account/step-up", &form, None).await;
    assert_eq!(
        (page.status, page.location()),
        (303, "/account?done=stepped-up")
    );
    let page = visit.get("/account/my-data").await;
    assert!(
        !page.text.contains("name=\"password\""),
        "raised: no password asked"
    );
    // A page of the account is returned to (here after the password instead of a code).
    let form = [
        ("csrf", csrf.as_str()),
        ("next", "/account/my-data"),
        ("password", new),
    ];
    let page = visit.post("/account/step-up", &form, None).await;
    assert_eq!(
        (page.status, page.location()),
        (303, "/account/my-data?done=stepped-up")
    );

    // The phone changed with a code sent to the new number.
    let form = [("csrf", csrf.as_str()), ("phone", "+48 601 000 111")];
    let page = visit.post("/account/phone", &form, None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let sent = gateway.wait_for(3, Duration::from_secs(10)).await;
    let code = code_in(&sent[2].body);
    let form = [("csrf", csrf.as_str()), ("code", &code)];
    let page = visit.post("/account/phone/code", &form, None).await;
    assert_eq!(
        (page.status, page.location()),
        (303, "/account/profile?done=phone")
    );
    let session = portal.session(CARD, new).await;
    let profile = portal
        .send(
            Method::GET,
            "/loyalty/v1/customers/current",
            Some(&session),
            None,
        )
        .await
        .json();
    assert_eq!(profile["PhoneNumber"], json!("+48601000111"), "{profile}");
    drop(dir);
}

#[tokio::test]
async fn sessions_end_and_a_lost_card_is_blocked_from_the_pages() {
    let Some((app, portal, desk, _dir)) = with_pages().await else {
        return;
    };
    app.registered_with_pin(CARD).await;
    let other = portal.with_password(CARD, PASSWORD).await;
    let mut visit = Visit::new(&portal.base);
    let token = visit.get("/account/sign-in").await.hidden("form");
    let form = [
        ("form", token.as_str()),
        ("card", CARD),
        ("secret", PASSWORD),
    ];
    let page = visit.post("/account/sign-in", &form, None).await;
    assert_eq!((page.status, page.location()), (303, "/account"));
    // A sign-in from an older tab over this session replaces it: the old one ends.
    let first = visit.cookie(SESSION).unwrap().to_owned();
    visit
        .cookies
        .push(("__Host-cps_form".to_owned(), token.clone()));
    let page = visit.post("/account/sign-in", &form, None).await;
    assert_eq!((page.status, page.location()), (303, "/account"));
    assert_ne!(visit.cookie(SESSION).unwrap(), first);
    let mut stale = Visit::new(&portal.base);
    stale.cookies.push((SESSION.to_owned(), first));
    assert_eq!(
        stale.get("/account").await.location(),
        "/account/sign-in?done=ended"
    );

    // The language switch remembers the choice and returns only to the account's pages.
    let page = visit
        .get("/account/language/en?back=/account/sessions")
        .await;
    assert_eq!((page.status, page.location()), (303, "/account/sessions"));
    assert_host_cookie(&page.set_cookie("__Host-cps_lang").unwrap());
    let page = visit.get("/account/language/en?back=//evil.example/").await;
    assert_eq!(page.location(), "/account");
    let page = visit.get("/account/sessions").await;
    assert!(page.text.contains("<html lang=\"en\">") && page.text.contains("Another session"));

    // Ending the other session (the API's) from the list.
    let listed = portal.sessions(&other).await.json();
    let other_id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Current"] == json!(true))
        .unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let csrf = page.hidden("csrf");
    let page = visit
        .post(
            &format!("/account/sessions/{other_id}/end"),
            &[("csrf", &csrf)],
            None,
        )
        .await;
    assert_eq!(page.location(), "/account/sessions?done=session-ended");
    portal
        .sessions(&other)
        .await
        .assert_error(401, "SessionExpired");

    // A lost card: blocked as ALCS's lock blocks it, every session ended, the cookie gone.
    let page = visit.post("/account/card", &[("csrf", &csrf)], None).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Card blocked"), "{}", page.text);
    assert!(visit.cookie(SESSION).is_none());
    assert_eq!(
        desk.card(CARD).await["Status"],
        json!("Locked"),
        "as ALCS's lock"
    );
    portal
        .login(CARD, PASSWORD)
        .await
        .assert_error(403, "NoAuthothorization");
}

#[tokio::test]
async fn refusals_tell_nothing_of_the_card_and_a_stale_profile_form_overwrites_nothing() {
    let Some((app, portal, _desk, _dir)) = with_pages().await else {
        return;
    };
    app.registered_with_pin(CARD).await;
    let session = portal.with_password(CARD, PASSWORD).await;
    let mut visit = Visit::new(&portal.base);
    let token = visit.get("/account/sign-in").await.hidden("form");

    // A card that exists and one that does not: the same page, byte for byte.
    let known = visit
        .post(
            "/account/sign-in",
            &[("form", &token), ("card", CARD), ("secret", "wrong one")],
            None,
        )
        .await;
    let unknown = visit
        .post(
            "/account/sign-in",
            &[
                ("form", &token),
                ("card", "81000000000001"),
                ("secret", "wrong one"),
            ],
            None,
        )
        .await;
    assert_eq!((known.status, &known.text), (unknown.status, &unknown.text));
    assert_eq!(known.set_cookie(SESSION), unknown.set_cookie(SESSION));

    // A form sent without `Origin` (an older browser) is judged by its token alone.
    let body = format!(
        "form={token}&card={CARD}&secret={}",
        PASSWORD.replace(' ', "+")
    );
    let jar = format!("__Host-cps_form={token}");
    let page = visit
        .client
        .post(format!("{}/account/sign-in", portal.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", jar)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    let form = [
        ("form", token.as_str()),
        ("card", CARD),
        ("secret", PASSWORD),
    ];
    assert_eq!(
        visit.post("/account/sign-in", &form, None).await.status,
        303
    );

    // The profile: saved, then a field left blank is removed.
    let page = visit.get("/account/profile").await;
    let (csrf, version) = (page.hidden("csrf"), page.hidden("version"));
    let full = [
        ("csrf", csrf.as_str()),
        ("version", &version),
        ("FirstName", "Anna"),
        ("Email", "anna@example.pl"),
        ("City", "Kraków"),
    ];
    let page = visit.post("/account/profile", &full, None).await;
    assert_eq!(page.location(), "/account/profile?done=profile");
    let page = visit.get("/account/profile").await;
    let version = page.hidden("version");
    let blank = [
        ("csrf", csrf.as_str()),
        ("version", &version),
        ("FirstName", "Anna"),
        ("Email", "anna@example.pl"),
        ("City", ""),
    ];
    assert_eq!(
        visit.post("/account/profile", &blank, None).await.status,
        303
    );
    let profile = || async {
        portal
            .send(
                Method::GET,
                "/loyalty/v1/customers/current",
                Some(&session),
                None,
            )
            .await
    };
    assert_eq!(profile().await.json()["City"], Value::Null);

    // Changed elsewhere meanwhile (the API, another device): the form's next try, even after
    // a refused value, is refused as stale and overwrites nothing.
    let page = visit.get("/account/profile").await;
    let seen = page.hidden("version");
    let etag = profile().await.headers["etag"].to_str().unwrap().to_owned();
    let reply = portal
        .send_with(
            &reqwest::Client::new(),
            Method::PATCH,
            "/loyalty/v1/customers/current",
            Some(&session),
            Some(&json!({ "Email": "anna@elsewhere.pl" })),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let wrong = [
        ("csrf", csrf.as_str()),
        ("version", &seen),
        ("FirstName", "Anna"),
        ("Email", "not an address"),
    ];
    let page = visit.post("/account/profile", &wrong, None).await;
    assert_eq!(page.status, 422);
    assert_eq!(
        page.hidden("version"),
        seen,
        "the version the values came from"
    );
    let again = [
        ("csrf", csrf.as_str()),
        ("version", &seen),
        ("FirstName", "Anna"),
        ("Email", "anna@example.pl"),
    ];
    let page = visit.post("/account/profile", &again, None).await;
    assert_eq!(page.status, 409, "{}", page.text);
    assert_eq!(profile().await.json()["Email"], json!("anna@elsewhere.pl"));

    // A session that is not the customer's is not "ended".
    let page = visit
        .post(
            "/account/sessions/not-a-session/end",
            &[("csrf", &csrf)],
            None,
        )
        .await;
    assert_eq!(page.status, 404);
}
