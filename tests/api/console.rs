//! The service desk console: over plain HTTP (its cookies, headers, CSRF and role checks), and
//! end to end in a real headless Chromium, with screenshots of the card page in both languages.

use serde_json::json;

use super::support::*;

/// A client that keeps no cookies and follows no redirects: each response as it is.
fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The sign-in form's CSRF token: the cookie it comes with, and the form field's value.
async fn login_form(desk: &Desk) -> (String, String) {
    let r = plain()
        .get(format!("{}/console", desk.base))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("cps_login="), "{cookie}");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let html = r.text().await.unwrap();
    let at = html.find(r#"name="login" value=""#).expect("a login field") + 20;
    (cookie, html[at..].split('"').next().unwrap().to_owned())
}

/// Posts the sign-in form with `token`, as a browser that was given the form would.
async fn post_sign_in(desk: &Desk, token: &str, lang: &str) -> reqwest::Response {
    let (cookie, login) = login_form(desk).await;
    plain()
        .post(format!("{}/console/sign-in", desk.base))
        .header("cookie", cookie)
        .header("accept-language", lang)
        .form(&[("token", token), ("login", login.as_str())])
        .send()
        .await
        .unwrap()
}

/// Signs in with `token`; the session cookie's `name=value`.
async fn sign_in(desk: &Desk, token: &str) -> String {
    let r = post_sign_in(desk, token, "pl").await;
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("cps_desk="), "{cookie}");
    cookie.split(';').next().unwrap().to_owned()
}

/// A page as a signed-in user, with its status and body.
async fn page(desk: &Desk, cookie: &str, path: &str) -> (u16, String) {
    let r = plain()
        .get(format!("{}{path}", desk.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The CSRF field of a page's forms.
fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

async fn post_form(
    desk: &Desk,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
    origin: Option<&str>,
) -> (u16, String) {
    let mut req = plain()
        .post(format!("{}{path}", desk.base))
        .header("cookie", cookie)
        .form(form);
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_console_signs_in_with_a_strict_cookie_and_serves_strict_headers() {
    let Some((_app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    let front = plain()
        .get(format!("{}/console", desk.base))
        .send()
        .await
        .unwrap();
    assert_eq!(front.status(), 200);
    let csp = front.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(front.headers()["x-frame-options"], "DENY");
    // No HSTS from the desk: a console behind an internal certificate must stay reachable.
    assert!(!front.headers().contains_key("strict-transport-security"));
    let html = front.text().await.unwrap();
    assert!(html.contains(r#"<html lang="pl">"#), "{html}");
    assert!(html.contains(r#"<label for="token">"#), "labelled: {html}");

    let r = post_sign_in(&desk, &desk.agent, "pl").await;
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("cps_desk="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP here: {cookie}");

    // A sign-in form posted from elsewhere (no token given with the form) signs nobody in.
    let forged = plain()
        .post(format!("{}/console/sign-in", desk.base))
        .form(&[("token", desk.agent.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(
        forged
            .headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("cps_desk="))
    );

    let wrong = post_sign_in(&desk, "cps_wrong", "en").await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("cps_desk=")),
        "no session"
    );
    let html = wrong.text().await.unwrap();
    assert!(html.contains("A valid token is required"), "{html}");

    // The stylesheet: embedded, named by its content, cached for good; nothing else is served.
    let stylesheet = html
        .split(r#"rel="stylesheet" href=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    assert!(
        stylesheet.starts_with("/console/assets/console-"),
        "{stylesheet}"
    );
    let css = plain()
        .get(format!("{}{stylesheet}", desk.base))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let missing = plain()
        .get(format!("{}/console/assets/console-0.css", desk.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // The language switch goes back to console pages only.
    let switch = plain()
        .get(format!(
            "{}/console/language/en?back=//evil.example/x",
            desk.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(switch.status(), 303);
    assert_eq!(switch.headers()["location"], "/console");
}

#[tokio::test]
async fn forged_and_unauthorized_console_changes_are_refused_and_change_nothing() {
    let Some((app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    app.registered(CARD).await;
    let agent = sign_in(&desk, &desk.agent).await;
    let viewer = sign_in(&desk, &desk.viewer).await;
    let lock = format!("/console/cards/{CARD}/lock");
    let (status, html) = page(&desk, &agent, &lock).await;
    assert_eq!(status, 200, "{html}");
    let csrf = csrf_of(&html);
    let before = app.totals().await;

    // No CSRF field: a page of another site posting the form.
    let (status, _) = post_form(&desk, &agent, &lock, &[("reason", "Lost")], None).await;
    assert_eq!(status, 403);
    // A wrong one.
    let (status, _) = post_form(
        &desk,
        &agent,
        &lock,
        &[("reason", "Lost"), ("csrf", "00")],
        None,
    )
    .await;
    assert_eq!(status, 403);
    // The right one from a foreign origin.
    let form = [("reason", "Lost"), ("csrf", csrf.as_str())];
    let (status, _) = post_form(&desk, &agent, &lock, &form, Some("https://evil.example")).await;
    assert_eq!(status, 403);
    // A viewer with its own valid CSRF token: its role may not.
    let (_, viewer_page) = page(&desk, &viewer, &format!("/console/cards/{CARD}")).await;
    assert!(
        !viewer_page.contains(&format!("/console/cards/{CARD}/lock")),
        "no action for a viewer"
    );
    let viewer_csrf = csrf_of(&viewer_page);
    let form = [("reason", "Lost"), ("csrf", viewer_csrf.as_str())];
    let (status, html) = post_form(&desk, &viewer, &lock, &form, None).await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("Twoja rola nie pozwala"), "{html}");
    // Not signed in: the sign-in page.
    let (status, _) = post_form(&desk, "cps_desk=", &lock, &form, None).await;
    assert_eq!(status, 401);
    assert_eq!(app.totals().await, before, "nothing changed");
    assert_eq!(
        desk.card(CARD).await["Status"],
        json!("WaitingForActivation")
    );

    // The agent's real form does it, same origin included.
    let form = [("reason", "Lost"), ("csrf", csrf.as_str())];
    let origin = desk.base.clone();
    let (status, _) = post_form(&desk, &agent, &lock, &form, Some(&origin)).await;
    assert_eq!(status, 303);
    let card = desk.card(CARD).await;
    assert_eq!(card["Lock"]["Reason"], json!("Lost"));
    assert_eq!(card["LastChange"]["By"]["Name"], json!(AGENT));
    // A refusal shows the API's message on the page, in the page's language.
    let unlock = format!("/console/cards/{CARD}/unlock");
    let form = [("csrf", csrf.as_str())];
    assert_eq!(post_form(&desk, &agent, &unlock, &form, None).await.0, 303);
    let (status, html) = post_form(&desk, &agent, &unlock, &form, None).await;
    assert_eq!(status, 409);
    assert!(html.contains("Karta nie jest zablokowana"), "{html}");
    // Signing out ends the session for the browser (the cookie is cleared).
    let r = plain()
        .post(format!("{}/console/sign-out", desk.base))
        .header("cookie", &agent)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // ... and on the server: the same cookie, kept or copied, opens nothing any more.
    let (status, html) = page(&desk, &agent, &format!("/console/cards/{CARD}")).await;
    assert_eq!(status, 401);
    assert!(html.contains("Sesja zakończyła się"), "{html}");
    // A revoked token ends the session at the next page, and its cookie is cleared.
    let _alone = SIGHUP.lock().await;
    std::fs::write(&desk.tokens_file, "").unwrap();
    hang_up();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = plain()
            .get(format!("{}/console/cards/{CARD}", desk.base))
            .header("cookie", &viewer)
            .send()
            .await
            .unwrap();
        if r.status() == 401 {
            let cleared = r
                .headers()
                .get_all("set-cookie")
                .iter()
                .any(|c| c.to_str().unwrap().starts_with("cps_desk=;"));
            assert!(cleared, "the stale session cookie is cleared");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {}", r.status());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_console_changes_a_phone_at_the_version_shown_and_retries_a_notice() {
    let Some((app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    let customer = app.registered(CARD).await;
    let agent = sign_in(&desk, &desk.agent).await;
    let phone = format!("/console/customers/{customer}/phone");
    let (status, form_page) = page(&desk, &agent, &phone).await;
    assert_eq!(status, 200, "{form_page}");
    let csrf = csrf_of(&form_page);
    assert!(
        form_page.contains(r#"name="version" value="1""#),
        "{form_page}"
    );
    // The customer changes after the form was shown: the change is refused, not made blind.
    app.lock(CARD).await.assert_no_content();
    let form = [
        ("csrf", csrf.as_str()),
        ("version", "1"),
        ("phone", "602 123 780"),
    ];
    let (status, html) = post_form(&desk, &agent, &phone, &form, None).await;
    assert_eq!(status, 412, "{html}");
    assert!(html.contains("zmieniły się w międzyczasie"), "{html}");
    assert!(
        html.contains(r#"name="version" value="2""#),
        "the form shows the new version"
    );
    let form = [
        ("csrf", csrf.as_str()),
        ("version", "2"),
        ("phone", "602 123 780"),
    ];
    assert_eq!(post_form(&desk, &agent, &phone, &form, None).await.0, 303);
    assert_eq!(
        desk.card(CARD).await["Customer"]["PhoneNumber"],
        json!(OTHER_PHONE)
    );
    // A bad number is the API's refusal, on the page.
    let form = [("csrf", csrf.as_str()), ("version", "3"), ("phone", "12")];
    let (status, html) = post_form(&desk, &agent, &phone, &form, None).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("PhoneNumber"), "{html}");

    // The notice: offered only when there is one to send again.
    let (_, card_page) = page(&desk, &agent, &format!("/console/cards/{CARD}")).await;
    assert!(!card_page.contains("/retry-notice"), "nothing to retry yet");
    app.registered("77").await;
    app.activate("77", PHONE).await.assert_no_content();
    let (_, card_page) = page(&desk, &agent, "/console/cards/77").await;
    assert!(
        card_page.contains("/console/cards/77/retry-notice"),
        "{card_page}"
    );
    let form = [("csrf", csrf.as_str())];
    let (status, _) = post_form(&desk, &agent, "/console/cards/77/retry-notice", &form, None).await;
    assert_eq!(status, 303);
    assert_ne!(
        desk.card("77").await["AlcsNotice"]["State"],
        json!("unsent")
    );
}

#[tokio::test]
async fn a_desk_agent_handles_a_call_in_the_browser() {
    // One backend is enough: the pages sit on the desk's operations, tested on every backend.
    if crate::BACKEND != Backend::Sqlite {
        return;
    }
    let Some((app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    let Some(browser) = Browser::start().await else {
        return;
    };
    let customer = app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    app.registered(NEW_CARD_TAKEN).await;
    let base = desk.base.clone();

    // A wrong token is refused on the page.
    browser.goto(&format!("{base}/console")).await;
    browser.fill("#token", "cps_not-mine").await;
    browser.click("button[type=submit]").await;
    assert!(
        browser
            .text(".message.error")
            .await
            .contains("Wymagany jest ważny token")
    );

    // Sign in, find the card by the customer's phone as they say it.
    browser.fill("#token", &desk.agent).await;
    browser.click("main button[type=submit]").await;
    let signed_in = browser.page_text().await;
    assert!(
        signed_in.contains(AGENT),
        "{signed_in} at {}",
        browser.url().await
    );
    browser.fill("#q", "602 123 789").await;
    browser.click("form.search button").await;
    browser
        .click(&format!("a[href='/console/cards/{CARD}']"))
        .await;
    assert!(browser.text("h1").await.contains(CARD));
    assert!(browser.text("h1 .status").await.contains("Active"));

    // Lock it as stolen, with a note: a confirmation first.
    browser.click_text("Zablokuj").await;
    assert!(
        browser
            .url()
            .await
            .ends_with(&format!("/console/cards/{CARD}/lock"))
    );
    browser.select("#reason", "Stolen").await;
    browser.fill("#note", "Klient dzwonił o 10:42").await;
    browser.click_text("Potwierdź").await;
    assert!(browser.text(".message.done").await.contains("Zrobione"));
    assert!(browser.text("h1 .status").await.contains("Locked"));
    let text = browser.page_text().await;
    assert!(
        text.contains("Skradziona") && text.contains("Klient dzwonił o 10:42"),
        "{text}"
    );
    // In the history, by whom.
    let history = browser.text("ol.timeline li").await;
    assert!(
        history.contains("desk_lock") && history.contains(AGENT),
        "{history}"
    );
    assert!(history.contains("CardStatus: Active → Locked"), "{history}");
    browser
        .screenshot(&screenshot_path("console-card-pl.png"))
        .await;

    // Unlock.
    browser.click_text("Odblokuj").await;
    browser.click_text("Potwierdź").await;
    assert!(browser.text("h1 .status").await.contains("Active"));

    // Switch to English: the same page, in English.
    browser.click("header a[lang=en]").await;
    assert!(browser.text("h2").await.contains("Card"));
    assert!(browser.page_text().await.contains("Replace card"));
    browser
        .screenshot(&screenshot_path("console-card-en.png"))
        .await;

    // Replace it: a taken number is refused with the API's message, then a free one works.
    browser.click_text("Replace card").await;
    browser.fill("#new_card", NEW_CARD_TAKEN).await;
    browser.fill("#pin", "new-pin-hmac").await;
    browser.select("#reason", "Lost").await;
    browser.click_text("Confirm").await;
    assert!(
        browser
            .text(".message.error")
            .await
            .contains("The card is already registered")
    );
    browser.fill("#new_card", "99419283746391").await;
    browser.fill("#pin", "new-pin-hmac").await;
    browser.click_text("Confirm").await;
    assert!(
        browser
            .url()
            .await
            .contains("/console/cards/99419283746391")
    );
    assert!(browser.text("h1 .status").await.contains("Active"));
    assert_eq!(
        desk.card(CARD).await["Lock"]["ReplacedBy"],
        json!("99419283746391")
    );

    // Erase the customer's personal data, behind its own warning.
    browser
        .goto(&format!("{base}/console/customers/{customer}"))
        .await;
    browser.click_text("Erase personal data").await;
    assert!(browser.page_text().await.contains("cannot be undone"));
    browser.click_text("Confirm").await;
    assert!(browser.text(".message.done").await.contains("Done"));
    let body = desk.customer(&customer).await.json();
    assert_eq!(body["PhoneNumber"], serde_json::Value::Null);
    assert!(body["ErasedAt"].is_string());

    // The page fits 1366×768 and a tablet held upright without scrolling sideways.
    browser.goto(&format!("{base}/console/cards/{CARD}")).await;
    for (width, height) in [(1366, 768), (768, 1024)] {
        browser
            .client
            .set_window_size(width, height)
            .await
            .expect("resize");
        let overflow = browser
            .client
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .expect("measure");
        assert_eq!(overflow, json!(0), "sideways scrolling at {width}×{height}");
    }

    // A viewer sees the card and no action.
    browser.click("header button").await;
    browser.fill("#token", &desk.viewer).await;
    browser.click("main button[type=submit]").await;
    browser.goto(&format!("{base}/console/cards/{CARD}")).await;
    assert!(browser.text("h1").await.contains(CARD));
    assert_eq!(browser.count(".actions a").await, 0);
    assert!(browser.page_text().await.contains("viewing only"));
    browser.close().await;
}

const NEW_CARD_TAKEN: &str = "5555000011112222";

#[tokio::test]
async fn over_tls_the_desk_asks_no_client_certificate_and_the_cookies_are_secure() {
    let pki = pki();
    let dir = pki.dir.path().to_owned();
    // Mutual TLS for ALCS: the desk's listener serves the same certificate, without asking
    // desk users for one of theirs.
    let Some((_app, desk)) = TestApp::spawn_desk_with(move |c| {
        c.tls = Some(cps::tls::ServerFiles {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            client_ca: Some(dir.join("ca.pem")),
        });
    })
    .await
    else {
        return;
    };
    let addr: std::net::SocketAddr = desk.base.trim_start_matches("http://").parse().unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", addr.port());
    let api = client
        .get(format!("{base}/support/v1/cards/{CARD}"))
        .bearer_auth(&desk.viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404, "the desk API answers over TLS");
    let form = client.get(format!("{base}/console")).send().await.unwrap();
    let login_cookie = form.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(login_cookie.contains("Secure"), "{login_cookie}");
    let html = form.text().await.unwrap();
    let at = html.find(r#"name="login" value=""#).unwrap() + 20;
    let login = html[at..].split('"').next().unwrap().to_owned();
    let signed_in = client
        .post(format!("{base}/console/sign-in"))
        .header("cookie", login_cookie.split(';').next().unwrap())
        .form(&[("token", desk.agent.as_str()), ("login", login.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let session = signed_in.headers()["set-cookie"].to_str().unwrap();
    assert!(
        session.starts_with("cps_desk=") && session.contains("; Secure"),
        "{session}"
    );
}

/// The console's session is its own: a random id, not the desk token, so the cookie is no
/// bearer token for the desk API; every instance on the same database knows it.
#[tokio::test]
async fn the_console_session_is_not_the_token_and_every_instance_knows_it() {
    let Some((app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    app.registered(CARD).await;
    let session = sign_in(&desk, &desk.agent).await;
    let id = session.trim_start_matches("cps_desk=");
    assert_ne!(id, desk.agent, "the cookie holds the token");
    assert!(!id.contains(desk.agent.as_str()));
    let as_bearer = plain()
        .get(format!("{}/support/v1/cards/{CARD}", desk.base))
        .bearer_auth(id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        as_bearer.status(),
        401,
        "a console cookie is not an API key"
    );
    // A second instance on the same database, with the same users: the same session.
    let mut c = config(&app.database_url);
    c.cache = app
        .redis
        .as_ref()
        .map(|(url, prefix)| cache_at(url, prefix));
    c.desk = Some(cps::http::desk::DeskSettings::at(
        "127.0.0.1:0".parse().unwrap(),
        desk.tokens_file.clone(),
    ));
    let other = TestApp::start(c, None, None).await;
    let base = other.support.clone().unwrap();
    let r = plain()
        .get(format!("{base}/console/cards/{CARD}"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The sign-in page says how long a session lasts.
    let r = plain()
        .get(format!("{}/console", desk.base))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(
        html.contains(
            "ends after 30 minutes without activity, and always 12 hours after signing in"
        ),
        "{html}"
    );
}

/// A session unused for the idle timeout ends, and so does one in use at the absolute
/// timeout: the desk user signs in again.
#[tokio::test]
async fn console_sessions_end_when_idle_and_at_their_absolute_deadline() {
    let Some((_app, desk)) = TestApp::spawn_desk_with(|c| {
        let sessions = &mut c.desk.as_mut().unwrap().sessions;
        sessions.idle = std::time::Duration::from_secs(2);
        sessions.absolute = std::time::Duration::from_secs(4);
    })
    .await
    else {
        return;
    };
    let idle = sign_in(&desk, &desk.agent).await;
    assert_eq!(page(&desk, &idle, "/console").await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let (status, html) = page(&desk, &idle, "/console").await;
    assert_eq!(status, 401, "an idle session lives on");
    assert!(html.contains("Sesja wygasła"), "{html}");

    let busy = sign_in(&desk, &desk.agent).await;
    let started = std::time::Instant::now();
    // Used every second: never idle, yet over at four seconds.
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        let (status, _) = page(&desk, &busy, "/console").await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(6),
            "a session in use outlived its absolute deadline"
        );
    }
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(3500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_console_shows_a_customers_consents_and_their_history() {
    let Some((app, portal, desk)) = TestApp::spawn_portal_and_desk().await else {
        return;
    };
    let customer = app.registered_with_pin(CARD).await;
    let cookie = sign_in(&desk, &desk.viewer).await;
    let (status, html) = page(&desk, &cookie, &format!("/console/customers/{customer}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Brak udzielonych zgód."), "{html}");
    // The objection, given through the portal, shows with its event.
    let session = portal
        .with_password(CARD, "a long and private phrase")
        .await;
    portal
        .send(
            reqwest::Method::PUT,
            "/loyalty/v1/customers/current/objection",
            Some(&session),
            None,
        )
        .await
        .assert_no_content();
    let (_, html) = page(&desk, &cookie, &format!("/console/customers/{customer}")).await;
    assert!(html.contains("Sprzeciw wobec marketingu"), "{html}");
    assert!(
        html.contains("Historia zgód") && html.contains("Objected"),
        "{html}"
    );
    assert!(html.contains("customer:self"), "{html}");
}
