//! The chrome every page shares: the document's language, its title, the stylesheet, a skip
//! link to the content, the wing's header and footer, and one `<main>`.

use maud::{DOCTYPE, Markup, html};

use crate::domain::Language;

/// What a wing says about a page besides its content.
pub struct Chrome<'a> {
    pub lang: Language,
    /// The page's own title, then the site's: `Profile — My card`.
    pub title: &'a str,
    pub site: &'a str,
    pub stylesheet: String,
    /// The skip link's text ("to the content").
    pub skip: &'a str,
    pub header: Markup,
    pub footer: Option<Markup>,
}

/// A whole page: `body` in `<main>`, inside the wing's chrome.
pub fn page(chrome: Chrome<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(html_lang(chrome.lang)) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (chrome.title) " — " (chrome.site) }
                link rel="stylesheet" href=(chrome.stylesheet);
            }
            body {
                a.skip href="#main" { (chrome.skip) }
                header { (chrome.header) }
                main id="main" tabindex="-1" { (body) }
                @if let Some(footer) = chrome.footer {
                    footer { (footer) }
                }
            }
        }
    }
}

/// The language's code as HTML's `lang` takes it.
pub fn html_lang(lang: Language) -> &'static str {
    match lang {
        Language::Polish => "pl",
        Language::English => "en",
    }
}

/// The other language than `lang`: its code and its own name for itself.
pub fn other_language(lang: Language) -> (&'static str, &'static str) {
    match lang {
        Language::Polish => ("en", "English"),
        Language::English => ("pl", "Polski"),
    }
}

/// The link that switches to the other language and comes back to `here`.
pub fn language_switch(lang: Language, switch_at: &str, here: &str) -> Markup {
    let (code, name) = other_language(lang);
    let back: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
    html! {
        a href={ (switch_at) "/" (code) "?back=" (back) } lang=(code) hreflang=(code) { (name) }
    }
}
