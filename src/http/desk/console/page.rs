//! The console's pages, as compile-time checked templates (maud): every value is escaped.

use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::text::{self, T};
use super::{CardAction, CustomerAction, Session, stylesheet};
use crate::domain::{CardNumber, Language, LockReason};
use crate::http::extract::field;
use crate::http::pages::layout::{self, Chrome, language_switch};
use crate::store::{DeskCard, DeskCustomer, DeskCustomerHead, HistoryEntry};

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Every page: header (who, language, sign-out), then `body`.
fn layout(
    lang: Language,
    session: Option<&Session>,
    title: &str,
    here: &str,
    body: Markup,
) -> Markup {
    let header = html! {
        a.title href="/console" { (T::Title.get(lang)) }
        @if let Some(session) = session {
            span.who { (T::SignedInAs.get(lang)) " " strong { (session.principal.user.as_str()) } " (" (session.principal.role.as_str()) ")" }
        }
        (language_switch(lang, "/console/language", here))
        @if let Some(session) = session {
            form method="post" action="/console/sign-out" {
                input type="hidden" name="csrf" value=(session.csrf);
                button type="submit" { (T::SignOut.get(lang)) }
            }
        }
    };
    let chrome = Chrome {
        lang,
        title,
        site: T::Title.get(lang),
        stylesheet: stylesheet(),
        skip: T::Skip.get(lang),
        header,
        footer: None,
    };
    layout::page(chrome, body)
}

fn message(kind: &str, text: &str) -> Markup {
    html! { p class={ "message " (kind) } role=(if kind == "error" { "alert" } else { "status" }) { (text) } }
}

pub fn sign_in(
    lang: Language,
    error: Option<&str>,
    login: &str,
    limits: crate::service::sessions::SessionLimits,
) -> Markup {
    layout(
        lang,
        None,
        T::SignIn.get(lang),
        "/console",
        html! {
            h1 { (T::SignIn.get(lang)) }
            @if let Some(error) = error { (message("error", error)) }
            form.stack method="post" action="/console/sign-in" {
                input type="hidden" name="login" value=(login);
                p { (T::SignInLead.get(lang)) }
                p.hint { (super::text::session_rule(lang, limits)) }
                div {
                    label for="token" { (T::Token.get(lang)) }
                    input id="token" name="token" type="password" autocomplete="off" required autofocus;
                }
                div { button type="submit" { (T::SignIn.get(lang)) } }
            }
        },
    )
}

/// A page that only says why something was refused.
pub fn refused(session: &Session, text: &str) -> Markup {
    let lang = session.lang;
    layout(
        lang,
        Some(session),
        T::Title.get(lang),
        "/console",
        html! {
            (message("error", text))
            p { a href="/console" { (T::Search.get(lang)) } }
        },
    )
}

fn search_form(lang: Language, q: &str) -> Markup {
    html! {
        form.search method="get" action="/console/search" role="search" {
            div {
                label for="q" { (T::SearchLabel.get(lang)) }
                input id="q" name="q" type="search" value=(q) required aria-describedby="q-hint";
                p.hint id="q-hint" { (T::SearchHint.get(lang)) }
            }
            button type="submit" { (T::Search.get(lang)) }
        }
    }
}

pub fn search(session: &Session, q: &str, found: Option<Result<Vec<DeskCard>, String>>) -> Markup {
    let lang = session.lang;
    layout(
        lang,
        Some(session),
        T::Search.get(lang),
        "/console",
        html! {
            h1 { (T::Search.get(lang)) }
            (search_form(lang, q))
            @match found {
                None => {}
                Some(Err(error)) => (message("error", &error)),
                Some(Ok(cards)) if cards.is_empty() => p { (T::NoResults.get(lang)) },
                Some(Ok(cards)) => {
                    h2 { (T::Results.get(lang)) }
                    table {
                        thead { tr { th scope="col" { (T::Card.get(lang)) } th scope="col" { (T::Status.get(lang)) } th scope="col" { (T::Customer.get(lang)) } th scope="col" { (T::Phone.get(lang)) } } }
                        tbody {
                            @for card in &cards {
                                tr {
                                    td { a href={ "/console/cards/" (card.number) } { (card.number) } }
                                    td { (status(card.status.as_str())) }
                                    td { a href={ "/console/customers/" (card.customer.id) } { (card.customer.id) } }
                                    td { (card.customer.phone.as_ref().map_or("—", |p| p.as_str())) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn status(s: &str) -> Markup {
    html! { span class={ "status " (s) } { (s) } }
}

fn lock_reason(lang: Language, reason: LockReason) -> &'static str {
    text::reason(lang, reason.as_str())
}

pub fn card(
    session: &Session,
    card: &DeskCard,
    history: &[HistoryEntry],
    page_size: i64,
    done: bool,
) -> Markup {
    let lang = session.lang;
    let here = format!("/console/cards/{}", card.number);
    let customer = &card.customer;
    layout(
        lang,
        Some(session),
        &format!("{} {}", T::Card.get(lang), card.number),
        &here,
        html! {
            h1 { (T::Card.get(lang)) " " (card.number) " " (status(card.status.as_str())) }
            @if done { (message("done", T::Done.get(lang))) }
            // First what the caller most likely wants done, then what the agent reads.
            @if session.can_act() {
                div.actions role="group" aria-label=(T::Actions.get(lang)) {
                    @for action in card_actions(card) {
                        a.button.secondary href={ (here) "/" (action.path()) } { (action.title().get(lang)) }
                    }
                }
            } @else {
                p.hint { (T::ViewerHint.get(lang)) }
            }
            div.grid {
                section.panel aria-labelledby="card-h" {
                    h2 id="card-h" { (T::Card.get(lang)) }
                    dl {
                        dt { (T::Status.get(lang)) } dd { (status(card.status.as_str())) }
                        @if let Some(lock) = &card.lock {
                            dt { (T::LockReason.get(lang)) } dd { (lock_reason(lang, lock.reason)) }
                            dt { (T::StatusBeforeLock.get(lang)) } dd { (lock.before.as_str()) }
                            @if let Some(note) = &card.lock_note { dt { (T::Note.get(lang)) } dd { (note) } }
                            @if let Some(by) = &lock.replaced_by {
                                dt { (T::ReplacedBy.get(lang)) } dd { a href={ "/console/cards/" (by) } { (by) } }
                            }
                        }
                        dt { (T::Version.get(lang)) } dd { (card.version) }
                    }
                }
                section.panel aria-labelledby="customer-h" {
                    h2 id="customer-h" { (T::Customer.get(lang)) }
                    (customer_fields(lang, customer))
                }
                section.panel aria-labelledby="notice-h" {
                    h2 id="notice-h" { (T::Notice.get(lang)) }
                    @match &card.notice {
                        None => p { (T::NoNotice.get(lang)) },
                        Some(n) => dl {
                            dt { (T::Status.get(lang)) } dd { (n.status) }
                            dt { (T::Attempts.get(lang)) } dd { (n.attempts) }
                            @if let Some(e) = &n.last_error { dt { (T::LastError.get(lang)) } dd { (e) } }
                        },
                    }
                }
            }
            h2 { (T::Wallets.get(lang)) }
            @if card.wallets.is_empty() {
                p { (T::NoWallets.get(lang)) }
            } @else {
                table {
                    thead { tr { th scope="col" { (T::Wallet.get(lang)) } th scope="col" { (T::Balance.get(lang)) } th scope="col" { (T::Stats.get(lang)) } th scope="col" { (T::Version.get(lang)) } } }
                    tbody {
                        @for w in &card.wallets {
                            tr {
                                td { (w.id.as_str()) }
                                td.num { (w.balance.to_string()) }
                                td {
                                    @if let Some(stat) = &w.stat {
                                        @for (name, amount) in stat.fields() { (name) ": " (amount.to_string()) " " }
                                    }
                                }
                                td { (w.version.as_deref().unwrap_or("—")) }
                            }
                        }
                    }
                }
            }
            h2 { (T::History.get(lang)) }
            (timeline(lang, history))
            @if history.len() as i64 == page_size && let Some(last) = history.last() {
                p { a href={ (here) "?cursor=" (last.id) } { (T::Older.get(lang)) } }
            }
        },
    )
}

/// The actions a card's state allows.
fn card_actions(card: &DeskCard) -> Vec<CardAction> {
    let mut actions = Vec::new();
    match &card.lock {
        None => actions.push(CardAction::Lock),
        Some(lock) if !lock.is_final() => actions.push(CardAction::Unlock),
        Some(_) => {}
    }
    if card.lock.as_ref().is_none_or(|l| !l.is_final()) {
        actions.push(CardAction::Replace);
    }
    if card
        .notice
        .as_ref()
        .is_some_and(|n| n.status == "dead" || n.status == "unsent")
    {
        actions.push(CardAction::Retry);
    }
    actions
}

fn customer_fields(lang: Language, customer: &DeskCustomerHead) -> Markup {
    html! {
        dl {
            dt { (T::CustomerId.get(lang)) } dd { a href={ "/console/customers/" (customer.id) } { (customer.id) } }
            dt { (T::Status.get(lang)) } dd { (customer.status.as_str()) }
            dt { (T::Phone.get(lang)) } dd { (customer.phone.as_ref().map_or(T::None.get(lang), |p| p.as_str())) }
            dt { (T::Gender.get(lang)) } dd { (customer.gender.as_str()) }
            dt { (T::Version.get(lang)) } dd { (customer.version) }
            @if let Some(at) = customer.erased_at { dt { (T::Erased.get(lang)) } dd { (time(at)) } }
        }
    }
}

fn timeline(lang: Language, history: &[HistoryEntry]) -> Markup {
    html! {
        ol.timeline {
            @for entry in history {
                li {
                    div.when { (time(entry.occurred_at)) }
                    div {
                        strong { (entry.operation) }
                        @if let Some(card) = &entry.card_number { " · " (card) }
                        " · " (T::By.get(lang)) ": "
                        @match &entry.actor { Some(name) => (name), None => "ALCS" }
                    }
                    @if let Some(details) = &entry.details { div.hint { (T::Changes.get(lang)) ": " (changes(details)) } }
                }
            }
        }
    }
}

/// An audit entry's changes as people read them: `CardStatus: Active → Locked, LockReason: Lost`.
fn changes(details: &str) -> String {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(details)
    else {
        return details.to_owned();
    };
    fields
        .iter()
        .map(|(name, value)| {
            let value = match value {
                serde_json::Value::Object(change) => match (change.get("From"), change.get("To")) {
                    (Some(from), Some(to)) => format!("{} → {}", plain(from), plain(to)),
                    _ => value.to_string(),
                },
                other => plain(other),
            };
            format!("{name}: {value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn customer(
    session: &Session,
    customer: &DeskCustomer,
    (consents, events): &(crate::domain::Consents, Vec<crate::store::ConsentEvent>),
    done: bool,
) -> Markup {
    let lang = session.lang;
    let head = &customer.customer;
    let here = format!("/console/customers/{}", head.id);
    layout(
        lang,
        Some(session),
        &format!("{} {}", T::Customer.get(lang), head.id),
        &here,
        html! {
            h1 { (T::Customer.get(lang)) " " (head.id) }
            @if done { (message("done", T::Done.get(lang))) }
            section.panel { (customer_fields(lang, head)) }
            h2 { (T::Cards.get(lang)) }
            table {
                thead { tr { th scope="col" { (T::Card.get(lang)) } th scope="col" { (T::Status.get(lang)) } th scope="col" { (T::LockReason.get(lang)) } } }
                tbody {
                    @for card in &customer.cards {
                        tr {
                            td { a href={ "/console/cards/" (card.number) } { (card.number) } }
                            td { (status(card.status.as_str())) }
                            td { (card.lock.as_ref().map_or("—", |l| lock_reason(lang, l.reason))) }
                        }
                    }
                }
            }
            h2 { (T::Consents.get(lang)) }
            @if consents.objected { p { strong { (T::MarketingObjection.get(lang)) } } }
            @if consents.given.is_empty() {
                p { (T::NoConsents.get(lang)) }
            } @else {
                table {
                    thead { tr { th scope="col" { (T::Purpose.get(lang)) } th scope="col" { (T::TextVersion.get(lang)) } } }
                    tbody {
                        @for (purpose, version) in &consents.given {
                            tr { td { (purpose.as_str()) } td { (version) } }
                        }
                    }
                }
            }
            @if !events.is_empty() {
                h3 { (T::ConsentHistory.get(lang)) }
                table {
                    thead { tr {
                        th scope="col" { (T::When.get(lang)) }
                        th scope="col" { (T::Purpose.get(lang)) }
                        th scope="col" { (T::Action.get(lang)) }
                        th scope="col" { (T::TextVersion.get(lang)) }
                        th scope="col" { (T::Channel.get(lang)) }
                        th scope="col" { (T::By.get(lang)) }
                    } }
                    tbody {
                        @for e in events {
                            tr {
                                td { (crate::http::wire::time(e.occurred_at)) }
                                td { (e.purpose.as_deref().unwrap_or("—")) }
                                td { (e.action) }
                                td { (e.text_version.as_deref().unwrap_or("—")) }
                                td { (e.channel) }
                                td { (e.actor) }
                            }
                        }
                    }
                }
            }
            @if session.can_act() && head.erased_at.is_none() {
                h2 { (T::Actions.get(lang)) }
                div.actions {
                    a.button.secondary href={ (here) "/phone" } { (T::ChangePhone.get(lang)) }
                    a.button.danger href={ (here) "/erase" } { (T::Erase.get(lang)) }
                }
            }
        },
    )
}

fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

fn reasons(lang: Language, chosen: Option<&str>) -> Markup {
    html! {
        div {
            label for="reason" { (T::Reason.get(lang)) }
            select id="reason" name="reason" required {
                @for reason in ["Lost", "Stolen", "Damaged", "Fraud", "CustomerRequest", "Other"] {
                    option value=(reason) selected[chosen == Some(reason)] { (text::reason(lang, reason)) }
                }
            }
        }
    }
}

/// The confirmation of a card action: what it does, its inputs (kept after a refusal), and
/// the refusal's message.
pub fn confirm_card(
    session: &Session,
    card: &CardNumber,
    action: CardAction,
    form: &[(String, String)],
    error: Option<&str>,
) -> Markup {
    let lang = session.lang;
    let value = |name: &str| field(form, name).unwrap_or_default().to_owned();
    let inputs = html! {
        @match action {
            CardAction::Lock => {
                (reasons(lang, field(form, "reason")))
                div {
                    label for="note" { (T::Note.get(lang)) }
                    textarea id="note" name="note" rows="3" maxlength="500" { (value("note")) }
                }
            }
            CardAction::Replace => {
                div {
                    label for="new_card" { (T::NewCardNumber.get(lang)) }
                    input id="new_card" name="new_card" inputmode="numeric" pattern="[0-9]{1,32}" required value=(value("new_card"));
                }
                div {
                    label for="pin" { (T::NewPin.get(lang)) }
                    input id="pin" name="pin" type="password" autocomplete="off" required;
                }
                (reasons(lang, field(form, "reason")))
            }
            CardAction::Unlock | CardAction::Retry => {}
        }
    };
    let page = Confirmation {
        here: &format!("/console/cards/{card}"),
        action: action.path(),
        title: action.title().get(lang),
        subject: card.as_str(),
        button: None,
    };
    confirmation(session, &page, error, html! {}, inputs)
}

pub fn confirm_customer(
    session: &Session,
    customer: &DeskCustomerHead,
    action: CustomerAction,
    error: Option<&str>,
) -> Markup {
    let lang = session.lang;
    let inputs = html! {
        @match action {
            CustomerAction::Phone => {
                input type="hidden" name="version" value=(customer.version);
                div {
                    label for="phone" { (T::Phone.get(lang)) }
                    input id="phone" name="phone" type="tel" autocomplete="off" required;
                }
            }
            CustomerAction::Erase => {
                (message("error", T::EraseWarning.get(lang)))
            }
        }
    };
    let page = Confirmation {
        here: &format!("/console/customers/{}", customer.id),
        action: action.path(),
        title: action.title().get(lang),
        subject: &customer.id.to_string(),
        button: Some(if action == CustomerAction::Erase {
            "danger"
        } else {
            ""
        }),
    };
    confirmation(
        session,
        &page,
        error,
        customer_fields(lang, customer),
        inputs,
    )
}

/// What a confirmation page confirms: the action at `{here}/{action}` on `subject`.
struct Confirmation<'a> {
    here: &'a str,
    action: &'a str,
    title: &'a str,
    subject: &'a str,
    /// The confirm button's class, when it has one.
    button: Option<&'a str>,
}

/// A confirmation page: what will be done to whom, the refusal if the last try was refused,
/// what the change is made against (`above`), the inputs it needs, and the buttons.
fn confirmation(
    session: &Session,
    page: &Confirmation<'_>,
    error: Option<&str>,
    above: Markup,
    inputs: Markup,
) -> Markup {
    let lang = session.lang;
    layout(
        lang,
        Some(session),
        page.title,
        &format!("{}/{}", page.here, page.action),
        html! {
            h1 { (page.title) ": " (page.subject) }
            @if let Some(error) = error { (message("error", error)) }
            (above)
            form.stack method="post" action={ (page.here) "/" (page.action) } {
                (csrf(session))
                (inputs)
                div.actions {
                    button type="submit" class=[page.button] { (T::Confirm.get(lang)) }
                    a.button.secondary href=(page.here) { (T::Cancel.get(lang)) }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_as_sentences_not_json() {
        let details = r#"{"CardStatus": {"From": "Active", "To": "Locked"}, "LockReason": "Lost", "NoteGiven": true}"#;
        assert_eq!(
            changes(details),
            "CardStatus: Active → Locked, LockReason: Lost, NoteGiven: true"
        );
        assert_eq!(changes("not json"), "not json");
    }
}
