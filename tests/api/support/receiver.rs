//! One fake HTTP server for whatever the service calls out to: ALCS's activation notices, an
//! OTLP collector, and any webhook to come. It records every request (any method, any path) and
//! answers as the test tells it: statuses in order, a delay, a `Retry-After`; over HTTP, or over
//! HTTPS with a test PKI's certificate (requiring a client certificate when asked).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};

use super::Pki;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON (`null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// What the server has received and how it is to answer.
#[derive(Default)]
struct Script {
    received: Mutex<Vec<Received>>,
    /// Statuses to answer next, in order; 200 when empty.
    plan: Mutex<VecDeque<u16>>,
    /// How long to take over each answer.
    delay: Mutex<Duration>,
    /// `Retry-After` sent with every answer that is not a success.
    retry_after: Mutex<Option<String>>,
}

async fn receive(State(script): State<Arc<Script>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    script.received.lock().unwrap().push(Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body,
        at: Instant::now(),
    });
    let status = script.plan.lock().unwrap().pop_front().unwrap_or(200);
    let delay = *script.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let status = StatusCode::from_u16(status).unwrap();
    let retry_after = script.retry_after.lock().unwrap().clone();
    match retry_after.filter(|_| !status.is_success()) {
        Some(after) => (status, [("retry-after", after)]).into_response(),
        None => status.into_response(),
    }
}

pub struct FakeReceiver {
    pub port: u16,
    /// `http://127.0.0.1:{port}` or `https://localhost:{port}` (the certificate's name).
    base: String,
    script: Arc<Script>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeReceiver {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// On a given port, e.g. one the service was told about while nothing listened there.
    pub async fn start_on(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the fake receiver");
        let port = listener.local_addr().unwrap().port();
        let script = Arc::new(Script::default());
        let app = router(script.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            port,
            base: format!("http://127.0.0.1:{port}"),
            script,
            task,
        }
    }

    /// Over HTTPS with `pki`'s server certificate (for `localhost`), requiring a client
    /// certificate signed by `pki`'s CA when `mutual`; served by the service's own listener.
    pub async fn start_https(pki: &Pki, mutual: bool) -> Self {
        let ca = pki.dir.path().join("ca.pem");
        let tls = cps::tls::server_config(
            &pki.dir.path().join("server.pem"),
            &pki.dir.path().join("server.key"),
            mutual.then_some(ca.as_path()),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let script = Arc::new(Script::default());
        let app = router(script.clone());
        let task = tokio::spawn(async move {
            let (_stop, stop) = tokio::sync::watch::channel(false);
            let _ = cps::server::serve(
                listener,
                Some(tls),
                app,
                cps::server::Limits::default(),
                stop,
            )
            .await;
        });
        Self {
            port,
            base: format!("https://localhost:{port}"),
            script,
            task,
        }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn answer_next(&self, statuses: &[u16]) {
        self.script.plan.lock().unwrap().extend(statuses);
    }

    /// Sends `Retry-After: value` with every failure from now on.
    pub fn ask_to_retry_after(&self, value: &str) {
        *self.script.retry_after.lock().unwrap() = Some(value.to_owned());
    }

    pub fn answer_after(&self, delay: Duration) {
        *self.script.delay.lock().unwrap() = delay;
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.received.lock().unwrap().clone()
    }

    /// Waits (bounded) until at least `n` requests arrived, then a little longer to catch
    /// extras.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        while self.received().len() < n {
            assert!(
                Instant::now() < deadline,
                "expected {n} requests, got {:?}",
                self.received()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        self.received()
    }
}

fn router(script: Arc<Script>) -> axum::Router {
    axum::Router::new().fallback(receive).with_state(script)
}

impl Drop for FakeReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
