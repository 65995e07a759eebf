//! Accessibility checks in the tests' real browser: axe-core (pinned in
//! `tests/browser/package-lock.json`, installed by `.ci/run`) injected into the page, and
//! scripted checks for what axe cannot see (WCAG 2.2 AA): the keyboard's path and its visible
//! focus, reflow at 320 CSS pixels, target sizes, and the page's language.

use std::path::PathBuf;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use serde_json::{Value, json};

use super::backends::available;
use super::browser::Browser;

/// The WCAG levels axe is asked to check: A and AA of 2.0, 2.1 and 2.2.
const TAGS: [&str; 5] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];

/// axe-core's source, or `None` (after one "skipped" line) where `npm ci` has not installed
/// it; under `CI=true` a missing engine fails.
pub fn axe_source() -> Option<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser/node_modules/axe-core/axe.min.js");
    let found = path.exists();
    if !available(
        "axe-core (npm ci --prefix tests/browser)",
        &path.display().to_string(),
        found,
    ) {
        return None;
    }
    Some(std::fs::read_to_string(&path).expect("read axe.min.js"))
}

/// The controls a keyboard reaches, in document order, as the scripts below find them.
const FOCUSABLE: &str = r#"
const focusable = [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, [tabindex]')]
  .filter(el => el.tabIndex >= 0 && !el.disabled && el.getClientRects().length > 0);
"#;

impl Browser {
    /// Runs axe on the page and fails, naming every violation (rule, impact, elements), if it
    /// finds any.
    pub async fn audit(&self, axe: &str, what: &str) {
        let violations = self.violations(axe).await;
        assert!(
            violations.is_empty(),
            "axe found WCAG violations on {what} ({}):\n{}",
            self.url().await,
            serde_json::to_string_pretty(&violations).unwrap_or_default()
        );
    }

    /// What axe finds on the page: each violation's rule, impact and elements.
    pub async fn violations(&self, axe: &str) -> Vec<Value> {
        let present = self
            .client
            .execute("return typeof window.axe === 'object';", vec![])
            .await
            .expect("look for axe");
        if present != json!(true) {
            self.client
                .execute(axe, vec![])
                .await
                .expect("inject axe-core");
        }
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { runOnly: { type: 'tag', values: arguments[0] }, resultTypes: ['violations'] })
                   .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                       nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary) }))))
                   .catch(e => done([{ id: 'axe-error', help: String(e), nodes: [] }]));",
                vec![json!(TAGS)],
            )
            .await
            .expect("run axe");
        result.as_array().cloned().unwrap_or_default()
    }

    /// Every check of a page: axe, the language, the keyboard's path and focus, reflow at
    /// 320 px and the target sizes.
    pub async fn check_page(&self, axe: &str, what: &str, lang: &str) {
        self.audit(axe, what).await;
        let html_lang = self
            .client
            .execute("return document.documentElement.lang;", vec![])
            .await
            .expect("read lang");
        assert_eq!(html_lang, json!(lang), "lang of {what}");
        self.keyboard_walk(what).await;
        self.targets(what).await;
        self.reflow(what).await;
    }

    /// Tabs through the page from the top: every control is reached once, in document order,
    /// each with a visible focus indicator inside the viewport (not obscured, WCAG 2.4.11).
    pub async fn keyboard_walk(&self, what: &str) {
        let count = self
            .client
            .execute(&format!("{FOCUSABLE} 
                 // The walk starts at the top, wherever a fragment or a click left the start.
                 const root = document.documentElement;
                 root.setAttribute('tabindex', '-1'); root.focus(); root.removeAttribute('tabindex');
                 // Each control's look unfocused (nothing has focus now), to compare with its
                 // look once focused.
                 window.cpsUnfocused = focusable.map(el => {{ const s = getComputedStyle(el);
                   return s.outlineStyle + ' ' + s.outlineWidth + ' ' + s.boxShadow; }});
                 window.scrollTo(0, 0); return focusable.length;"), vec![])
            .await
            .expect("count the controls")
            .as_u64()
            .unwrap_or(0);
        assert!(count > 0, "no control on {what}");
        let mut reached = Vec::new();
        for _ in 0..count {
            let tab = KeyActions::new("keyboard".to_owned())
                .then(KeyAction::Down { value: '\u{E004}' })
                .then(KeyAction::Up { value: '\u{E004}' });
            self.client.perform_actions(tab).await.expect("press Tab");
            let seen = self
                .client
                .execute(
                    &format!(
                        "{FOCUSABLE}
                         const el = document.activeElement;
                         const style = getComputedStyle(el);
                         const r = el.getBoundingClientRect();
                         const index = focusable.indexOf(el);
                         const look = style.outlineStyle + ' ' + style.outlineWidth + ' ' + style.boxShadow;
                         const ring = ((style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2)
                           || style.boxShadow !== 'none') && look !== window.cpsUnfocused[index];
                         // Not obscured: what is drawn at the centre of the control's first box
                         // (a link may wrap) is the control, or its label.
                         const b = el.getClientRects()[0] || r;
                         const x = Math.min(Math.max(b.left + b.width / 2, 0), innerWidth - 1);
                         const y = Math.min(Math.max(b.top + b.height / 2, 0), innerHeight - 1);
                         const hit = document.elementFromPoint(x, y);
                         const own = hit !== null && (hit === el || el.contains(hit)
                           || (el.labels !== undefined && el.labels !== null && [...el.labels].includes(hit)));
                         const inside = r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth && own;
                         return {{ index, ring, inside,
                                  name: el.tagName + ' ' + (el.id || el.getAttribute('href') || el.textContent.trim().slice(0, 40))
                                  + (own ? '' : ' (at its centre: ' + (hit ? hit.outerHTML.slice(0, 60) : 'nothing') + ' ' + JSON.stringify(b) + ')') }};"
                    ),
                    vec![],
                )
                .await
                .expect("read the focus");
            assert_eq!(
                seen["ring"],
                json!(true),
                "no visible focus on {} of {what}",
                seen["name"]
            );
            assert_eq!(
                seen["inside"],
                json!(true),
                "focus out of view on {} of {what}",
                seen["name"]
            );
            reached.push(seen["index"].as_i64().unwrap_or(-1));
        }
        let expected: Vec<i64> = (0..count as i64).collect();
        assert_eq!(reached, expected, "Tab order on {what}");
    }

    /// Every target is at least 24×24 CSS pixels (WCAG 2.5.8), but a link inside a sentence,
    /// which the criterion exempts.
    pub async fn targets(&self, what: &str) {
        let small = self
            .client
            .execute(
                &format!(
                    "{FOCUSABLE}
                     return focusable.filter(el => {{
                       const r = el.getBoundingClientRect();
                       if (r.width >= 24 && r.height >= 24) return false;
                       const inline = el.tagName === 'A' && getComputedStyle(el).display === 'inline'
                         && el.parentElement.tagName === 'P'
                         && el.parentElement.textContent.trim().length > el.textContent.trim().length;
                       return !inline;
                     }}).map(el => el.outerHTML.slice(0, 80) + ' ' + Math.round(el.getBoundingClientRect().width) + 'x' + Math.round(el.getBoundingClientRect().height));"
                ),
                vec![],
            )
            .await
            .expect("measure the targets");
        assert_eq!(small, json!([]), "targets under 24×24 px on {what}");
    }

    /// At 320 CSS pixels wide (400% zoom of 1280) nothing scrolls sideways (WCAG 1.4.10); the
    /// window is as it was afterwards.
    pub async fn reflow(&self, what: &str) {
        let (width, height) = self
            .client
            .get_window_size()
            .await
            .expect("the window size");
        self.client.set_window_size(320, 720).await.expect("resize");
        let measured = self
            .client
            .execute(
                "const width = document.documentElement.clientWidth;
                 // Anything drawn past the right edge, but inside a region that scrolls on its
                 // own (a data table: WCAG 1.4.10's exception).
                 const past = [...document.body.querySelectorAll('*')]
                   .filter(el => !el.closest('.scroll') && el.getClientRects().length > 0)
                   .filter(el => el.getBoundingClientRect().right > width + 1)
                   .map(el => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right));
                 return { inner: innerWidth, past, overflow: document.documentElement.scrollWidth - width };",
                vec![],
            )
            .await
            .expect("measure");
        self.client
            .set_window_size(width as u32, height as u32)
            .await
            .expect("resize");
        assert!(
            measured["inner"].as_i64().unwrap_or(0) <= 340,
            "the window did not narrow to 320 px: {measured}"
        );
        assert_eq!(
            measured["overflow"],
            json!(0),
            "sideways scrolling at 320 px on {what}"
        );
        assert_eq!(measured["past"], json!([]), "cut off at 320 px on {what}");
    }

    /// The value of `property` of the element `css` matches (`null` when it has none).
    pub async fn property(&self, css: &str, property: &str) -> Value {
        self.text(css).await;
        self.client
            .execute(
                "const el = document.querySelector(arguments[0]); return el ? el.getAttribute(arguments[1]) : null;",
                vec![json!(css), json!(property)],
            )
            .await
            .expect("read an attribute")
    }

    /// A secret's or a code's field: one input of its kind (not a box per digit: the form has
    /// `inputs` visible inputs in all), with its autocomplete token, not cut short, and no
    /// script that refuses a paste (WCAG 3.3.8; the pages have no script at all, which the CSP
    /// enforces and the headers test checks).
    pub async fn secret_field(&self, css: &str, kind: &str, token: &str, inputs: usize) {
        assert_eq!(self.property(css, "type").await, json!(kind), "{css}");
        assert_eq!(
            self.property(css, "autocomplete").await,
            json!(token),
            "{css}"
        );
        assert_eq!(
            self.property(css, "maxlength").await,
            Value::Null,
            "{css} is not cut short"
        );
        let pasted = self
            .client
            .execute(
                "const el = document.querySelector(arguments[0]);
                 const event = new ClipboardEvent('paste', { bubbles: true, cancelable: true });
                 el.dispatchEvent(event);
                 const inputs = el.form.querySelectorAll('input:not([type=hidden])').length;
                 return { refused: event.defaultPrevented || el.onpaste !== null, inputs };",
                vec![json!(css)],
            )
            .await
            .expect("paste");
        assert_eq!(pasted["refused"], json!(false), "paste refused in {css}");
        assert_eq!(
            pasted["inputs"],
            json!(inputs),
            "the inputs of {css}'s form"
        );
    }
}
