//! Consents: one switch per purpose with the exact text and its version, the history of every
//! change, and the objection to all marketing. Withdrawing takes one click, as giving does
//! (GDPR art. 7(3)).

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::page::{self, Frame, layout, message, time};
use super::profile::{current, failed};
use super::session::{Member, done};
use super::words;
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

/// What a purpose is called on the page: its text's title, else its name.
fn title_of(texts: &ConsentTexts, purpose: &str, lang: Language) -> String {
    Purpose::parse(purpose)
        .and_then(|p| current_text(texts, &p, lang))
        .and_then(|t| t.title.clone())
        .unwrap_or_else(|| purpose.to_owned())
}

/// The form that gives the consent on `text`: the text's version, language and hash go with
/// it, so that what is recorded is what was shown.
fn give_form(frame: &Frame, text: &ConsentText, label: &str, described: &str) -> Markup {
    let id = text.purpose.as_str();
    html! {
        form method="post" action={ "/account/consents/" (id) } {
            (page::csrf(frame))
            input type="hidden" name="action" value="give";
            input type="hidden" name="version" value=(text.version);
            input type="hidden" name="lang" value=(text.language.code());
            input type="hidden" name="sha256" value=(text.sha256);
            button type="submit" aria-describedby=(described) { (label) }
        }
    }
}

fn purpose_section(
    frame: &Frame,
    texts: &ConsentTexts,
    purpose: &Purpose,
    (given, objected): (Option<&String>, bool),
    events: &[ConsentEvent],
) -> Markup {
    let w = frame.w();
    let current = current_text(texts, purpose, frame.lang);
    // The text it was given on, while given (`None` when that version is no longer
    // published); else the one it is asked with now.
    let shown = match given {
        Some(version) => texts.find(purpose, version, frame.lang),
        None => current,
    };
    let newer = current.filter(|c| given.is_some_and(|v| *v != c.version));
    let id = purpose.as_str();
    let described = format!("{id}-title {id}-state");
    let since = events
        .iter()
        .rev()
        .find(|e| e.purpose.as_deref() == Some(id) && e.action == "Given")
        .map(|e| time(e.occurred_at));
    html! {
        section.consent id=(id) aria-labelledby={ (id) "-title" } {
            h2 id={ (id) "-title" } { (title_of(texts, id, frame.lang)) }
            @if let Some(text) = shown {
                div.text lang=(html_lang(text.language)) { p { (text.text) } }
                p.hint { (w.t("Wersja treści: ", "Text version: ")) (text.version) }
            } @else if let Some(version) = given {
                p.hint { (w.t("Treść wersji ", "The text of version ")) (version) (w.t(" nie jest już publikowana.", " is no longer published.")) }
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
            @match (given, current) {
                (Some(_), _) => {
                    form method="post" action={ "/account/consents/" (id) } {
                        (page::csrf(frame))
                        input type="hidden" name="action" value="withdraw";
                        button.secondary type="submit" aria-describedby=(described) {
                            (w.t("Wycofaj zgodę", "Withdraw consent"))
                        }
                    }
                }
                (None, Some(text)) => (give_form(frame, text, w.t("Wyrażam zgodę", "Give consent"), &described)),
                (None, None) => {}
            }
            @if let Some(text) = newer {
                h3 { (w.t("Nowa treść", "A new text")) }
                div.text lang=(html_lang(text.language)) { p { (text.text) } }
                p.hint { (w.t("Wersja treści: ", "Text version: ")) (text.version) }
                (give_form(frame, text, w.t("Wyrażam zgodę na nową treść", "Give consent to the new text"), &described))
            }
        }
    }
}

fn history(frame: &Frame, texts: &ConsentTexts, events: &[ConsentEvent]) -> Markup {
    let w = frame.w();
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
                                td { (e.purpose.as_deref().map_or_else(|| "—".to_owned(), |p| title_of(texts, p, frame.lang))) }
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
    let view = match current(&state, &member).await {
        Ok(view) => view,
        Err(page) => return page,
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
        @if let Some(note) = done(w, &query) {
            @let kind = if field(&query, "done") == Some("changed") { "note" } else { "done" };
            (message(kind, note))
        }
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
        (history(&frame, texts, &events))
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
            let shown_in = field(&form, "lang").and_then(Language::recognize);
            let sha256 = field(&form, "sha256").unwrap_or_default();
            // Exactly the text the page showed: its version, its language, its words.
            match shown_in.and_then(|lang| texts.find(&purpose, version, lang)) {
                Some(text) if Some(text.language) == shown_in && text.sha256 == sha256 => {
                    (ConsentCommand::Give(text.clone()), text.language, "given")
                }
                // Another text, one no longer published, or a form from before texts carried
                // their language and hash: the page as it stands, to decide again.
                _ => return redirect("/account/consents?done=changed", &[]),
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
