//! The console's words in Polish and English. Refusals use the API's own messages
//! ([`crate::http::error::ApiError::message`]); these are the page's labels.

use crate::domain::Language;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum T {
    Title,
    Skip,
    SignIn,
    SignInLead,
    SessionEnded,
    SessionRevoked,
    SessionUnknown,
    Token,
    SignOut,
    SignedInAs,
    Search,
    SearchLabel,
    SearchHint,
    NoResults,
    Results,
    Card,
    Status,
    LockReason,
    Note,
    ReplacedBy,
    StatusBeforeLock,
    Customer,
    CustomerId,
    Phone,
    Gender,
    Version,
    Erased,
    Wallets,
    Wallet,
    Balance,
    Stats,
    NoWallets,
    Notice,
    NoNotice,
    Attempts,
    LastError,
    History,
    Older,
    By,
    Changes,
    Actions,
    Lock,
    Unlock,
    Replace,
    ChangePhone,
    Erase,
    RetryNotice,
    Confirm,
    Cancel,
    NewCardNumber,
    NewPin,
    Reason,
    EraseWarning,
    Done,
    Cards,
    None,
    Forbidden,
    ViewerHint,
    Consents,
    NoConsents,
    Purpose,
    TextVersion,
    MarketingObjection,
    ConsentHistory,
    When,
    Action,
    Channel,
}

impl T {
    pub fn get(self, lang: Language) -> &'static str {
        let (pl, en) = match self {
            Self::Title => ("Konsola biura obsługi", "Service desk console"),
            Self::Skip => ("Przejdź do treści", "Skip to content"),
            Self::SignIn => ("Zaloguj", "Sign in"),
            Self::SessionEnded => (
                "Sesja wygasła. Zaloguj się ponownie.",
                "Your session has ended. Please sign in again.",
            ),
            Self::SessionRevoked => (
                "Token tej sesji został wycofany. Zaloguj się nowym tokenem.",
                "The token of this session was revoked. Sign in with a new token.",
            ),
            Self::SessionUnknown => (
                "Sesja zakończyła się. Zaloguj się ponownie.",
                "This session is over. Please sign in again.",
            ),
            Self::SignInLead => (
                "Wklej swój token biura obsługi.",
                "Paste your service desk token.",
            ),
            Self::Token => ("Token", "Token"),
            Self::SignOut => ("Wyloguj", "Sign out"),
            Self::SignedInAs => ("Zalogowano jako", "Signed in as"),
            Self::Search => ("Szukaj", "Search"),
            Self::SearchLabel => ("Numer karty lub telefonu", "Card or phone number"),
            Self::SearchHint => (
                "Numer karty (same cyfry) lub telefon w dowolnym formacie, np. 602 123 789.",
                "A card number (digits only) or a phone number in any format, e.g. 602 123 789.",
            ),
            Self::NoResults => ("Nic nie znaleziono.", "Nothing found."),
            Self::Results => ("Wyniki", "Results"),
            Self::Card => ("Karta", "Card"),
            Self::Status => ("Status", "Status"),
            Self::LockReason => ("Powód blokady", "Lock reason"),
            Self::Note => ("Notatka", "Note"),
            Self::ReplacedBy => ("Zastąpiona przez", "Replaced by"),
            Self::StatusBeforeLock => ("Status przed blokadą", "Status before the lock"),
            Self::Customer => ("Klient", "Customer"),
            Self::CustomerId => ("Identyfikator klienta", "Customer id"),
            Self::Phone => ("Telefon", "Phone"),
            Self::Gender => ("Płeć", "Gender"),
            Self::Version => ("Wersja", "Version"),
            Self::Erased => ("Dane usunięte", "Data erased"),
            Self::Wallets => ("Portfele", "Wallets"),
            Self::Wallet => ("Portfel", "Wallet"),
            Self::Balance => ("Saldo", "Balance"),
            Self::Stats => ("Statystyki", "Statistics"),
            Self::NoWallets => ("Brak portfeli.", "No wallets."),
            Self::Notice => ("Powiadomienie ALCS", "ALCS notice"),
            Self::NoNotice => ("Brak powiadomienia.", "No notice."),
            Self::Attempts => ("Próby", "Attempts"),
            Self::LastError => ("Ostatni błąd", "Last error"),
            Self::History => ("Historia", "History"),
            Self::Older => ("Starsze wpisy", "Older entries"),
            Self::By => ("Kto", "By"),
            Self::Changes => ("Zmiany", "Changes"),
            Self::Actions => ("Działania", "Actions"),
            Self::Lock => ("Zablokuj", "Lock"),
            Self::Unlock => ("Odblokuj", "Unlock"),
            Self::Replace => ("Wymień kartę", "Replace card"),
            Self::ChangePhone => ("Zmień telefon", "Change phone"),
            Self::Erase => ("Usuń dane osobowe", "Erase personal data"),
            Self::RetryNotice => (
                "Wyślij ponownie powiadomienie ALCS",
                "Send the ALCS notice again",
            ),
            Self::Confirm => ("Potwierdź", "Confirm"),
            Self::Cancel => ("Anuluj", "Cancel"),
            Self::NewCardNumber => ("Nowy numer karty", "New card number"),
            Self::NewPin => ("HMAC PIN-u nowej karty", "The new card's PIN HMAC"),
            Self::Reason => ("Powód", "Reason"),
            Self::EraseWarning => (
                "Usunięcie jest nieodwracalne: telefon zostanie usunięty, płeć ustawiona na U, a wszystkie karty klienta zablokowane na stałe.",
                "Erasure cannot be undone: the phone number is removed, gender set to U, and every card of the customer locked for good.",
            ),
            Self::Done => ("Zrobione.", "Done."),
            Self::Cards => ("Karty", "Cards"),
            Self::Consents => ("Zgody", "Consents"),
            Self::NoConsents => ("Brak udzielonych zgód.", "No consent given."),
            Self::Purpose => ("Cel", "Purpose"),
            Self::TextVersion => ("Wersja treści", "Text version"),
            Self::MarketingObjection => (
                "Sprzeciw wobec marketingu (zgody nie obowiązują)",
                "Objects to marketing (no consent is in force)",
            ),
            Self::ConsentHistory => ("Historia zgód", "Consent history"),
            Self::When => ("Kiedy", "When"),
            Self::Action => ("Zdarzenie", "Event"),
            Self::Channel => ("Kanał", "Channel"),
            Self::None => ("brak", "none"),
            Self::Forbidden => (
                "Formularz wygasł lub nie pochodzi z tej konsoli. Odśwież stronę i spróbuj ponownie.",
                "The form expired or did not come from this console. Reload the page and try again.",
            ),
            Self::ViewerHint => (
                "Twoja rola pozwala tylko na podgląd.",
                "Your role allows viewing only.",
            ),
        };
        match lang {
            Language::Polish => pl,
            Language::English => en,
        }
    }
}

/// A lock reason's name in the page's language.
pub fn reason(lang: Language, reason: &str) -> &'static str {
    let (pl, en) = match reason {
        "Alcs" => ("ALCS (kasa)", "ALCS (till)"),
        "Lost" => ("Zgubiona", "Lost"),
        "Stolen" => ("Skradziona", "Stolen"),
        "Damaged" => ("Uszkodzona", "Damaged"),
        "Fraud" => ("Oszustwo", "Fraud"),
        "CustomerRequest" => ("Na prośbę klienta", "Customer's request"),
        "Other" => ("Inny", "Other"),
        "Erased" => ("Dane usunięte", "Data erased"),
        _ => ("?", "?"),
    };
    match lang {
        Language::Polish => pl,
        Language::English => en,
    }
}

/// How long a session lasts, for the sign-in page: both limits, in minutes or hours.
pub fn session_rule(lang: Language, limits: crate::service::sessions::SessionLimits) -> String {
    let span = |d: std::time::Duration| {
        let minutes = d.as_secs().div_ceil(60);
        match (lang, minutes) {
            (_, m) if m >= 120 && m % 60 == 0 => match lang {
                Language::Polish => format!("{} godz.", m / 60),
                Language::English => format!("{} hours", m / 60),
            },
            (Language::Polish, m) => format!("{m} min"),
            (Language::English, m) => format!("{m} minutes"),
        }
    };
    match lang {
        Language::Polish => format!(
            "Sesja kończy się po {} bez aktywności i zawsze po {} od zalogowania; potem trzeba zalogować się ponownie.",
            span(limits.idle),
            span(limits.absolute)
        ),
        Language::English => format!(
            "A session ends after {} without activity, and always {} after signing in; then sign in again.",
            span(limits.idle),
            span(limits.absolute)
        ),
    }
}
