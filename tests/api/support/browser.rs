//! A real headless browser for the console's end-to-end tests: Debian's Chromium, driven over
//! WebDriver by chromedriver, both started per test.

use std::path::Path;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use tempfile::TempDir;

use super::backends::{available, free_port};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Where a screenshot goes: `target/screenshots/`, or with `CPS_UPDATE_SCREENSHOTS=1` the
/// README's own, in `docs/` (so that a test run does not change the source tree by itself).
pub fn screenshot_path(name: &str) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let update = std::env::var("CPS_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1");
    let dir = if update {
        root.join("docs")
    } else {
        root.join("target").join("screenshots")
    };
    dir.join(name)
}

pub struct Browser {
    pub client: Client,
    driver: std::process::Child,
    _profile: TempDir,
    /// Where downloads land.
    pub downloads: TempDir,
    /// The clicks, fills and selections made so far: what a person would have done.
    actions: std::sync::atomic::AtomicUsize,
}

impl Browser {
    /// Chromium at 1366×768, or `None` (after one "skipped" line) when it is not installed
    /// outside CI; under `CI=true` a missing browser fails.
    pub async fn start() -> Option<Self> {
        let installed = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
        if !available("Chromium", CHROMIUM, installed) {
            return None;
        }
        let port = free_port();
        let driver = std::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("a profile directory");
        let downloads = tempfile::tempdir().expect("a downloads directory");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // As root, without a sandbox; no background traffic (this machine's network is closed).
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1366,768".to_owned(),
            "--lang=pl-PL".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": args,
                "prefs": {
                    "intl.accept_languages": "pl-PL,pl",
                    "download.default_directory": downloads.path().display().to_string(),
                    "download.prompt_for_download": false,
                },
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a browser session");
        Some(Self {
            client,
            driver,
            _profile: profile,
            downloads,
            actions: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// The text of the first element `css` matches, waiting (bounded) for it to appear: a
    /// click that submits a form returns before the next page is there.
    pub async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(found) = self.client.find(Locator::Css(css)).await {
                return found.text().await.expect("its text");
            }
            if Instant::now() > deadline {
                let body = match self.client.find(Locator::Css("body")).await {
                    Ok(body) => body.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                panic!("no {css} at {}: {body}", self.url().await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn page_text(&self) -> String {
        self.text("body").await
    }

    /// How many elements `css` matches.
    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("find")
            .len()
    }

    /// How many clicks, fills and selections this browser was asked for so far.
    pub fn actions(&self) -> usize {
        self.actions.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn act(&self) {
        self.actions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub async fn fill(&self, css: &str, value: &str) {
        self.act();
        self.text(css).await;
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        field.clear().await.expect("clear");
        field.send_keys(value).await.expect("type");
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.act();
        self.text(css).await;
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .select_by_value(value)
            .await
            .expect("select");
    }

    /// Follows a link or submits a form: returns once the next page is there.
    pub async fn click(&self, css: &str) {
        self.navigating(Locator::Css(css)).await;
    }

    /// Clicks what `css` finds where no page follows (a checkbox, a download).
    pub async fn press(&self, css: &str) {
        self.act();
        self.text(css).await;
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .expect("click");
    }

    /// Clicks the link or button whose text is `text`, like [`Browser::click`].
    pub async fn click_text(&self, text: &str) {
        let xpath =
            format!("//a[normalize-space(.)='{text}'] | //button[normalize-space(.)='{text}']");
        self.navigating(Locator::XPath(&xpath)).await;
    }

    /// Clicks what `locator` finds, then waits until the page it was on is gone (its root
    /// element stale) and the next one has a body.
    async fn navigating(&self, locator: Locator<'_>) {
        self.act();
        let old = self
            .client
            .find(Locator::Css("html"))
            .await
            .expect("a page");
        let target = match self.client.find(locator).await {
            Ok(target) => target,
            Err(e) => panic!("nothing to click at {}: {e}", self.url_now().await),
        };
        target.click().await.expect("click");
        let deadline = Instant::now() + Duration::from_secs(10);
        while old.tag_name().await.is_ok() {
            assert!(Instant::now() < deadline, "the click led nowhere");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.text("body").await;
    }

    async fn url_now(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("the URL")
            .to_string()
    }

    /// A PNG of the page at 1366 pixels wide and as tall as it is (up to 2000), written to
    /// `path`; the window is 1366×768 again afterwards.
    pub async fn screenshot(&self, path: &Path) {
        self.screenshot_at(1366, path).await;
    }

    /// A PNG of the page at `width` CSS pixels and as tall as it is (up to 2000).
    pub async fn screenshot_at(&self, width: u32, path: &Path) {
        // From the top, with no focus ring left behind by a keyboard walk.
        let _ = self
            .client
            .execute(
                "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);",
                vec![],
            )
            .await;
        self.client
            .set_window_size(width, 768)
            .await
            .expect("resize");
        let height = self
            .client
            .execute("return document.documentElement.scrollHeight;", vec![])
            .await
            .ok()
            .and_then(|h| h.as_u64())
            .unwrap_or(768)
            .clamp(768, 2000) as u32;
        self.client
            .set_window_size(width, height + 90)
            .await
            .expect("resize");
        let png = self.client.screenshot().await.expect("a screenshot");
        self.client
            .set_window_size(1366, 768)
            .await
            .expect("resize");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("the screenshot's directory");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
