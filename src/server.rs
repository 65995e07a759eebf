//! Accepting and serving connections, plain or TLS, with bounds on what one client can hold.
//!
//! `axum::serve` gives hyper no timer and keeps any connection as long as the peer likes; one
//! client could hold every file descriptor or gigabytes of half-sent headers. Here every
//! connection has a deadline in each phase — the TLS handshake, the first request's headers,
//! the idle time between requests — hyper's buffers are bounded, and the number of open
//! connections is capped. At the cap, the connection idle the longest is closed to make room
//! (a client that sends nothing must not lock out one that has a request); only when every
//! connection has a request in progress does accepting pause.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::http::{Client, MAX_HEADER_BYTES, MAX_HEADERS, MAX_URI_BYTES};

/// hyper's own limits, derived from the application's (`http::middleware`) and well above them,
/// so that any request hyper can parse reaches the application and is refused in the
/// contract's envelope; only beyond them (a head over 64 KiB, or over 1,024 fields) does hyper
/// answer 431 or 400 without a body. A buffer of four times the longest target and header block
/// the application accepts; the header slots sixteen times its field count, and 1,024 fields
/// of the 64 bytes a real client's shortest lines take fill the buffer. The slots cost nothing
/// until used: hyper keeps them uninitialised.
const HYPER_MAX_BUF: usize = 4 * (MAX_URI_BYTES + MAX_HEADER_BYTES + 4 * 1024);
const HYPER_MAX_HEADERS: usize = 16 * MAX_HEADERS;
const H2_MAX_HEADER_LIST: u32 = HYPER_MAX_BUF as u32;
const H2_MAX_STREAMS: u32 = 64;

/// How long an evicted connection with no request in progress has to finish flushing its last
/// answer before it is closed.
const EVICT_GRACE: Duration = Duration::from_millis(100);

/// How one listener treats its connections. The defaults are those of `cps serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most; beyond it the idlest is closed, or accepting waits.
    pub max_connections: usize,
    /// A request's headers must arrive within this, and a new connection must send its first
    /// request within it.
    pub header_timeout: Duration,
    /// A connection with no request in progress is closed after this long. (hyper's HTTP/1.1
    /// header timer also runs while it waits for the next request: the shorter applies.)
    pub idle_timeout: Duration,
    /// A TLS handshake must finish within this.
    pub tls_handshake_timeout: Duration,
    /// How long requests in progress get to finish after the shutdown signal.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 2048,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            grace: Duration::from_secs(10),
        }
    }
}

/// Raises this process's soft limit on open files to the hard limit (commonly 1,024 → 524,288),
/// so that the connection cap, not the kernel, decides how many clients are served. Returns
/// the soft limit now in force, when it is known.
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-files limit");
            None
        }
    }
}

/// Serves `router` on `listener` until `stop` turns true, then lets requests in progress finish
/// for `limits.grace`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(HYPER_MAX_BUF)
        .max_headers(HYPER_MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(H2_MAX_HEADER_LIST)
        .max_concurrent_streams(H2_MAX_STREAMS);
    let builder = Arc::new(builder);
    let tls = tls.map(TlsAcceptor::from);
    let registry = Arc::new(Registry::new(limits.max_connections));
    let epoch = Instant::now();

    loop {
        // At the cap with every connection busy: wait for one to close before accepting more.
        tokio::select! {
            () = registry.wait_for_room() => {}
            () = stopped(&mut stop) => break,
        }
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE/ENFILE/ENOBUFS: the system is short of something. Waiting a little
                    // lets closing connections give it back instead of spinning on the error.
                    crate::warn_limited!("accept", error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let conn = registry.open(epoch);
        let task = Connection {
            state: conn,
            registry: registry.clone(),
            builder: builder.clone(),
            router: router.clone(),
            limits: limits.clone(),
            epoch,
            stop: stop.clone(),
        };
        let tls = tls.clone();
        tokio::spawn(task.run(stream, peer, tls));
    }
    drop(listener);
    // Every connection saw `stop` and is finishing its requests; wait for them, bounded.
    let deadline = Instant::now() + limits.grace + Duration::from_secs(1);
    while registry.count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// One open connection, as the registry and the connection's own task see it.
struct ConnState {
    id: u64,
    /// Requests in progress.
    busy: AtomicUsize,
    /// Whether a request has been seen (the first one gets `header_timeout`, later gaps
    /// `idle_timeout`).
    served: AtomicBool,
    /// Milliseconds since the server's epoch at the last request's end (or the accept).
    last_active: AtomicU64,
    /// Asked to close to make room for a new connection.
    evict: Notify,
    /// A request ended: the idle deadline moved.
    ended: Notify,
}

impl ConnState {
    fn idle_deadline(&self, limits: &Limits, epoch: Instant) -> Instant {
        let gap = if self.served.load(Ordering::Acquire) {
            limits.idle_timeout
        } else {
            limits.header_timeout
        };
        epoch + Duration::from_millis(self.last_active.load(Ordering::Acquire)) + gap
    }
}

/// Marks a request in progress on its connection for as long as it lives.
struct Busy {
    state: Arc<ConnState>,
    epoch: Instant,
}

impl Busy {
    fn start(state: &Arc<ConnState>, epoch: Instant) -> Self {
        state.busy.fetch_add(1, Ordering::AcqRel);
        state.served.store(true, Ordering::Release);
        Self {
            state: state.clone(),
            epoch,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.state
            .last_active
            .store(millis_since(self.epoch), Ordering::Release);
        self.state.busy.fetch_sub(1, Ordering::AcqRel);
        self.state.ended.notify_one();
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The open connections, oldest first.
struct Registry {
    max: usize,
    inner: Mutex<Inner>,
    /// Signalled whenever a connection closes.
    closed: Notify,
}

struct Inner {
    next_id: u64,
    /// Evicted connections leave this at once, while they finish closing.
    open: BTreeMap<u64, Arc<ConnState>>,
}

impl Registry {
    fn new(max: usize) -> Self {
        Self {
            max,
            inner: Mutex::new(Inner {
                next_id: 0,
                open: BTreeMap::new(),
            }),
            closed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count(&self) -> usize {
        self.lock().open.len()
    }

    /// Returns once a new connection may be accepted: below the cap, or after asking the
    /// connection idle the longest to close.
    async fn wait_for_room(&self) {
        let mut logged = false;
        loop {
            let closed = self.closed.notified();
            {
                let mut inner = self.lock();
                if inner.open.len() < self.max {
                    return;
                }
                let idlest = inner
                    .open
                    .values()
                    .filter(|c| c.busy.load(Ordering::Acquire) == 0)
                    .min_by_key(|c| c.last_active.load(Ordering::Acquire))
                    .cloned();
                if let Some(idlest) = idlest {
                    inner.open.remove(&idlest.id);
                    drop(inner);
                    idlest.evict.notify_one();
                    crate::warn_limited!(
                        "connection-cap-evict",
                        max_connections = self.max,
                        "connection limit reached: closing the connection idle the longest"
                    );
                    return;
                }
            }
            if !logged {
                crate::warn_limited!(
                    "connection-cap-wait",
                    max_connections = self.max,
                    "connection limit reached and every connection is busy: not accepting until one closes"
                );
                logged = true;
            }
            closed.await;
        }
    }

    fn open(&self, epoch: Instant) -> Arc<ConnState> {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        let state = Arc::new(ConnState {
            id,
            busy: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            last_active: AtomicU64::new(millis_since(epoch)),
            evict: Notify::new(),
            ended: Notify::new(),
        });
        inner.open.insert(id, state.clone());
        state
    }

    fn close(&self, id: u64) {
        self.lock().open.remove(&id);
        self.closed.notify_waiters();
    }
}

struct Connection {
    state: Arc<ConnState>,
    registry: Arc<Registry>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    limits: Limits,
    epoch: Instant,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream, peer: SocketAddr, tls: Option<TlsAcceptor>) {
        // Small JSON answers: send them now rather than wait for more to coalesce.
        let _ = stream.set_nodelay(true);
        match tls {
            None => {
                let client = Client {
                    addr: peer,
                    subject: None,
                };
                self.http(stream, client).await;
            }
            Some(acceptor) => {
                let handshake = tokio::time::timeout(
                    self.limits.tls_handshake_timeout,
                    acceptor.accept(stream),
                );
                let stream = tokio::select! {
                    done = handshake => match done {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(client = %peer, error = %e, "TLS handshake failed");
                            return self.registry.close(self.state.id);
                        }
                        Err(_) => {
                            tracing::debug!(client = %peer, "TLS handshake timed out");
                            return self.registry.close(self.state.id);
                        }
                    },
                    () = self.state.evict.notified() => return self.registry.close(self.state.id),
                    () = stopped(&mut self.stop) => return self.registry.close(self.state.id),
                };
                let subject = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|cert| subject_of(cert.as_ref()));
                let client = Client {
                    addr: peer,
                    subject,
                };
                self.http(stream, client).await;
            }
        }
        self.registry.close(self.state.id);
    }

    async fn http<IO>(&mut self, io: IO, client: Client)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (router, state, epoch) = (self.router.clone(), self.state.clone(), self.epoch);
        let addr = client.addr;
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(client.clone());
            let busy = Busy::start(&state, epoch);
            let mut router = router.clone();
            async move {
                let response = tower_service::Service::call(&mut router, req).await;
                drop(busy);
                response
            }
        });
        let conn = self.builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let mut closing: Option<Instant> = None;
        loop {
            let idle_at = if self.state.busy.load(Ordering::Acquire) > 0 {
                Instant::now() + self.limits.idle_timeout
            } else {
                self.state.idle_deadline(&self.limits, epoch)
            };
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(client = %addr, error = %e, "connection ended with an error");
                    }
                    return;
                }
                // Only to recompute the idle deadline at the top of the loop.
                () = self.state.ended.notified(), if closing.is_none() => {}
                () = self.state.evict.notified(), if closing.is_none() => {
                    conn.as_mut().graceful_shutdown();
                    // No request in progress: the last answer may still be flushing, which takes
                    // moments; a half-sent request head, which a graceful close would wait for,
                    // is cut off after those. A request that began since the choice may finish.
                    let grace = if self.state.busy.load(Ordering::Acquire) == 0 {
                        EVICT_GRACE
                    } else {
                        self.limits.grace
                    };
                    closing = Some(Instant::now() + grace);
                }
                () = tokio::time::sleep_until(idle_at), if closing.is_none() => {
                    let idle = self.state.busy.load(Ordering::Acquire) == 0
                        && Instant::now() >= self.state.idle_deadline(&self.limits, epoch);
                    if idle {
                        conn.as_mut().graceful_shutdown();
                        closing = Some(Instant::now() + self.limits.grace);
                    }
                }
                () = stopped(&mut self.stop), if closing.is_none() => {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(Instant::now() + self.limits.grace);
                }
                () = tokio::time::sleep_until(closing.unwrap_or_else(Instant::now)), if closing.is_some() => {
                    // Graceful close did not finish in time (a response the peer does not read).
                    return;
                }
            }
        }
    }
}

/// Completes once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The borrow `wait_for` returns is dropped here, not held in the caller's future.
    let _ = stop.wait_for(|s| *s).await;
}

/// A client certificate's subject (`CN=till-17,O=Shop`), or `None` when it does not parse.
fn subject_of(der: &[u8]) -> Option<Arc<str>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject().to_string();
    // Printable, bounded: it goes into log lines.
    let clean: String = subject
        .chars()
        .filter(|c| !c.is_control())
        .take(256)
        .collect();
    Some(clean.into())
}
