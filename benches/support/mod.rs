//! What the benchmarks share: the release binary started in a process of its own with a typed
//! configuration (passed whole, as the environment `cps serve` reads), and that configuration.

#![allow(dead_code, reason = "each benchmark uses its own part of what is here")]

use std::time::Duration;

use cps::cache::CacheSettings;
use cps::config::Config;
use cps::outbox::alcs::AlcsSettings;

pub fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What a benchmark starts the server with: the CLI defaults, on ports the system picks, the
/// desk off, no shutdown delay, and the waits a loaded machine needs.
pub fn config(database_url: &str, redis: Option<(&str, &str)>) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Config::default()
    };
    c.database.url = database_url.to_owned();
    c.database.options.timeout = Duration::from_secs(10);
    c.http.request_timeout = Duration::from_secs(30);
    c.shutdown_delay = Duration::ZERO;
    c.cache = redis.map(|(url, prefix)| CacheSettings {
        prefix: prefix.to_owned(),
        ..CacheSettings::at(url)
    });
    c
}

/// The environment that makes `cps serve` build exactly `c`. Every field is taken apart, so a
/// new setting cannot be left out unnoticed; what the command line derives rather than reads
/// (the outbox's lease, batch sizes) must be what it would derive.
fn environment(c: &Config) -> Vec<(&'static str, String)> {
    let secs = |d: Duration| {
        assert_eq!(
            d.subsec_nanos(),
            0,
            "{d:?}: the command line takes whole seconds"
        );
        d.as_secs().to_string()
    };
    let millis = |d: Duration| d.as_millis().to_string();
    let days = |d: Duration| {
        assert_eq!(
            d.as_secs() % 86_400,
            0,
            "{d:?}: the command line takes whole days"
        );
        (d.as_secs() / 86_400).to_string()
    };
    let every = |d: Option<Duration>| d.map_or("0".to_owned(), secs);
    let Config {
        listen,
        admin_listen,
        desk,
        portal,
        tls,
        connections,
        shutdown_delay,
        http,
        database,
        cache,
        outbox,
        alcs,
        sms,
        housekeeping,
    } = c;
    let cps::server::Limits {
        max_connections,
        header_timeout,
        idle_timeout,
        tls_handshake_timeout,
        grace,
    } = connections;
    let cps::http::HttpSettings {
        default_language,
        default_country,
        request_timeout,
        requests,
    } = http;
    let cps::http::RequestLimits {
        max_in_flight,
        max_queued,
        body_timeout,
        allowed_origins,
    } = requests;
    let cps::store::DatabaseSettings { url, options } = database;
    let cps::store::StoreOptions {
        max_connections: pool,
        timeout,
        create: _,
        activation_limit,
    } = options;
    let cps::outbox::worker::WorkerConfig {
        poll,
        max_backoff,
        lease,
        batch,
        max_attempts,
        max_age,
    } = outbox;
    let cps::service::housekeeping::HousekeepingConfig {
        interval,
        delivered,
        audit,
        activation_window,
        batch: prune_batch,
    } = housekeeping;
    let defaults = Config::default();
    assert_eq!(*batch, defaults.outbox.batch, "not a setting");
    assert_eq!(*prune_batch, defaults.housekeeping.batch, "not a setting");
    assert_eq!(*activation_window, activation_limit.window, "one setting");
    let mut env = vec![
        ("CPS_LISTEN", listen.to_string()),
        (
            "CPS_ADMIN_LISTEN",
            admin_listen.map_or("off".to_owned(), |a| a.to_string()),
        ),
        ("CPS_MAX_CONNECTIONS", max_connections.to_string()),
        ("CPS_HEADER_TIMEOUT_SECS", secs(*header_timeout)),
        ("CPS_IDLE_TIMEOUT_SECS", secs(*idle_timeout)),
        (
            "CPS_TLS_HANDSHAKE_TIMEOUT_SECS",
            secs(*tls_handshake_timeout),
        ),
        ("CPS_SHUTDOWN_GRACE_SECS", secs(*grace)),
        ("CPS_SHUTDOWN_DELAY_SECS", secs(*shutdown_delay)),
        ("CPS_DEFAULT_LANGUAGE", default_language.code().to_owned()),
        ("CPS_DEFAULT_COUNTRY", default_country.code().to_owned()),
        ("CPS_REQUEST_TIMEOUT_SECS", secs(*request_timeout)),
        ("CPS_MAX_IN_FLIGHT", max_in_flight.to_string()),
        ("CPS_MAX_QUEUED", max_queued.to_string()),
        ("CPS_BODY_TIMEOUT_SECS", secs(*body_timeout)),
        (
            "CPS_ALLOWED_ORIGINS",
            allowed_origins
                .iter()
                .map(|o| o.ascii())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("CPS_DATABASE_URL", url.clone()),
        ("CPS_DATABASE_MAX_CONNECTIONS", pool.to_string()),
        ("CPS_DATABASE_TIMEOUT_SECS", secs(*timeout)),
        (
            "CPS_ACTIVATION_MAX_FAILURES",
            activation_limit.max_failures.to_string(),
        ),
        ("CPS_ACTIVATION_WINDOW_SECS", secs(activation_limit.window)),
        ("CPS_OUTBOX_POLL_MS", millis(*poll)),
        ("CPS_OUTBOX_MAX_BACKOFF_SECS", secs(*max_backoff)),
        ("CPS_OUTBOX_MAX_ATTEMPTS", max_attempts.to_string()),
        ("CPS_OUTBOX_MAX_AGE_SECS", secs(*max_age)),
        ("CPS_PRUNE_INTERVAL_SECS", every(*interval)),
        ("CPS_DELIVERED_RETENTION_DAYS", days(*delivered)),
        ("CPS_AUDIT_RETENTION_DAYS", days(*audit)),
    ];
    // The benchmarks measure the tills' API: no customer portal beside it, no SMS.
    assert!(portal.is_none(), "the benchmarks serve no portal");
    assert!(sms.is_none(), "the benchmarks send no text messages");
    if let Some(cps::http::desk::DeskSettings {
        listen,
        tokens_file,
        max_auth_failures,
        sessions,
    }) = desk
    {
        env.extend([
            ("CPS_SUPPORT_LISTEN", listen.to_string()),
            ("CPS_SUPPORT_TOKENS_FILE", tokens_file.display().to_string()),
            ("CPS_SUPPORT_AUTH_FAILURES", max_auth_failures.to_string()),
            ("CPS_SUPPORT_SESSION_IDLE_SECS", secs(sessions.idle)),
            ("CPS_SUPPORT_SESSION_MAX_SECS", secs(sessions.absolute)),
        ]);
    }
    if let Some(cps::tls::ServerFiles {
        cert,
        key,
        client_ca,
    }) = tls
    {
        env.push(("CPS_TLS_CERT", cert.display().to_string()));
        env.push(("CPS_TLS_KEY", key.display().to_string()));
        if let Some(ca) = client_ca {
            env.push(("CPS_TLS_CLIENT_CA", ca.display().to_string()));
        }
    }
    let files = |tls: &cps::tls::ClientFiles, names: [&'static str; 3]| {
        let mut env = Vec::new();
        if let Some(ca) = &tls.ca {
            env.push((names[0], ca.display().to_string()));
        }
        if let Some((cert, key)) = &tls.identity {
            env.push((names[1], cert.display().to_string()));
            env.push((names[2], key.display().to_string()));
        }
        env
    };
    if let Some(CacheSettings {
        url,
        prefix,
        timeout,
        check,
        tls,
    }) = cache
    {
        env.extend([
            ("CPS_REDIS_URL", url.clone()),
            ("CPS_REDIS_PREFIX", prefix.clone()),
            ("CPS_REDIS_TIMEOUT_MS", millis(*timeout)),
            ("CPS_CACHE_CHECK_SECS", every(*check)),
        ]);
        env.extend(files(
            tls,
            [
                "CPS_REDIS_CA_FILE",
                "CPS_REDIS_CLIENT_CERT",
                "CPS_REDIS_CLIENT_KEY",
            ],
        ));
    }
    if let Some(AlcsSettings {
        url_template,
        timeout,
        tls,
    }) = alcs
    {
        env.push(("CPS_ALCS_ACTIVATION_URL", url_template.clone()));
        env.push(("CPS_ALCS_TIMEOUT_MS", millis(*timeout)));
        env.extend(files(
            tls,
            [
                "CPS_ALCS_CA_FILE",
                "CPS_ALCS_CLIENT_CERT",
                "CPS_ALCS_CLIENT_KEY",
            ],
        ));
    }
    // The command line derives it from both timeouts, the defaults standing in for an absent
    // cache or ALCS.
    let redis_timeout = cache
        .as_ref()
        .map_or(CacheSettings::at("").timeout, |c| c.timeout);
    let alcs_timeout = alcs
        .as_ref()
        .map_or(AlcsSettings::at("").timeout, |a| a.timeout);
    assert_eq!(
        *lease,
        (redis_timeout.max(alcs_timeout) * 3).max(Duration::from_secs(5)),
        "the outbox's lease follows from the timeouts"
    );
    env
}

/// The release binary serving one configuration, in a process of its own.
pub struct Server {
    pub child: std::process::Child,
    pub addr: String,
    /// The admin listener's address (metrics, probes), when it logged one.
    pub admin: Option<String>,
    /// The service desk listener's address, when it logged one.
    pub support: Option<String>,
}

impl Server {
    pub fn start(c: &Config) -> Self {
        use std::io::BufRead as _;
        let env = environment(c);
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_cps"))
            .arg("serve")
            // Only what `c` says: no setting of the benchmark's own environment leaks in.
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "RUST_LOG",
                std::env::var("CPS_BENCH_SERVER_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
            )
            .envs(env)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the release binary starts");
        // Owned at once, so that it is killed and waited for on every way out.
        let mut server = Self {
            child,
            addr: String::new(),
            admin: None,
            support: None,
        };
        let stderr = server.child.stderr.take().expect("a pipe");
        let (tx, rx) = std::sync::mpsc::channel();
        // Drained for the server's whole life, as a log collector would.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the server logs its address");
            if let Some(at) = line.find(" support=") {
                server.support = line[at + 9..].split_whitespace().next().map(str::to_owned);
            }
            if let Some(at) = line.find(" admin=") {
                server.admin = line[at + 7..].split_whitespace().next().map(str::to_owned);
            }
            if let Some(at) = line.find("addr=") {
                let addr = line[at + 5..]
                    .split_whitespace()
                    .next()
                    .expect("an address")
                    .to_owned();
                // Keep draining in the background; `CPS_BENCH_SERVER_ERRORS=1` shows the
                // server's warnings and errors (a failed row's cause) on stderr.
                let show = std::env::var_os("CPS_BENCH_SERVER_ERRORS").is_some();
                std::thread::spawn(move || {
                    while let Ok(line) = rx.recv() {
                        if show && (line.contains(" WARN ") || line.contains(" ERROR ")) {
                            eprintln!("server: {line}");
                        }
                    }
                });
                server.addr = addr;
                return server;
            }
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}/alcs/loyalty/v1/loyalty-cards", self.addr)
    }

    /// The CPU time the server has used so far (user and system).
    pub fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields 14 and 15 (utime, stime), counted after the command name's closing paren.
        let ticks: u64 = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .skip(11)
                    .take(2)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum()
            })
            .unwrap_or(0);
        // USER_HZ is 100 on Linux.
        Duration::from_millis(ticks * 10)
    }

    /// The server's peak resident memory so far, in MiB.
    pub fn peak_rss_mib(&self) -> u64 {
        proc_kib(self.child.id(), "VmHWM:") / 1024
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
