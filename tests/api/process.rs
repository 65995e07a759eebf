//! The service as an operator runs it: the real binary's configuration errors and logs, and the
//! TLS listener.

use std::process::Command;

use cps::startup::Application;
use serde_json::{Value, json};

use super::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_cps");

fn cps(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("CPS_LISTEN")
        .env_remove("CPS_DATABASE_URL")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Flags, environment, and the setting the error line must name.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn invalid_configuration_stops_the_start_with_one_line_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("x.db").display());
    let cases: [Case; 18] = [
        (&["--listen", "nowhere"], &[], "--listen / CPS_LISTEN"),
        (
            &["--admin-listen", "nowhere"],
            &[],
            "--admin-listen / CPS_ADMIN_LISTEN",
        ),
        (&[], &[("CPS_LISTEN", "1.2.3.4")], "--listen / CPS_LISTEN"),
        (
            &["serve", "--default-language", "de_AT"],
            &[],
            "--default-language / CPS_DEFAULT_LANGUAGE",
        ),
        (
            &[],
            &[("CPS_DEFAULT_COUNTRY", "XX")],
            "--default-country / CPS_DEFAULT_COUNTRY",
        ),
        (
            &["--database-url", "mysql://db"],
            &[],
            "--database-url / CPS_DATABASE_URL",
        ),
        // One endpoint that follows the primary; libpq's host lists and session choice are
        // refused, not silently ignored.
        (
            &["--database-url", "postgres://cps:pw@db1:5432,db2:5432/cps"],
            &[],
            "--database-url / CPS_DATABASE_URL: several hosts",
        ),
        (
            &[
                "--database-url",
                "postgres://db/cps?target_session_attrs=read-write",
            ],
            &[],
            "--database-url / CPS_DATABASE_URL: target_session_attrs",
        ),
        (
            &["--request-timeout-secs", "0"],
            &[],
            "--request-timeout-secs / CPS_REQUEST_TIMEOUT_SECS",
        ),
        (&["--listen", "0.0.0.0:8080"], &[], "--plain-http"),
        (
            &["--max-connections", "0"],
            &[],
            "--max-connections / CPS_MAX_CONNECTIONS",
        ),
        (
            &[],
            &[("CPS_MAX_IN_FLIGHT", "many")],
            "--max-in-flight / CPS_MAX_IN_FLIGHT",
        ),
        (
            &["--header-timeout-secs", "0"],
            &[],
            "--header-timeout-secs / CPS_HEADER_TIMEOUT_SECS",
        ),
        (
            &["--allowed-origins", "desk.example.com"],
            &[],
            "--allowed-origins / CPS_ALLOWED_ORIGINS",
        ),
        (
            &["--allowed-origins", "https://desk.example.com/console"],
            &[],
            "--allowed-origins / CPS_ALLOWED_ORIGINS",
        ),
        (
            &[],
            &[("CPS_ACTIVATION_MAX_FAILURES", "0")],
            "--activation-max-failures / CPS_ACTIVATION_MAX_FAILURES",
        ),
        (
            &["--tls-cert", "/nonexistent.pem"],
            &[],
            "--tls-key / CPS_TLS_KEY",
        ),
        (
            &[
                "--tls-cert",
                "/nonexistent.pem",
                "--tls-key",
                "/nonexistent.key",
            ],
            &[],
            "--tls-cert / CPS_TLS_CERT",
        ),
    ];
    for (args, env, setting) in cases {
        let out = cps(args, env)
            .env("CPS_DATABASE_URL", &db)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(setting), "{args:?}: {stderr}");
        assert!(!stderr.contains(":pw@"), "a password repeated: {stderr}");
    }
    // Flags win over the environment.
    let out = cps(&["--listen", "nowhere"], &[("CPS_LISTEN", "127.0.0.1:0")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn logs_tell_what_happened_without_phone_numbers_or_pin_hmacs() {
    for format in ["text", "json"] {
        // On this binary's backend: the cache and PostgreSQL paths must not leak either.
        let Some((db, prefix)) = TestApp::resources(backend()).await else {
            return;
        };
        let redis = redis_url();
        let mut env = vec![
            ("CPS_DATABASE_URL", db.url.as_str()),
            ("RUST_LOG", "debug"),
            ("CPS_LOG_FORMAT", format),
        ];
        if let Some(prefix) = &prefix {
            env.push(("CPS_REDIS_URL", redis.as_str()));
            env.push(("CPS_REDIS_PREFIX", prefix.0.as_str()));
        }
        let (mut child, mut lines, addr) = start(&env);
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/alcs/loyalty/v1/loyalty-cards/{CARD}");
        let secret_phone = "+48 601 999 888";
        let mut body = registration(CARD);
        body["LoyaltyCard"]["PhoneNumber"] = json!(secret_phone);
        let r = client
            .put(&url)
            .header("x-request-id", "till-42-registration")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        for phone in [secret_phone, "+48 601 999 887"] {
            client
                .post(format!("{url}/activate"))
                .json(&json!({ "PhoneNumber": phone }))
                .send()
                .await
                .unwrap();
        }
        client
            .patch(&url)
            .json(&json!({ "PhoneNumber": "+48 601 999 886" }))
            .send()
            .await
            .unwrap();
        // A refused PIN and a refused phone must not be echoed either.
        body["LoyaltyCard"]["CardPinHMac"] = json!(format!("{PIN}\n"));
        client.put(&url).json(&body).send().await.unwrap();
        client
            .patch(&url)
            .header("x-request-id", "till-42-bad-phone")
            .json(&json!({ "PhoneNumber": "+48 601 999 88x" }))
            .send()
            .await
            .unwrap();
        child.stop();
        let lines = lines.drain();
        let log = lines.join("\n");
        assert!(log.contains("card registered"), "{log}");
        assert!(log.contains("card updated"), "{log}");
        assert!(
            !log.contains('\u{1b}'),
            "no colour codes when not on a terminal"
        );
        // Each line without its timestamp, whose digits may spell a fragment by chance
        // (`18.099988Z`).
        let untimed: Vec<String> = lines
            .iter()
            .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
                Ok(mut v) if format == "json" => {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("timestamp");
                    }
                    v.to_string()
                }
                _ => l
                    .split_once(' ')
                    .map_or(l.clone(), |(_, rest)| rest.to_owned()),
            })
            .collect();
        // Random ids too (request and customer ids, the test's key prefix: 32 hex digits),
        // which spell a fragment by chance as well (`…f999884c…`).
        // And measurements with a fraction (`elapsed=199.988µs`): no phone number has one.
        let untimed = without_fractions(&without_random_ids(&untimed.join("\n")));
        for secret in [PIN, "601999", "601 999", "999888", "999 888", "99988"] {
            assert!(!untimed.contains(secret), "{secret:?} in the log:\n{log}");
        }
        // The line of each request, and what the service logged for it, name its request id.
        let with_id = |message: &str, id: &str| match format {
            "json" => lines.iter().any(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["message"] == message
                    && v["spans"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|s| s["request_id"] == id))
            }),
            _ => lines
                .iter()
                .any(|l| l.contains(message) && l.contains(&format!("request_id={id}"))),
        };
        assert!(with_id("card registered", "till-42-registration"), "{log}");
        // What the service logs is in the operation's span too, which names the card.
        let in_operation = |l: &&String| match format {
            "json" => {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["message"] == "card registered"
                    && v["span"]["name"] == "register"
                    && v["span"]["card_number"] == CARD
            }
            _ => l.contains(&format!("register{{card_number={CARD}}}")),
        };
        assert!(lines.iter().any(|l| in_operation(&l)), "{log}");
        assert!(with_id("request handled", "till-42-registration"), "{log}");
        assert!(with_id("request handled", "till-42-bad-phone"), "{log}");
        if format == "json" {
            for line in &lines {
                let v: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                for field in ["timestamp", "level", "target"] {
                    assert!(v[field].is_string(), "{field} in {line}");
                }
                // Ours always have a message (sqlx's debug lines carry a `summary` instead).
                if v["target"].as_str().is_some_and(|t| t.starts_with("cps")) {
                    assert!(v["message"].is_string(), "message in {line}");
                }
            }
            assert!(log.contains(r#""status":400"#), "{log}");
            assert!(log.contains(r#""message":"database: "#), "{log}");
        } else {
            assert!(log.contains("status=400"), "{log}");
            assert!(log.contains("database: "), "{log}");
        }
        assert!(
            !log.contains("password"),
            "the start-up line names the database without credentials"
        );
    }
}

async fn tls_app(pki: &Pki, mutual: bool) -> std::net::SocketAddr {
    let db = format!("sqlite://{}", pki.dir.path().join("cps.db").display());
    let mut c = config(&db);
    c.tls = Some(cps::tls::ServerFiles {
        cert: pki.dir.path().join("server.pem"),
        key: pki.dir.path().join("server.key"),
        client_ca: mutual.then(|| pki.dir.path().join("ca.pem")),
    });
    let app = Application::build(c).await.unwrap();
    let addr = app.local_addr();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    addr
}

#[tokio::test]
async fn tls_serves_the_api_and_refuses_plain_http() {
    let pki = pki();
    let addr = tls_app(&pki, false).await;
    let url = format!("https://localhost:{}/health/live", addr.port());
    let reply = https_client(&pki, addr, false)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}/health/live"))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    // TLS 1.2 is still offered (the source demands it); 1.3 is preferred.
    let tls12 = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    assert_eq!(tls12.get(&url).send().await.unwrap().status().as_u16(), 200);
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_configured_ca() {
    let pki = pki();
    let addr = tls_app(&pki, true).await;
    let url = format!("https://localhost:{}/health/live", addr.port());
    let anonymous = https_client(&pki, addr, false).get(&url).send().await;
    assert!(
        anonymous.is_err(),
        "a client without a certificate is refused"
    );
    let reply = https_client(&pki, addr, true)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
}

#[test]
fn maintenance_commands_list_only_the_settings_they_read() {
    let help = |args: &[&str]| {
        let out = cps(args, &[]).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    for args in [
        &["outbox", "--help"][..],
        &["outbox", "retry", "--help"],
        &["cache", "--help"],
        &["cache", "rebuild", "--help"],
        &["migrate", "--help"],
    ] {
        let text = help(args);
        assert!(text.contains("--database-url"), "{args:?}:\n{text}");
        assert!(text.contains("--redis-ca-file"), "{args:?}:\n{text}");
        for serving in [
            "--listen",
            "--tls-cert",
            "--max-in-flight",
            "--alcs-activation-url",
            "--support-tokens-file",
        ] {
            assert!(!text.contains(serving), "{serving} in {args:?}:\n{text}");
        }
    }
    // The desk's users: the tokens file, and nothing of the database's.
    let text = help(&["support", "token", "add", "--help"]);
    assert!(text.contains("--support-tokens-file"), "{text}");
    for other in ["--database-url", "--redis-url", "--listen"] {
        assert!(
            !text.contains(other),
            "{other} in support token add --help:\n{text}"
        );
    }
    let text = help(&["serve", "--help"]);
    for serving in [
        "--listen",
        "--admin-listen",
        "--tls-cert",
        "--max-in-flight",
        "--log-format",
    ] {
        assert!(text.contains(serving), "{serving} in serve --help:\n{text}");
    }
    // Still accepted after a maintenance command, and checked.
    let out = cps(&["outbox", "--listen", "nowhere"], &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen / CPS_LISTEN"));
}

/// With the `otlp` feature, spans reach a collector. The collector here is the tests' fake
/// receiver, which keeps what is posted to `/v1/traces` (OTLP/HTTP, protobuf, where span names
/// travel as plain UTF-8).
#[cfg(feature = "otlp")]
// Two threads: the collector keeps answering while the test waits for the process to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_to_an_otlp_collector() {
    let Some((db, _)) = TestApp::resources(Backend::Sqlite).await else {
        return;
    };
    let collector = FakeReceiver::start().await;
    let endpoint = collector.url("/v1/traces");
    let (mut child, _lines, addr) = start(&[
        ("CPS_DATABASE_URL", db.url.as_str()),
        ("CPS_OTLP_ENDPOINT", endpoint.as_str()),
    ]);
    let url = format!("http://{addr}/alcs/loyalty/v1/loyalty-cards/{CARD}");
    let r = reqwest::Client::new()
        .put(&url)
        .json(&registration(CARD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // A graceful stop sends what is still batched.
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(
        child
            .wait_for_exit(std::time::Duration::from_secs(20))
            .is_some(),
        "the server stops"
    );
    let received = collector.received();
    assert!(!received.is_empty(), "no spans reached the collector");
    let body: Vec<u8> = received.iter().flat_map(|r| r.body.clone()).collect();
    assert!(received.iter().all(|r| r.method == "POST"
        && r.path == "/v1/traces"
        && r.header("content-type") == Some("application/x-protobuf")));
    for name in ["request", "register", "transaction", "cps"] {
        assert!(
            body.windows(name.len()).any(|w| w == name.as_bytes()),
            "span {name:?} not exported"
        );
    }
    // Spans carry the card number, never the phone number.
    assert!(!body.windows(9).any(|w| w == b"602123789"));
}

/// SIGTERM starts a drain: readiness answers 503 at once while new connections are still
/// accepted and served for the shutdown delay; then the process stops by itself, cleanly.
// Multi-threaded: requests go on while this thread waits for the process to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readiness_503_while_requests_are_served_for_the_delay() {
    let Some((db, _prefix)) = TestApp::resources(Backend::Sqlite).await else {
        return;
    };
    let admin_port = free_port();
    let admin = format!("127.0.0.1:{admin_port}");
    let (mut child, mut logs, addr) = start(&[
        ("CPS_DATABASE_URL", db.url.as_str()),
        ("CPS_ADMIN_LISTEN", admin.as_str()),
        ("CPS_SHUTDOWN_DELAY_SECS", "2"),
    ]);
    // No pooled connections: each request below opens a new one.
    let fresh = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    let ready = || async {
        fresh()
            .get(format!("http://{admin}/health/ready"))
            .send()
            .await
            .map(|r| r.status().as_u16())
    };
    assert_eq!(ready().await.unwrap(), 200);
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let signalled = std::time::Instant::now();
    while ready().await.unwrap() != 503 {
        assert!(
            signalled.elapsed() < std::time::Duration::from_secs(1),
            "readiness still 200 a second after SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Still accepting and serving: a new connection gets its answer.
    let url = format!("http://{addr}/alcs/loyalty/v1/loyalty-cards/{CARD}");
    let r = fresh().get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(
        signalled.elapsed() < std::time::Duration::from_secs(2),
        "the checks above ran inside the delay"
    );
    let status = child.wait_for_exit(std::time::Duration::from_secs(20));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "a clean exit");
    assert!(
        signalled.elapsed() >= std::time::Duration::from_secs(2),
        "stopped before the delay was over"
    );
    // The process has exited; its last lines may still be on their way through the pipe.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut lines = logs.drain().join("\n");
    while !lines.contains("shut down") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        lines = logs.drain().join("\n");
    }
    assert!(lines.contains("readiness answers 503"), "{lines}");
    assert!(lines.contains("no longer accepting"), "{lines}");
}

/// The embedded default starts on a machine that runs a Prometheus server (port 9090 taken):
/// the admin listener's default port is none of Prometheus's.
#[test]
fn the_default_admin_port_is_not_prometheus_s() {
    if backend() != Backend::Sqlite {
        return;
    }
    // Held for the test: a Prometheus server (or anything) on 9090. Taken already is as good.
    let _prometheus = std::net::TcpListener::bind("127.0.0.1:9090");
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cps"))
        .current_dir(dir.path())
        .env_remove("CPS_ADMIN_LISTEN")
        .env_remove("CPS_DATABASE_URL")
        .env_remove("CPS_REDIS_URL")
        .env("CPS_LISTEN", "127.0.0.1:0")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut seen = Vec::new();
    for line in lines.map_while(Result::ok) {
        let admin = line.contains("admin listener");
        seen.push(line);
        if admin || seen.len() > 40 {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let said = seen.join("\n");
    let admin = said
        .lines()
        .find(|l| l.contains("admin listener"))
        .unwrap_or_else(|| panic!("the admin listener did not start:\n{said}"));
    let port: u16 = admin
        .split("admin=127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no admin address in {admin:?}"));
    assert!(!(9090..=9999).contains(&port), "{port} is Prometheus's");
}

/// `text` with every run of 32 or more hexadecimal digits (a random id) replaced by `<id>`.
/// `text` with every number that has a fractional part (`0.000199988`, `199.988`) left out.
fn without_fractions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() || c == '.' {
            run.push(c);
            continue;
        }
        let fraction = run.split_once('.').is_some_and(|(whole, part)| {
            whole.ends_with(|d: char| d.is_ascii_digit())
                && part.starts_with(|d: char| d.is_ascii_digit())
        });
        out.push_str(if fraction { "<n>" } else { &run });
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}

fn without_random_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() >= 32 { "<id>" } else { &run });
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}

#[test]
fn leaving_out_fractions_keeps_a_phone_number_to_be_found() {
    assert_eq!(
        without_fractions("elapsed=199.988µs phone=+48 601 999 888 at 18.099988Z, 5."),
        "elapsed=<n>µs phone=+48 601 999 888 at <n>Z, 5."
    );
}

/// The portal's secrets and the customer's personal data never reach the log, at debug level
/// and in both formats: not the PIN, the password, a session id, an SMS code, the names, the
/// e-mail or the address.
#[tokio::test]
async fn the_portal_logs_no_secret_and_no_personal_datum() {
    let gateway = FakeReceiver::start().await;
    for format in ["text", "json"] {
        let Some((db, prefix)) = TestApp::resources(backend()).await else {
            return;
        };
        let (_keys, key_file) = key_file();
        let key_path = key_file.display().to_string();
        let sms_url = gateway.url("/sms");
        let redis = redis_url();
        let mut env = vec![
            ("CPS_DATABASE_URL", db.url.as_str()),
            ("RUST_LOG", "debug"),
            ("CPS_LOG_FORMAT", format),
            ("CPS_PORTAL_LISTEN", "127.0.0.1:0"),
            ("CPS_PIN_HMAC_KEY_FILE", key_path.as_str()),
            ("CPS_SMS_GATEWAY_URL", sms_url.as_str()),
        ];
        if let Some(prefix) = &prefix {
            env.push(("CPS_REDIS_URL", redis.as_str()));
            env.push(("CPS_REDIS_PREFIX", prefix.0.as_str()));
        }
        let (mut child, mut lines, addr) = start(&env);
        let early = lines.drain().join("\n");
        let portal = early
            .split(|c: char| c.is_whitespace() || c == '"' || c == ',')
            .find_map(|w| w.strip_prefix("portal=").map(str::to_owned))
            .or_else(|| {
                early
                    .find("\"portal\":\"")
                    .map(|at| early[at + 10..].split('"').next().unwrap().to_owned())
            })
            .unwrap_or_else(|| panic!("the portal's address in {early}"));
        let client = reqwest::Client::new();
        let pin = "59041773";
        let card = "79500000000099";
        let mut body = registration(card);
        body["LoyaltyCard"]["CardPinHMac"] = json!(pin_hmac(card, pin));
        let r = client
            .put(format!(
                "http://{addr}/alcs/loyalty/v1/loyalty-cards/{card}"
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let base = format!("http://{portal}/loyalty/v1");
        let call =
            |method: reqwest::Method, path: &str, session: Option<&str>, body: Option<Value>| {
                let mut req = client.request(method, format!("{base}{path}"));
                if let Some(s) = session {
                    req = req.bearer_auth(s);
                }
                if let Some(b) = body {
                    req = req.json(&b);
                }
                req.send()
            };
        let signed: Value = call(
            reqwest::Method::POST,
            "/login",
            None,
            Some(json!({ "CardNumber": card, "Password": pin })),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let session = signed["SessionId"].as_str().unwrap().to_owned();
        let password = "Zielony-Parasol-42!";
        call(
            reqwest::Method::POST,
            "/customers/current/password",
            Some(&session),
            Some(json!({ "OldPassword": pin, "NewPassword": password })),
        )
        .await
        .unwrap();
        // A wrong password and a wrong PIN are refused without being echoed.
        call(
            reqwest::Method::POST,
            "/login",
            None,
            Some(json!({ "CardNumber": card, "Password": "Czerwony-Kalosz-17?" })),
        )
        .await
        .unwrap();
        let profile = call(
            reqwest::Method::GET,
            "/customers/current",
            Some(&session),
            None,
        )
        .await
        .unwrap();
        let tag = profile.headers()["etag"].to_str().unwrap().to_owned();
        client
            .patch(format!("{base}/customers/current"))
            .bearer_auth(&session)
            .header("if-match", tag)
            .json(&json!({ "FirstName": "Bożydar", "LastName": "Wiśniewski", "Email": "bozydar.w@example.pl", "Street": "Mariacka", "City": "Gdańsk" }))
            .send()
            .await
            .unwrap();
        call(reqwest::Method::POST, "/step-up/code", Some(&session), None)
            .await
            .unwrap();
        let sent = gateway
            .wait_for(
                if format == "text" { 1 } else { 2 },
                std::time::Duration::from_secs(10),
            )
            .await;
        let text = sent.last().unwrap().json()["Text"]
            .as_str()
            .unwrap()
            .to_owned();
        let code: String = text
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .unwrap()
            .to_owned();
        call(
            reqwest::Method::POST,
            "/step-up",
            Some(&session),
            Some(json!({ "Code": code })),
        )
        .await
        .unwrap();
        call(
            reqwest::Method::GET,
            "/customers/current/export",
            Some(&session),
            None,
        )
        .await
        .unwrap();
        call(reqwest::Method::POST, "/logout", Some(&session), None)
            .await
            .unwrap();
        child.stop();
        let log = lines.drain().join("\n");
        assert!(log.contains("portal session opened"), "{log}");
        assert!(log.contains("profile updated"), "{log}");
        for secret in [
            session.as_str(),
            &session[4..],
            password,
            "Czerwony-Kalosz-17?",
            "Bożydar",
            "Wiśniewski",
            "bozydar.w",
            "Mariacka",
            "Gdańsk",
            text.as_str(),
        ] {
            assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
        }
        // Digits only after leaving out what spells digits by chance (times, ids, fractions).
        let untimed: Vec<String> = log
            .lines()
            .map(|l| match serde_json::from_str::<Value>(l) {
                Ok(mut v) if format == "json" => {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("timestamp");
                    }
                    v.to_string()
                }
                _ => l
                    .split_once(' ')
                    .map_or(l.to_owned(), |(_, rest)| rest.to_owned()),
            })
            .collect();
        let untimed = without_fractions(&without_random_ids(&untimed.join("\n")));
        for secret in [pin, code.as_str()] {
            assert!(!untimed.contains(secret), "{secret:?} in the log:\n{log}");
        }
    }
}
