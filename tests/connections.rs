//! Connection hygiene, against the real binary: floods of connections that send half a request
//! or nothing, idle keep-alive connections, the connection cap, the TLS handshake deadline, the
//! open-files limit, and what the request log says about the client.
//!
//! Sized for CI (hundreds of connections, one-second timeouts), loopback only; the binary runs
//! on its embedded default (a SQLite file of the test's own).

#[path = "api/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The backend the support library assumes where a test names none.
pub const BACKEND: Backend = Backend::Sqlite;

/// The binary on a SQLite file of its own, with `env` on top; its log and address.
fn serve(dir: &tempfile::TempDir, env: &[(&str, &str)]) -> (Running, LogLines, String) {
    let db = format!("sqlite://{}", dir.path().join("cps.db").display());
    let mut all = vec![("CPS_DATABASE_URL", db.as_str())];
    all.extend_from_slice(env);
    start(&all)
}

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib / 1024
}

/// Open file descriptors of a process.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Whether the server closes `stream` before `deadline` (reads to EOF or a reset).
async fn closed_by(stream: &mut TcpStream, deadline: tokio::time::Instant) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

/// `/health/live` answered within a second, on a fresh connection.
async fn answers_within_a_second(addr: &str) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    client
        .get(format!("http://{addr}/health/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Opens `n` connections, each sending `first` (possibly nothing) and then nothing more.
async fn flood(addr: &str, n: usize, first: &[u8]) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        if !first.is_empty() {
            stream.write_all(first).await.unwrap();
        }
        streams.push(stream);
    }
    streams
}

async fn all_closed_within(streams: &mut [TcpStream], within: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + within;
    let mut closed = 0;
    for stream in streams.iter_mut() {
        if closed_by(stream, deadline).await {
            closed += 1;
        }
    }
    closed
}

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_closed_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _log, addr) = serve(&dir, &[("CPS_HEADER_TIMEOUT_SECS", "1")]);
    let before = rss_mib(server.id());
    // Each sends a request line and 16 KiB of one header, and never the blank line.
    let mut head = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 16 * 1024));
    let started = Instant::now();
    let mut streams = flood(&addr, 500, &head).await;
    let peak = rss_mib(server.id());
    assert!(
        answers_within_a_second(&addr).await,
        "ready during the flood"
    );
    let closed = all_closed_within(&mut streams, Duration::from_secs(3)).await;
    let after = rss_mib(server.id());
    eprintln!(
        "slow headers: 500 connections, {closed} closed in {:?}; RSS {before} → {peak} → {after} MiB",
        started.elapsed()
    );
    assert_eq!(closed, 500, "every half-sent request is cut off");
    assert!(
        peak < 100 && after < 100,
        "RSS {before} → {peak} → {after} MiB"
    );
    assert!(
        answers_within_a_second(&addr).await,
        "ready after the flood"
    );
}

#[tokio::test]
async fn connections_that_send_nothing_are_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _log, addr) = serve(&dir, &[("CPS_HEADER_TIMEOUT_SECS", "1")]);
    let mut streams = flood(&addr, 500, b"").await;
    assert!(
        answers_within_a_second(&addr).await,
        "ready during the flood"
    );
    let closed = all_closed_within(&mut streams, Duration::from_secs(3)).await;
    assert_eq!(closed, 500, "every silent connection is closed");
    assert!(rss_mib(server.id()) < 100);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, _log, addr) = serve(&dir, &[("CPS_IDLE_TIMEOUT_SECS", "1")]);
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Kept alive after the answer, then closed once idle for a second.
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    assert!(
        closed_by(&mut stream, deadline).await,
        "the idle connection stays open"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn at_the_connection_cap_the_idlest_connection_makes_room() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut log, addr) = serve(
        &dir,
        &[
            ("CPS_MAX_CONNECTIONS", "20"),
            ("CPS_HEADER_TIMEOUT_SECS", "60"),
        ],
    );
    let baseline = open_files(server.id());
    let mut idle = flood(&addr, 200, b"").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = open_files(server.id());
    assert!(
        held <= baseline + 20 + 2,
        "open files {baseline} → {held} with a cap of 20"
    );
    // A real request still gets through at once, at the expense of an idle connection.
    assert!(answers_within_a_second(&addr).await);
    let evicted = all_closed_within(&mut idle, Duration::from_secs(2)).await;
    assert!(
        evicted >= 180,
        "{evicted} of 200 idle connections closed to make room"
    );
    let lines = log.drain();
    let cap_lines: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("connection limit reached"))
        .collect();
    // Said, but not once per connection: repeated warnings are rate-limited.
    assert!(!cap_lines.is_empty(), "the cap is logged");
    assert!(cap_lines.len() <= 2, "{cap_lines:#?}");
}

#[tokio::test]
async fn a_tls_handshake_that_never_starts_is_cut_off() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let cert = pki.dir.path().join("server.pem");
    let key = pki.dir.path().join("server.key");
    let (_server, _log, addr) = serve(
        &dir,
        &[
            ("CPS_TLS_CERT", cert.to_str().unwrap()),
            ("CPS_TLS_KEY", key.to_str().unwrap()),
            ("CPS_TLS_HANDSHAKE_TIMEOUT_SECS", "1"),
            ("CPS_HEADER_TIMEOUT_SECS", "60"),
        ],
    );
    let mut streams = flood(&addr, 50, b"").await;
    let started = Instant::now();
    assert_eq!(
        all_closed_within(&mut streams, Duration::from_secs(3)).await,
        50
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn request_lines_name_the_client_and_its_certificate_subject() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = (
        pki.dir.path().join("server.pem"),
        pki.dir.path().join("server.key"),
        pki.dir.path().join("ca.pem"),
    );
    let (server, mut log, addr) = serve(
        &dir,
        &[
            ("CPS_TLS_CERT", cert.to_str().unwrap()),
            ("CPS_TLS_KEY", key.to_str().unwrap()),
            ("CPS_TLS_CLIENT_CA", ca.to_str().unwrap()),
        ],
    );
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let reply = https_client(&pki, addr, true)
        .get(format!("https://localhost:{}/health/live", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = log.drain();
    let line = lines
        .iter()
        .find(|l| l.contains("request handled"))
        .unwrap_or_else(|| panic!("no request line in {lines:#?}"));
    assert!(line.contains("client=\"127.0.0.1:"), "{line}");
    assert!(
        line.contains("client_cert=") && line.contains("CN="),
        "{line}"
    );
    // The soft open-files limit was raised to the hard one.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.id())).unwrap();
    let files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers[0], numbers[1], "{files}");
}

#[tokio::test]
async fn tls_on_a_public_address_without_client_certificates_is_warned_about() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (
        pki.dir.path().join("server.pem"),
        pki.dir.path().join("server.key"),
    );
    let (_server, mut log, _addr) = serve(
        &dir,
        &[
            ("CPS_LISTEN", "0.0.0.0:0"),
            ("CPS_TLS_CERT", cert.to_str().unwrap()),
            ("CPS_TLS_KEY", key.to_str().unwrap()),
        ],
    );
    let lines = log.drain();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("WARN") && l.contains("without --tls-client-ca")),
        "{lines:#?}"
    );
}

/// The admin listener is bounded like the API's: silent and half-sent connections are cut off
/// after the header timeout, idle ones after the idle timeout.
#[tokio::test]
async fn the_admin_listener_cuts_off_silent_half_sent_and_idle_connections() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let admin = format!("127.0.0.1:{port}");
    let (server, _log, _addr) = serve(
        &dir,
        &[
            ("CPS_ADMIN_LISTEN", admin.as_str()),
            ("CPS_HEADER_TIMEOUT_SECS", "1"),
            ("CPS_IDLE_TIMEOUT_SECS", "1"),
        ],
    );
    let mut silent = flood(&admin, 100, b"").await;
    let mut half = flood(
        &admin,
        100,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: aaaa",
    )
    .await;
    assert!(
        answers_within_a_second(&admin).await,
        "ready during the flood"
    );
    assert_eq!(
        all_closed_within(&mut silent, Duration::from_secs(3)).await,
        100
    );
    assert_eq!(
        all_closed_within(&mut half, Duration::from_secs(3)).await,
        100
    );
    let mut idle = TcpStream::connect(&admin).await.unwrap();
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    assert!(
        closed_by(&mut idle, deadline).await,
        "the idle connection stays open"
    );
    assert!(rss_mib(server.id()) < 100);
}
