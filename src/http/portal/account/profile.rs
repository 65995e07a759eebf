//! The customer's own places: the overview (the card, its wallets), the profile with
//! field-level errors, the phone number changed with an SMS code, the lost card, and the
//! sessions.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Map, Value};

use super::page::{
    self, Frame, Input, Secret, layout, message, refused_secret, summary, time, title_for,
};
use super::session::{Member, done, forget_session, gone, stepped_up, with_error};
use super::words::{self, W};
use crate::domain::{CardStatus, ExpectedVersion, Language, ProfileField};
use crate::http::error::ApiError;
use crate::http::extract::field;
use crate::http::pages::{FormBody, html, redirect};
use crate::http::portal::PortalState;
use crate::http::portal::api::{change_failure, code_failure, read_failure};
use crate::http::portal::body;
use crate::http::portal::client::ClientAddr;
use crate::http::wire::{self, FormFields};
use crate::service::portal::AccountView;

/// The account as it stands, or the page that says why not (a customer erased meanwhile is
/// signed out).
pub(super) async fn current(state: &PortalState, member: &Member) -> Result<AccountView, Response> {
    match state.portal.account(&member.session).await {
        Ok(Some(view)) => Ok(view),
        Ok(None) => Err(gone(state, member).await),
        Err(e) => Err(failed(&member.frame(), &read_failure(&e))),
    }
}

/// A refusal or a failure on a page of its own.
pub fn failed(frame: &Frame, error: &ApiError) -> Response {
    with_error(
        html(
            StatusCode::OK,
            page::refused(frame, &error.message(frame.lang)),
        ),
        error,
    )
}

fn stat_label(w: W, name: &str) -> &'static str {
    match name {
        "Lost" => w.t("Utracone", "Lost"),
        "TransferredOut" => w.t("Przekazane", "Transferred out"),
        "TransferredIn" => w.t("Otrzymane", "Transferred in"),
        "Issued" => w.t("Wydane", "Issued"),
        _ => w.t("Inne", "Other"),
    }
}

pub async fn overview(
    State(state): State<PortalState>,
    member: Member,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let view = match current(&state, &member).await {
        Ok(view) => view,
        Err(page) => return page,
    };
    let frame = member.frame();
    let w = member.w();
    let name = view.account.profile.get(ProfileField::FirstName);
    let card = &view.card;
    let body = html! {
        h1 {
            @if let Some(name) = name { (w.t("Dzień dobry, ", "Hello, ")) (name) } @else { (w.t("Twoje konto", "Your account")) }
        }
        @if let Some(note) = done(w, &query) { (message("done", note)) }
        @if !view.missing.is_empty() {
            div.message.note role="status" {
                p { (w.t("Uzupełnij swój profil: brakuje ", "Please complete your profile: missing ")) (missing_list(w, &view.missing)) "." }
                p { a href="/account/profile" { (w.t("Uzupełnij profil", "Complete your profile")) } }
            }
        }
        section.card aria-labelledby="card-title" {
            h2 id="card-title" { (w.t("Karta", "Card")) }
            dl {
                dt { (w.t("Numer", "Number")) } dd.num { (card.card_number.as_str()) }
                dt { (w.t("Stan", "Status")) } dd { span class={ "status " (card.status.as_str()) } { (words::status(w, card.status.as_str())) } }
            }
        }
        section aria-labelledby="wallets-title" {
            h2 id="wallets-title" { (w.t("Portfele", "Wallets")) }
            @if card.wallets.is_empty() {
                p { (w.t("Karta nie ma jeszcze portfeli.", "The card has no wallets yet.")) }
            }
            ul.wallets {
                @for wallet in &card.wallets {
                    li {
                        h3 { (wallet.id.as_str()) }
                        p.balance { span.label { (w.t("Saldo", "Balance")) } " " strong { (wallet.balance.to_string()) } }
                        @if let Some(stat) = &wallet.stat {
                            dl {
                                @for (name, value) in stat.fields() {
                                    dt { (stat_label(w, name)) } dd.num { (value.to_string()) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html(
        StatusCode::OK,
        layout(&frame, w.t("Przegląd", "Overview"), body),
    )
}

fn missing_list(w: W, missing: &[ProfileField]) -> String {
    missing
        .iter()
        .map(|f| words::field_label(w, *f).to_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The profile's form: `values` as shown (the stored ones, or what was just sent), `errors`
/// by property.
fn profile_form(
    frame: &Frame,
    view: &AccountView,
    values: &dyn Fn(ProfileField) -> String,
    errors: &[(String, &'static str)],
    (required, note): (&[ProfileField], Option<&str>),
) -> Markup {
    let w = frame.w();
    let error_of = |f: ProfileField| {
        errors
            .iter()
            .find(|(p, _)| p == f.name())
            .map(|(_, e)| words::field_error(w, e))
    };
    let mandatory = |f: ProfileField| required.contains(&f);
    html! {
        h1 { (w.t("Profil", "Profile")) }
        @if let Some(note) = note { (message("done", note)) }
        @if !errors.is_empty() {
            div.message.error role="alert" aria-labelledby="errors-title" {
                h2 id="errors-title" { (w.t("Popraw zaznaczone pola", "Please correct the marked fields")) }
                ul {
                    @for (property, error) in errors {
                        @if let Some(f) = ProfileField::parse_name(property) {
                            li { a href={ "#" (f.name()) } { (words::field_label(w, f)) ": " (words::field_error(w, error)) } }
                        }
                    }
                }
            }
        }
        p { (w.t("Pola oznaczone gwiazdką (*) są wymagane.", "Fields marked with an asterisk (*) are required.")) }
        form.stack method="post" action="/account/profile" novalidate {
            (page::csrf(frame))
            input type="hidden" name="version" value=(view.account.version);
            @for f in ProfileField::ALL {
                @let label = if mandatory(f) { format!("{} *", words::field_label(w, f)) } else { words::field_label(w, f).to_owned() };
                @if f == ProfileField::PreferredLanguage {
                    @let chosen = values(f);
                    div.field.invalid[error_of(f).is_some()] {
                        label for=(f.name()) { (label) }
                        @if let Some(error) = error_of(f) { p.error id={ (f.name()) "-error" } { (error) } }
                        select id=(f.name()) name=(f.name()) autocomplete="language"
                            aria-describedby=[error_of(f).map(|_| format!("{}-error", f.name()))] {
                            option value="" selected[chosen.is_empty()] { (w.t("nie wybrano", "not chosen")) }
                            @for lang in [Language::Polish, Language::English] {
                                @let code = lang.code();
                                option value=(code) selected[Language::recognize(&chosen) == Some(lang)] lang=(&code[..2]) {
                                    (match lang { Language::Polish => "polski", Language::English => "English" })
                                }
                            }
                        }
                    }
                } @else {
                    (profile_input(w, f, &label, &values(f), (error_of(f), mandatory(f))))
                }
            }
            div { button type="submit" { (w.t("Zapisz", "Save")) } }
        }
        h2 { (w.t("Numer telefonu", "Phone number")) }
        p {
            @if let Some(phone) = &view.account.phone { (phone.as_str()) } @else { (w.t("brak", "none")) }
            " "
            a href="/account/phone" { (w.t("Zmień numer telefonu", "Change the phone number")) }
        }
        p { a href="/account/password" { (w.t("Zmień hasło", "Change your password")) } }
    }
}

/// One property's input: its type, autocomplete token, hint and error.
fn profile_input(
    w: W,
    f: ProfileField,
    label: &str,
    value: &str,
    (error, required): (Option<&str>, bool),
) -> Markup {
    let kind = match f {
        ProfileField::Email => "email",
        // Text, not `date`: Chromium's date input is three Tab stops without a label each.
        _ => "text",
    };
    let mut input = Input::new(f.name(), label, kind)
        .value(value)
        .hint(words::field_hint(w, f))
        .error(error);
    if let Some(token) = words::field_autocomplete(f) {
        input = input.autocomplete(token);
    }
    if required {
        input = input.required();
    }
    input.render()
}

pub async fn profile_page(
    State(state): State<PortalState>,
    member: Member,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let view = match current(&state, &member).await {
        Ok(view) => view,
        Err(page) => return page,
    };
    let frame = member.frame();
    let w = member.w();
    let stored = |f: ProfileField| view.account.profile.get(f).unwrap_or_default().to_owned();
    let body = profile_form(
        &frame,
        &view,
        &stored,
        &[],
        (&state.mandatory.0, done(w, &query)),
    );
    html(
        StatusCode::OK,
        layout(&frame, w.t("Profil", "Profile"), body),
    )
}

pub async fn change_profile(
    State(state): State<PortalState>,
    member: Member,
    FormBody(form): FormBody,
) -> Response {
    if let Some(page) = member.check(&form) {
        return page;
    }
    let view = match current(&state, &member).await {
        Ok(view) => view,
        Err(page) => return page,
    };
    let frame = member.frame();
    let w = member.w();
    // The form as the API's partial update: every property the form carries, blank as null.
    let mut patch = Map::new();
    for f in ProfileField::ALL {
        if let Some(value) = field(&form, f.name()) {
            let value = value.trim();
            patch.insert(
                f.name().to_owned(),
                if value.is_empty() {
                    Value::Null
                } else {
                    Value::String(value.to_owned())
                },
            );
        }
    }
    let expected = field(&form, "version")
        .and_then(|v| v.parse::<i64>().ok())
        .map_or(ExpectedVersion::OneOf(Vec::new()), |v| {
            ExpectedVersion::OneOf(vec![v])
        });
    let result = match body::profile_change(&Value::Object(patch), &state.mandatory.0) {
        Ok(change) => state
            .portal
            .change_profile(&member.session, expected, change)
            .await
            .map_err(change_failure),
        Err(e) => Err(e),
    };
    let sent = |f: ProfileField| field(&form, f.name()).unwrap_or_default().trim().to_owned();
    match result {
        Ok(_) => redirect("/account/profile?done=profile", &[]),
        Err(ApiError::InvalidProperties(violations)) => {
            let errors: Vec<(String, &'static str)> = violations
                .into_iter()
                .map(|v| (v.property, v.error))
                .collect();
            // The version the customer's values were based on, not the one read now: a change
            // made meanwhile must still be refused, not overwritten on the next try.
            let mut shown = view.clone();
            if let Some(version) = field(&form, "version").and_then(|v| v.parse::<i64>().ok()) {
                shown.account.version = version;
            }
            let body = profile_form(&frame, &shown, &sent, &errors, (&state.mandatory.0, None));
            html(
                StatusCode::UNPROCESSABLE_ENTITY,
                layout(&frame, &title_for(w, w.t("Profil", "Profile"), true), body),
            )
        }
        Err(ApiError::CustomerModified) => {
            // Changed meanwhile (another tab, the desk): the data as it now stands.
            let fresh = match current(&state, &member).await {
                Ok(view) => view,
                Err(page) => return page,
            };
            let stored =
                |f: ProfileField| fresh.account.profile.get(f).unwrap_or_default().to_owned();
            let body = html! {
                (message("error", &ApiError::CustomerModified.message(member.lang())))
                (profile_form(&frame, &fresh, &stored, &[], (&state.mandatory.0, None)))
            };
            html(
                StatusCode::CONFLICT,
                layout(&frame, &title_for(w, w.t("Profil", "Profile"), true), body),
            )
        }
        Err(error) => failed(&frame, &error),
    }
}

/// The phone change's form; `stepped_up`: the password is not asked again.
fn phone_form(
    frame: &Frame,
    stepped_up: bool,
    value: &str,
    errors: (Option<&str>, Option<&str>),
) -> Markup {
    let w = frame.w();
    layout(
        frame,
        &title_for(
            w,
            w.t("Zmiana numeru telefonu", "Change the phone number"),
            errors.0.is_some() || errors.1.is_some(),
        ),
        html! {
            h1 { (w.t("Zmień numer telefonu", "Change the phone number")) }
            p { (w.t(
                "Wyślemy kod SMS na nowy numer. Numer zmieni się, gdy wpiszesz ten kod.",
                "We send an SMS code to the new number. The number changes once you enter that code.",
            )) }
            (summary(w, &[("phone", errors.0), ("password", errors.1)]))
            form.stack method="post" action="/account/phone" novalidate {
                (page::csrf(frame))
                (Input::new("phone", w.t("Nowy numer telefonu", "New phone number"), "tel")
                    .value(value).autocomplete("tel").required().error(errors.0)
                    .hint(Some(w.t("Na przykład: 602 123 456 albo +48 602 123 456", "For example: 602 123 456 or +48 602 123 456")))
                    .render())
                (page::step_up_field(frame, stepped_up, "/account/phone", errors.1))
                div { button type="submit" { (w.t("Wyślij kod", "Send the code")) } }
            }
        },
    )
}

pub async fn phone_page(member: Member) -> Response {
    let frame = member.frame();
    html(
        StatusCode::OK,
        phone_form(&frame, member.session.stepped_up(), "", (None, None)),
    )
}

fn phone_code_form(frame: &Frame, error: Option<&str>) -> Markup {
    let w = frame.w();
    layout(
        frame,
        &title_for(
            w,
            w.t("Kod z SMS-a", "The code from the text message"),
            error.is_some(),
        ),
        html! {
            h1 { (w.t("Wpisz kod z SMS-a", "Enter the code from the text message")) }
            (message("note", w.t("Wysłaliśmy kod na nowy numer. Jest ważny 10 minut.", "We sent a code to the new number. It is valid for 10 minutes.")))
            (summary(w, &[("code", error)]))
            form.stack method="post" action="/account/phone/code" novalidate {
                (page::csrf(frame))
                (Input::new("code", w.t("Kod z SMS-a", "Code from the text message"), "text")
                    .autocomplete("one-time-code").numeric().required().error(error)
                    .hint(Some(w.t("Sześć cyfr.", "Six digits."))).render())
                div { button type="submit" { (w.t("Zmień numer", "Change the number")) } }
            }
            p { a href="/account/phone" { (w.t("Wyślij kod jeszcze raz albo na inny numer", "Send the code again, or to another number")) } }
        },
    )
}

pub async fn request_phone(
    State(state): State<PortalState>,
    member: Member,
    Extension(addr): Extension<ClientAddr>,
    FormBody(form): FormBody,
) -> Response {
    if let Some(page) = member.check(&form) {
        return page;
    }
    let frame = member.frame();
    let typed = field(&form, "phone").unwrap_or_default().to_owned();
    let phone = match wire::phone(
        &FormFields::new(&form, &[("PhoneNumber", "phone")]),
        state.default_country,
    ) {
        Ok(phone) => phone,
        Err(error) => {
            let text = error.message(member.lang());
            let page = html(
                StatusCode::OK,
                phone_form(
                    &frame,
                    member.session.stepped_up(),
                    &typed,
                    (Some(&text), None),
                ),
            );
            return with_error(page, &error);
        }
    };
    if let Err(error) = stepped_up(&state, &member, addr, &form).await {
        let text = refused_secret(member.w(), &error, Secret::Password);
        let page = html(
            StatusCode::OK,
            phone_form(
                &frame,
                member.session.stepped_up(),
                &typed,
                (None, Some(&text)),
            ),
        );
        return with_error(page, &error);
    }
    match state
        .portal
        .request_phone_change(&member.session, phone, member.lang())
        .await
    {
        Ok(()) => html(StatusCode::OK, phone_code_form(&frame, None)),
        Err(e) => {
            let error = code_failure(e);
            let text = error.message(member.lang());
            // Raised by now: the password is not asked again.
            with_error(
                html(
                    StatusCode::OK,
                    phone_form(&frame, true, &typed, (Some(&text), None)),
                ),
                &error,
            )
        }
    }
}

pub async fn confirm_phone(
    State(state): State<PortalState>,
    member: Member,
    FormBody(form): FormBody,
) -> Response {
    if let Some(page) = member.check(&form) {
        return page;
    }
    let frame = member.frame();
    let code = field(&form, "code").unwrap_or_default().trim();
    match state.portal.confirm_phone(&member.session, code).await {
        Ok(true) => redirect("/account/profile?done=phone", &[]),
        Ok(false) => {
            let w = member.w();
            let text = w.t(
                "To nie jest wysłany kod albo kod wygasł.",
                "That is not the code we sent, or it has expired.",
            );
            html(
                StatusCode::UNPROCESSABLE_ENTITY,
                phone_code_form(&frame, Some(text)),
            )
        }
        Err(e) => {
            let error = change_failure(e);
            let text = error.message(member.lang());
            with_error(
                html(StatusCode::OK, phone_code_form(&frame, Some(&text))),
                &error,
            )
        }
    }
}

pub async fn card_page(State(state): State<PortalState>, member: Member) -> Response {
    let view = match current(&state, &member).await {
        Ok(view) => view,
        Err(page) => return page,
    };
    let frame = member.frame();
    let w = member.w();
    let card = &view.card;
    let body = html! {
        h1 { (w.t("Karta", "Card")) }
        dl {
            dt { (w.t("Numer", "Number")) } dd.num { (card.card_number.as_str()) }
            dt { (w.t("Stan", "Status")) } dd { span class={ "status " (card.status.as_str()) } { (words::status(w, card.status.as_str())) } }
        }
        h2 { (w.t("Zgubiona albo skradziona karta", "A lost or stolen card")) }
        @if card.status == CardStatus::Locked {
            p { (w.t("Karta jest zablokowana.", "The card is blocked.")) }
        } @else {
            p { (w.t(
                "Zablokuj kartę od razu: nikt nie zapłaci nią punktami ani nie zaloguje się nią. Blokada kończy wszystkie Twoje sesje, także tę.",
                "Block the card at once: nobody can pay with its points or sign in with it. Blocking ends all your sessions, this one too.",
            )) }
            form method="post" action="/account/card" {
                (page::csrf(&frame))
                button.danger type="submit" { (w.t("Zablokuj kartę", "Block the card")) }
            }
        }
        h2 { (w.t("Nowa karta", "A new card")) }
        p { (w.t(
            "Nową kartę wyda każda kasa albo biuro obsługi klienta: przeniosą na nią punkty z zablokowanej karty.",
            "Any till or the customer service desk issues a new card and moves the blocked card's points to it.",
        )) }
    };
    html(StatusCode::OK, layout(&frame, w.t("Karta", "Card"), body))
}

pub async fn lock_card(
    State(state): State<PortalState>,
    member: Member,
    FormBody(form): FormBody,
) -> Response {
    if let Some(page) = member.check(&form) {
        return page;
    }
    let frame = member.frame();
    if let Err(e) = state.portal.lock_card(&member.session).await {
        return failed(&frame, &change_failure(e));
    }
    // Every session ended with the lock: this page is the last one signed in.
    let w = member.w();
    let frame = Frame {
        csrf: None,
        member: false,
        ..frame
    };
    let body = html! {
        h1 { (w.t("Karta zablokowana", "Card blocked")) }
        (message("done", w.t(
            "Karta jest zablokowana, a wszystkie Twoje sesje zakończone.",
            "The card is blocked and all your sessions are ended.",
        )))
        p { (w.t(
            "Nową kartę wyda każda kasa albo biuro obsługi klienta: przeniosą na nią punkty z zablokowanej karty.",
            "Any till or the customer service desk issues a new card and moves the blocked card's points to it.",
        )) }
    };
    let mut response = html(
        StatusCode::OK,
        layout(&frame, w.t("Karta zablokowana", "Card blocked"), body),
    );
    forget_session(&mut response);
    response
}

pub async fn sessions_page(
    State(state): State<PortalState>,
    member: Member,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let frame = member.frame();
    let w = member.w();
    let sessions = match state.portal.sessions_of(&member.session.customer).await {
        Ok(sessions) => sessions,
        Err(e) => return failed(&frame, &read_failure(&e)),
    };
    let body = html! {
        h1 { (w.t("Sesje", "Sessions")) }
        @if let Some(note) = done(w, &query) { (message("done", note)) }
        p { (w.t(
            "Miejsca, w których jesteś zalogowany. Jeśli którejś nie rozpoznajesz, zakończ ją i zmień hasło.",
            "Where you are signed in. If you do not recognise one, end it and change your password.",
        )) }
        ul.sessions {
            @for s in &sessions {
                @let current = s.public_id == member.session.public_id;
                li {
                    p {
                        strong { @if current { (w.t("Ta sesja", "This session")) } @else { (w.t("Inna sesja", "Another session")) } }
                    }
                    dl {
                        dt { (w.t("Rozpoczęta", "Started")) } dd { (time(s.created_at)) }
                        dt { (w.t("Ostatnio", "Last seen")) } dd { (time(s.last_seen_at)) }
                        dt { (w.t("Wygaśnie najpóźniej", "Expires at the latest")) } dd { (time(s.expires_at)) }
                    }
                    @if !current {
                        form method="post" action={ "/account/sessions/" (s.public_id) "/end" } {
                            (page::csrf(&frame))
                            button.secondary type="submit" aria-label={ (w.t("Zakończ sesję rozpoczętą ", "End the session started ")) (time(s.created_at)) } {
                                (w.t("Zakończ", "End"))
                            }
                        }
                    }
                }
            }
        }
    };
    html(
        StatusCode::OK,
        layout(&frame, w.t("Sesje", "Sessions"), body),
    )
}

pub async fn end_session(
    State(state): State<PortalState>,
    member: Member,
    Path(id): Path<String>,
    FormBody(form): FormBody,
) -> Response {
    if let Some(page) = member.check(&form) {
        return page;
    }
    match state
        .portal
        .sessions()
        .close_public(&member.session.customer.to_string(), &id)
        .await
    {
        Ok(true) => redirect("/account/sessions?done=session-ended", &[]),
        Ok(false) => failed(&member.frame(), &ApiError::NotFound),
        Err(e) => failed(&member.frame(), &read_failure(&e)),
    }
}
