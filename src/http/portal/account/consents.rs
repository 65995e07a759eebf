//! Consents: one switch per purpose with the exact text and its version, the history of every
//! change, and the objection to all marketing. Withdrawing takes one click, as giving does
//! (GDPR art. 7(3)).

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::page::{self, Frame, layout, message, time};
use super::profile::failed;
use super::session::{Member, done};
use super::words::{self, W};
use crate::domain::{Channel, ConsentCommand, ConsentText, ConsentTexts, Language, Purpose};
use crate::http::RequestId;
use crate::http::error::ApiError;
use crate::http::extract::field;
use crate::http::pages::layout::html_lang;
use crate::http::pages::{FormBody, html, redirect};
use crate::http::portal::PortalState;
use crate::http::portal::api::{change_failure, read_failure};
use crate::service::portal::Via;
use crate::store::ConsentEvent;

/// The text a purpose is asked with now: its latest version, in `lang` where written in it.
fn current_text<'a>(
    texts: &'a ConsentTexts,
    purpose: &Purpose,
    lang: Language,
) -> Option<&'a ConsentText> {
    let latest = texts.all().iter().rev().find(|t| t.purpose == *purpose)?;
    texts.find(purpose, &latest.version, lang)
}

fn purpose_section(
    frame: &Frame,
    texts: &ConsentTexts,
    purpose: &Purpose,
    (given, objected): (Option<&String>, bool),
    events: &[ConsentEvent],
) -> Markup {
    let w = frame.w();
    let text = current_text(texts, purpose, frame.lang);
    let id = purpose.as_str();
    let since = events
        .iter()
        .rev()
        .find(|e| e.purpose.as_deref() == Some(id) && e.action == "Given")
        .map(|e| time(e.occurred_at));
    html! {
        section.consent id=(id) aria-labelledby={ (id) "-title" } {
            h2 id={ (id) "-title" } { (id) }
            @if let Some(text) = text {
                div.text lang=(html_lang(text.language)) { p { (text.text) } }
                p.hint { (w.t("Wersja treści: ", "Text version: ")) (text.version) }
            }
            p.state id={ (id) "-state" } {
                @match given {
                    Some(version) => {
                        span.status.Active { (w.t("Zgoda wyrażona", "Consent given")) }
                        " " (w.t("(wersja ", "(version ")) (version)
                        @if let Some(since) = &since { ", " (since) }
                        ")"
                        @if objected { " " (w.t("— nie jest wykorzystywana, bo sprzeciwiasz się marketingowi.", "— not used while you object to marketing.")) }
                    }
                    None => span.status { (w.t("Brak zgody", "Not given")) },
                }
            }
            form method="post" action={ "/account/consents/" (id) } {
                (page::csrf(frame))
                @match (given, text) {
                    (Some(_), _) => {
                        input type="hidden" name="action" value="withdraw";
                        button.secondary type="submit" aria-describedby={ (id) "-state" } {
                            (w.t("Wycofaj zgodę", "Withdraw consent"))
                        }
                    }
                    (None, Some(text)) => {
                        input type="hidden" name="action" value="give";
                        input type="hidden" name="version" value=(text.version);
                        button type="submit" aria-describedby={ (id) "-state" } {
                            (w.t("Wyrażam zgodę", "Give consent"))
                        }
                    }
                    (None, None) => {}
                }
            }
        }
    }
}

fn history(w: W, events: &[ConsentEvent]) -> Markup {
    html! {
        h2 id="history-title" { (w.t("Historia zmian", "History of changes")) }
        @if events.is_empty() {
            p { (w.t("Nie było jeszcze żadnych zmian.", "There have been no changes yet.")) }
        } @else {
            div.scroll role="region" aria-labelledby="history-title" tabindex="0" {
                table {
                    thead { tr {
                        th scope="col" { (w.t("Kiedy", "When")) }
                        th scope="col" { (w.t("Cel", "Purpose")) }
                        th scope="col" { (w.t("Co", "What")) }
                        th scope="col" { (w.t("Wersja", "Version")) }
                        th scope="col" { (w.t("Gdzie", "Where")) }
                    } }
                    tbody {
                        @for e in events.iter().rev() {
                            tr {
                                td { (time(e.occurred_at)) }
                                td { (e.purpose.as_deref().unwrap_or("—")) }
                                td { (words::consent_action(w, &e.action)) }
                                td { (e.text_version.as_deref().unwrap_or("—")) }
                                td { (words::channel(w, &e.channel)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub async fn page(
    State(state): State<PortalState>,
    member: Member,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let frame = member.frame();
    let w = member.w();
    let view = match state.portal.account(&member.session).await {
        Ok(Some(view)) => view,
        Ok(None) => return redirect("/account/sign-in?done=ended", &[]),
        Err(e) => return failed(&frame, &read_failure(&e)),
    };
    let events = match state.portal.consent_history(&member.session.customer).await {
        Ok(events) => events,
        Err(e) => return failed(&frame, &read_failure(&e)),
    };
    let texts = state.portal.texts();
    let consents = &view.account.consents;
    let mut purposes: Vec<Purpose> = texts.purposes().into_iter().cloned().collect();
    for given in consents.given.keys() {
        if !purposes.contains(given) {
            purposes.push(given.clone());
        }
    }
    let body = html! {
        h1 { (w.t("Zgody", "Consents")) }
        @if let Some(note) = done(w, &query) { (message("done", note)) }
        p { (w.t(
            "Nic nie jest zaznaczone za Ciebie. Każdą zgodę wycofasz w dowolnej chwili jednym przyciskiem, tak samo łatwo, jak ją wyrażasz.",
            "Nothing is given for you. You can withdraw any consent at any time with one button, as easily as you give it.",
        )) }
        @if purposes.is_empty() {
            p { (w.t("Program nie prosi obecnie o żadne zgody.", "The programme asks for no consents at present.")) }
        }
        @for purpose in &purposes {
            (purpose_section(&frame, texts, purpose, (consents.given.get(purpose), consents.objected), &events))
        }
        section.consent id="objection" aria-labelledby="objection-title" {
            h2 id="objection-title" { (w.t("Sprzeciw wobec marketingu", "Objection to marketing")) }
            p { (w.t(
                "Możesz sprzeciwić się wszelkiemu marketingowi, także profilowaniu w tym celu (art. 21 RODO). Sprzeciw jest silniejszy niż zgody: póki trwa, żadna z nich nie jest wykorzystywana.",
                "You can object to all marketing, profiling for it included (GDPR art. 21). The objection overrides consents: while it stands, none of them is used.",
            )) }
            p.state id="objection-state" {
                @if consents.objected {
                    span.status.Active { (w.t("Sprzeciw zgłoszony", "Objecting")) }
                    @if let Some(at) = view.account.objected_at { " (" (time(at)) ")" }
                } @else {
                    span.status { (w.t("Brak sprzeciwu", "Not objecting")) }
                }
            }
            form method="post" action="/account/objection" {
                (page::csrf(&frame))
                @if consents.objected {
                    input type="hidden" name="action" value="withdraw";
                    button.secondary type="submit" aria-describedby="objection-state" { (w.t("Wycofaj sprzeciw", "Withdraw the objection")) }
                } @else {
                    input type="hidden" name="action" value="object";
                    button type="submit" aria-describedby="objection-state" { (w.t("Sprzeciwiam się marketingowi", "I object to marketing")) }
                }
            }
        }
        (history(w, &events))
    };
    html(
        StatusCode::OK,
        layout(&frame, w.t("Zgody", "Consents"), body),
    )
}

/// How a change made on the pages comes, for its proof.
fn via(request: &RequestId, language: Language) -> Via {
    Via {
        channel: Channel::Web,
        request_id: Some(request.0.clone()),
        language,
    }
}

pub async fn change(
    State(state): State<PortalState>,
    member: Member,
    Extension(request): Extension<RequestId>,
    Path(raw): Path<String>,
    FormBody(form): FormBody,
) -> Response {
    if let Some(page) = member.check(&form) {
        return page;
    }
    let frame = member.frame();
    let texts = state.portal.texts();
    let Some(purpose) = Purpose::parse(&raw) else {
        return failed(&frame, &ApiError::NotFound);
    };
    let (command, shown_in, done) = match field(&form, "action") {
        Some("give") => {
            let version = field(&form, "version").unwrap_or_default();
            // The text of that version in the page's language: the one the customer was shown.
            match texts.find(&purpose, version, member.lang()) {
                Some(text) => {
                    let shown_in = text.language;
                    (ConsentCommand::Give(text.clone()), shown_in, "given")
                }
                None => return failed(&frame, &ApiError::NotFound),
            }
        }
        Some("withdraw") => (
            ConsentCommand::Withdraw(purpose.clone()),
            member.lang(),
            "withdrawn",
        ),
        _ => return failed(&frame, &ApiError::NotFound),
    };
    match state
        .portal
        .change_consent(&member.session, command, via(&request, shown_in))
        .await
    {
        // To the top of the page, where the message says what was done.
        Ok(_) => redirect(&format!("/account/consents?done={done}"), &[]),
        Err(e) => failed(&frame, &change_failure(e)),
    }
}

pub async fn objection(
    State(state): State<PortalState>,
    member: Member,
    Extension(request): Extension<RequestId>,
    FormBody(form): FormBody,
) -> Response {
    if let Some(page) = member.check(&form) {
        return page;
    }
    let frame = member.frame();
    let (command, done) = match field(&form, "action") {
        Some("object") => (ConsentCommand::Object, "objected"),
        Some("withdraw") => (ConsentCommand::WithdrawObjection, "objection-withdrawn"),
        _ => return failed(&frame, &ApiError::NotFound),
    };
    match state
        .portal
        .change_consent(&member.session, command, via(&request, member.lang()))
        .await
    {
        Ok(_) => redirect(&format!("/account/consents?done={done}"), &[]),
        Err(e) => failed(&frame, &change_failure(e)),
    }
}
