//! "Your data": what is held, why, who receives it, for how long, and the download (GDPR
//! art. 15 and 20); deleting the account (art. 17) with its consequences, a step-up, a
//! confirmation and a receipt; and the notices every page links to: privacy, accessibility,
//! help.

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

use super::page::{
    self, Frame, Secret, layout, message, notice_lang, refused_secret, summary, time, title_for,
};
use super::profile::{current, failed};
use super::session::{Member, Visitor, done, forget_session, gone, stepped_up, with_error};
use super::words::{self, W};
use crate::domain::ProfileField;
use crate::http::extract::field;
use crate::http::pages::{FormBody, html};
use crate::http::portal::PortalState;
use crate::http::portal::api::{change_failure, read_failure};
use crate::http::portal::body;
use crate::http::portal::client::ClientAddr;
use crate::secret::hash_hex;

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The notice's sections, in the notice's own language.
fn notice_sections(w: W, notice: &Value) -> Markup {
    let list = |items: Vec<&str>| {
        html! { ul { @for item in items { li { (item) } } } }
    };
    let lang = notice_lang(notice);
    html! {
        h2 { (w.t("Kto jest administratorem", "Who the controller is")) }
        div lang=(lang) { p { (notice["Controller"].as_str().unwrap_or_default()) } }
        h2 { (w.t("Po co przetwarzamy dane", "Why we process the data")) }
        div lang=(lang) {
            ul {
                @for purpose in notice["Purposes"].as_array().into_iter().flatten() {
                    li {
                        (purpose["Description"].as_str().unwrap_or_default())
                        @if let Some(basis) = purpose["LegalBasis"].as_str() { " " span.hint { "(" (basis) ")" } }
                    }
                }
            }
        }
        h2 { (w.t("Kto otrzymuje dane", "Who receives the data")) }
        div lang=(lang) { (list(strings(&notice["Recipients"]))) }
        h2 { (w.t("Jak długo je przechowujemy", "How long we keep them")) }
        div lang=(lang) { (list(strings(&notice["Retention"]))) }
        h2 { (w.t("Skąd je mamy", "Where they come from")) }
        div lang=(lang) { p { (notice["Source"].as_str().unwrap_or_default()) } }
        h2 { (w.t("Twoje prawa", "Your rights")) }
        div lang=(lang) { (list(strings(&notice["Rights"]))) }
    }
}

fn my_data(
    frame: &Frame,
    member: &Member,
    view: &crate::service::portal::AccountView,
    history: &[crate::store::HistoryEntry],
    (error, note): (Option<&str>, Option<&str>),
) -> Markup {
    let w = frame.w();
    let account = &view.account;
    html! {
        h1 { (w.t("Twoje dane", "Your data")) }
        @if let Some(note) = note { (message("done", note)) }
        section aria-labelledby="held-title" {
            h2 id="held-title" { (w.t("Co o Tobie przechowujemy", "What we hold about you")) }
            dl {
                dt { (w.t("Karta", "Card")) } dd.num { (view.card.card_number.as_str()) }
                dt { (w.t("Numer telefonu", "Phone number")) }
                dd { @if let Some(phone) = &account.phone { (phone.as_str()) } @else { "—" } }
                @for f in ProfileField::ALL {
                    @if let Some(value) = account.profile.get(f) {
                        dt { (words::field_label(w, f)) } dd { (value) }
                    }
                }
                dt { (w.t("Portfele", "Wallets")) } dd { (view.card.wallets.len()) }
                dt { (w.t("Zgody w mocy", "Consents in force")) } dd { (account.consents.in_force().len()) }
            }
            p { (w.t(
                "Oprócz tego: historia zmian zgód, Twoje sesje i zapis tego, kto zmieniał Twoje dane (kasa, biuro obsługi, Ty). Wszystko to jest w pliku do pobrania.",
                "Besides: the history of your consents, your sessions and the record of who changed your data (a till, the service desk, you). All of it is in the download.",
            )) }
        }
        section aria-labelledby="download-title" {
            h2 id="download-title" { (w.t("Pobierz swoje dane", "Download your data")) }
            p { (w.t(
                "Jeden plik JSON ze wszystkimi danymi i informacjami z tej strony, do zachowania albo przeniesienia.",
                "One JSON file with all the data and the information on this page, to keep or to take elsewhere.",
            )) }
            (summary(w, &[("password", error)]))
            form.stack method="post" action="/account/my-data/download" novalidate {
                (page::csrf(frame))
                (page::step_up_field(frame, member.session.stepped_up(), "/account/my-data", error))
                div { button type="submit" { (w.t("Pobierz dane (JSON)", "Download the data (JSON)")) } }
            }
        }
        section aria-labelledby="changes-title" {
            h2 id="changes-title" { (w.t("Kto ostatnio zmieniał Twoje dane", "Who changed your data lately")) }
            @if history.is_empty() { p { "—" } }
            ul.timeline {
                @for entry in history {
                    li {
                        span.when { (time(entry.occurred_at)) } " "
                        (operation(w, &entry.operation)) " — "
                        (by(w, entry.actor.as_deref()))
                    }
                }
            }
        }
        (notice_sections(w, &frame.notice))
        h2 { (w.t("Usunięcie konta", "Deleting your account")) }
        p { a href="/account/delete" { (w.t("Usuń konto i dane osobowe", "Delete your account and personal data")) } }
    }
}

fn operation(w: W, op: &str) -> &'static str {
    match op {
        "register" => w.t("rejestracja karty", "card registered"),
        "activate" => w.t("aktywacja", "activated"),
        "activate-failed" => w.t("nieudana aktywacja", "activation failed"),
        "change_phone" | "desk_change_phone" => {
            w.t("zmiana numeru telefonu", "phone number changed")
        }
        "lock" | "desk_lock" => w.t("blokada karty", "card blocked"),
        "unlock" => w.t("odblokowanie karty", "card unblocked"),
        "replace" | "replacement" => w.t("wymiana karty", "card replaced"),
        "profile_change" => w.t("zmiana profilu", "profile changed"),
        "consent_change" => w.t("zmiana zgód", "consents changed"),
        "set_password" => w.t("ustawienie hasła", "password set"),
        "sms_code_sent" => w.t("wysłanie kodu SMS", "SMS code sent"),
        "clear_sign_in_lock" => w.t("odblokowanie logowania", "sign-in unblocked"),
        "retry_notice" => w.t("ponowienie powiadomienia", "notice retried"),
        _ => w.t("zmiana", "change"),
    }
}

fn by(w: W, actor: Option<&str>) -> &'static str {
    match actor {
        Some(crate::domain::CUSTOMER_ACTOR) => w.t("Ty", "you"),
        Some(_) => w.t("biuro obsługi", "the service desk"),
        None => w.t("kasa w sklepie", "a till in a shop"),
    }
}

async fn my_data_page(
    state: &PortalState,
    member: &Member,
    (error, note): (Option<&str>, Option<&str>),
) -> Result<Markup, Response> {
    let frame = member.frame();
    let view = current(state, member).await?;
    let history = state
        .portal
        .history(&member.session.customer, None, 10)
        .await
        .map_err(|e| failed(&frame, &read_failure(&e)))?;
    let body = my_data(&frame, member, &view, &history, (error, note));
    let title = title_for(
        frame.w(),
        frame.w().t("Twoje dane", "Your data"),
        error.is_some(),
    );
    Ok(layout(&frame, &title, body))
}

pub async fn page(
    State(state): State<PortalState>,
    member: Member,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    match my_data_page(&state, &member, (None, done(member.w(), &query))).await {
        Ok(page) => html(StatusCode::OK, page),
        Err(page) => page,
    }
}

pub async fn download(
    State(state): State<PortalState>,
    member: Member,
    Extension(addr): Extension<ClientAddr>,
    FormBody(form): FormBody,
) -> Response {
    if let Some(page) = member.check(&form) {
        return page;
    }
    if let Err(error) = stepped_up(&state, &member, addr, &form).await {
        let text = refused_secret(member.w(), &error, Secret::Password);
        return match my_data_page(&state, &member, (Some(&text), None)).await {
            Ok(page) => with_error(html(StatusCode::OK, page), &error),
            Err(page) => page,
        };
    }
    let export = match state.portal.export(&member.session).await {
        Ok(Some(export)) => export,
        Ok(None) => return gone(&state, &member).await,
        Err(e) => return failed(&member.frame(), &read_failure(&e)),
    };
    tracing::info!(customer_id = %member.session.customer, "customer downloaded their data");
    let mut response = crate::http::json(StatusCode::OK, &body::export(export));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"cps-my-data.json\""),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn delete_form(frame: &Frame, member: &Member, errors: (Option<&str>, Option<&str>)) -> Markup {
    let w = frame.w();
    layout(
        frame,
        &title_for(
            w,
            w.t("Usunięcie konta", "Delete your account"),
            errors.0.is_some() || errors.1.is_some(),
        ),
        html! {
            h1 { (w.t("Usuń konto", "Delete your account")) }
            p { (w.t("Co się stanie:", "What happens:")) }
            ul {
                li { (w.t("Usuniemy Twoje dane osobowe: numer telefonu, profil, zgody i ich historię.", "We erase your personal data: the phone number, the profile, the consents and their history.")) }
                li { (w.t("Karta nie będzie już powiązana z Tobą, a punktów nie odzyskasz przez to konto.", "The card is no longer tied to you, and its points cannot be reached through this account.")) }
                li { (w.t("Wszystkie Twoje sesje się zakończą; nie zalogujesz się już tą kartą.", "All your sessions end; you can no longer sign in with this card.")) }
                li { (w.t("Zostaje tylko zapis, że zmiany miały miejsce, bez Twoich danych (obowiązek rozliczalności).", "Only the record that changes happened stays, without your data (accountability).")) }
                li { strong { (w.t("Tego nie można cofnąć.", "This cannot be undone.")) } }
            }
            p { (w.t("Najpierw możesz ", "You may first ")) a href="/account/my-data" { (w.t("pobrać swoje dane", "download your data")) } "." }
            (summary(w, &[("confirm", errors.0), ("password", errors.1)]))
            form.stack method="post" action="/account/delete" novalidate {
                (page::csrf(frame))
                (page::step_up_field(frame, member.session.stepped_up(), "/account/delete", errors.1))
                div.check.invalid[errors.0.is_some()] {
                    input id="confirm" name="confirm" type="checkbox" value="yes" required
                        aria-invalid=[errors.0.map(|_| "true")] aria-describedby=[errors.0.map(|_| "confirm-error")];
                    label for="confirm" { (w.t("Rozumiem, że usunięcia nie można cofnąć.", "I understand that deleting cannot be undone.")) }
                    @if let Some(error) = errors.0 { p.error id="confirm-error" { (error) } }
                }
                div { button.danger type="submit" { (w.t("Usuń konto na zawsze", "Delete the account for good")) } }
            }
        },
    )
}

pub async fn delete_page(member: Member) -> Response {
    let frame = member.frame();
    html(StatusCode::OK, delete_form(&frame, &member, (None, None)))
}

pub async fn delete(
    State(state): State<PortalState>,
    member: Member,
    Extension(addr): Extension<ClientAddr>,
    FormBody(form): FormBody,
) -> Response {
    if let Some(page) = member.check(&form) {
        return page;
    }
    let frame = member.frame();
    let w = member.w();
    if field(&form, "confirm") != Some("yes") {
        let text = w.t(
            "Zaznacz, że rozumiesz skutki usunięcia.",
            "Tick that you understand what deleting does.",
        );
        return html(
            StatusCode::UNPROCESSABLE_ENTITY,
            delete_form(&frame, &member, (Some(text), None)),
        );
    }
    if let Err(error) = stepped_up(&state, &member, addr, &form).await {
        let text = refused_secret(member.w(), &error, Secret::Password);
        let page = html(
            StatusCode::OK,
            delete_form(&frame, &member, (None, Some(&text))),
        );
        return with_error(page, &error);
    }
    let receipt = match state.portal.erase(member.session.customer).await {
        Ok(receipt) => receipt,
        Err(e) => return failed(&frame, &change_failure(e)),
    };
    let frame = Frame {
        csrf: None,
        member: false,
        ..frame
    };
    let body = html! {
        h1 { (w.t("Konto usunięte", "Account deleted")) }
        (message("done", w.t("Twoje dane osobowe zostały usunięte, a wszystkie sesje zakończone.", "Your personal data are erased and all your sessions ended.")))
        h2 { (w.t("Potwierdzenie", "Receipt")) }
        p { (w.t("Zachowaj je: biuro obsługi znajdzie po nim usunięcie.", "Keep it: the service desk can find the erasure by it.")) }
        dl {
            dt { (w.t("Numer potwierdzenia", "Receipt number")) } dd.num { (receipt.id) }
            dt { (w.t("Usunięto", "Erased at")) } dd { (time(receipt.at)) }
            @for (purpose, count) in &receipt.removed {
                dt { (w.t("Usunięte zdarzenia zgody: ", "Consent events erased: ")) (purpose) } dd { (count) }
            }
        }
    };
    let mut response = html(
        StatusCode::OK,
        layout(&frame, w.t("Konto usunięte", "Account deleted"), body),
    );
    forget_session(&mut response);
    response
}

/// The notice's version: its own `Version` where it has one, and always its fingerprint (the
/// SHA-256 of what is published), so that any change of the text shows.
fn notice_version(notice: &Value) -> (Option<&str>, String) {
    let fingerprint = hash_hex(&notice.to_string())[..12].to_owned();
    (notice["Version"].as_str(), fingerprint)
}

pub async fn privacy(visitor: Visitor) -> Response {
    let frame = visitor.frame();
    let w = visitor.w();
    let (version, fingerprint) = notice_version(&frame.notice);
    let body = html! {
        h1 { (w.t("Informacja o prywatności", "Privacy notice")) }
        p.hint {
            @if let Some(version) = version { (w.t("Wersja ", "Version ")) (version) ", " }
            (w.t("odcisk ", "fingerprint ")) code { (fingerprint) }
        }
        (notice_sections(w, &frame.notice))
        p { (w.t("Dane, które o Tobie przechowujemy, zobaczysz i pobierzesz po zalogowaniu: ", "You can see and download the data we hold about you once signed in: ")) a href="/account/my-data" { (w.t("Twoje dane", "Your data")) } "." }
    };
    html(
        StatusCode::OK,
        layout(
            &frame,
            w.t("Informacja o prywatności", "Privacy notice"),
            body,
        ),
    )
}

pub async fn accessibility(visitor: Visitor) -> Response {
    let frame = visitor.frame();
    let w = visitor.w();
    let body = html! {
        h1 { (w.t("Deklaracja dostępności", "Accessibility statement")) }
        p { (w.t(
            "Chcemy, by z tych stron mógł korzystać każdy. Są projektowane według WCAG 2.2 na poziomie AA (norma EN 301 549).",
            "We want everyone to be able to use these pages. They are built to WCAG 2.2 level AA (the EN 301 549 standard).",
        )) }
        h2 { (w.t("Jak to sprawdzamy", "How we check it")) }
        ul {
            li { (w.t("Każda strona, w obu językach, zalogowanym i niezalogowanym, także z błędami w formularzach, przechodzi przy każdej zmianie automatyczny test axe-core w przeglądarce Chromium.", "Every page, in both languages, signed in and out, with form errors too, passes an automated axe-core test in the Chromium browser with every change.")) }
            li { (w.t("Skrypt sprawdza też to, czego axe nie widzi: kolejność i widoczność fokusu klawiatury, brak przewijania w poziomie przy 320 pikselach szerokości, wielkość celów dotykowych i pola haseł oraz kodów, do których można wklejać.", "A script also checks what axe cannot see: the order and visibility of the keyboard focus, no sideways scrolling at 320 pixels wide, the size of touch targets, and password and code fields that accept pasting.")) }
            li { (w.t("Strony działają bez JavaScriptu, z klawiatury i przy powiększeniu do 400%.", "The pages work without JavaScript, from the keyboard and at 400% zoom.")) }
        }
        h2 { (w.t("Czego jeszcze nie sprawdziliśmy", "What we have not checked yet")) }
        p { (w.t(
            "Test z czytnikiem ekranu (NVDA, VoiceOver) prowadzony przez człowieka jest przed nami. Jeśli coś nie działa, daj nam znać.",
            "A test with a screen reader (NVDA, VoiceOver) by a person is still ahead. If something does not work for you, tell us.",
        )) }
        h2 { (w.t("Informacje zwrotne i kontakt", "Feedback and contact")) }
        p { (w.t(
            "Problemy z dostępnością zgłaszaj do biura obsługi klienta (kontakt na dole strony). Odpowiemy najpóźniej w ciągu 7 dni; jeśli nie możemy czegoś naprawić od razu, podamy inną drogę do tej samej informacji albo usługi.",
            "Report accessibility problems to the customer service desk (contact at the foot of the page). We answer within 7 days at the latest; where we cannot fix something at once, we offer another way to the same information or service.",
        )) }
        p { (w.t(
            "Jeśli odpowiedź Cię nie zadowoli, możesz złożyć skargę do właściwego organu nadzoru rynku (ustawa z 26 kwietnia 2024 r. o zapewnianiu spełniania wymagań dostępności niektórych produktów i usług).",
            "If our answer does not satisfy you, you may complain to the competent market surveillance authority (the Polish act of 26 April 2024 implementing the European Accessibility Act).",
        )) }
        p.hint { (w.t("Deklarację sporządzono 2026-12-08.", "Statement prepared on 2026-12-08.")) }
    };
    html(
        StatusCode::OK,
        layout(
            &frame,
            w.t("Deklaracja dostępności", "Accessibility statement"),
            body,
        ),
    )
}

pub async fn help(visitor: Visitor) -> Response {
    let frame = visitor.frame();
    let w = visitor.w();
    let text = |key: &str| page::contact(&frame.notice, key);
    let body = html! {
        h1 { (w.t("Pomoc", "Help")) }
        h2 { (w.t("Biuro obsługi klienta", "Customer service desk")) }
        dl {
            @if let Some(phone) = text("Phone") { dt { (w.t("Telefon", "Phone")) } dd { (page::phone_link(phone)) } }
            @if let Some(email) = text("Email") { dt { (w.t("E-mail", "Email")) } dd { a href={ "mailto:" (email) } { (email) } } }
            @if let Some(hours) = text("Hours") { dt { (w.t("Godziny", "Hours")) } dd lang=(notice_lang(&frame.notice)) { (hours) } }
        }
        p { (w.t(
            "Biuro odblokuje kartę i logowanie, wyda nową kartę, poprawi numer telefonu i usunie dane. Nigdy nie poprosi o Twoje hasło, PIN ani kod z SMS-a.",
            "The desk unblocks a card and a sign-in, issues a new card, corrects a phone number and erases data. It never asks for your password, PIN or an SMS code.",
        )) }
        h2 { (w.t("Najczęstsze sprawy", "Common questions")) }
        ul {
            li { a href="/account/reset" { (w.t("Nie pamiętam hasła", "I forgot my password")) } }
            li { a href="/account/card" { (w.t("Zgubiłem kartę", "I lost my card")) } }
            li { a href="/account/my-data" { (w.t("Jakie dane o mnie macie?", "What data do you hold about me?")) } }
        }
    };
    html(StatusCode::OK, layout(&frame, w.t("Pomoc", "Help"), body))
}
