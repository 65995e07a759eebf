//! What the benchmarks share: the release binary started in a process of its own with a
//! configuration, and the settings they start it with.

#![allow(dead_code, reason = "each benchmark uses its own part of what is here")]

use std::time::Duration;

use cps::config::Settings;

pub fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The settings a benchmark starts the server with: the CLI defaults, on ports the system
/// picks, the desk off.
pub fn settings(database_url: &str, redis: Option<(&str, &str)>) -> Settings {
    Settings {
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        support_listen: "off".into(),
        support_tokens_file: None,
        support_auth_failures: "10".into(),
        support_session_idle_secs: "1800".into(),
        support_session_max_secs: "43200".into(),
        database_url: database_url.into(),
        database_max_connections: "8".into(),
        database_timeout_secs: "10".into(),
        redis_url: redis.map(|(u, _)| u.to_owned()),
        redis_prefix: redis.map(|(_, p)| p.to_owned()).unwrap_or_default(),
        redis_timeout_ms: "500".into(),
        redis_ca_file: None,
        redis_client_cert: None,
        redis_client_key: None,
        cache_check_secs: "5".into(),
        outbox_poll_ms: "1000".into(),
        outbox_max_backoff_secs: "60".into(),
        outbox_max_attempts: "10".into(),
        outbox_max_age_secs: "86400".into(),
        alcs_activation_url: None,
        alcs_timeout_ms: "5000".into(),
        alcs_ca_file: None,
        alcs_client_cert: None,
        alcs_client_key: None,
        prune_interval_secs: "300".into(),
        delivered_retention_days: "90".into(),
        audit_retention_days: "2192".into(),
        default_language: "pl_PL".into(),
        default_country: "PL".into(),
        request_timeout_secs: "30".into(),
        tls_cert: None,
        tls_key: None,
        tls_client_ca: None,
        plain_http: false,
        max_connections: "2048".into(),
        max_in_flight: "12".into(),
        max_queued: "36".into(),
        header_timeout_secs: "10".into(),
        body_timeout_secs: "5".into(),
        idle_timeout_secs: "10".into(),
        tls_handshake_timeout_secs: "10".into(),
        shutdown_delay_secs: "0".into(),
        shutdown_grace_secs: "10".into(),
        allowed_origins: String::new(),
        activation_max_failures: "5".into(),
        activation_window_secs: "900".into(),
    }
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
    pub fn start(s: &Settings) -> Self {
        use std::io::BufRead as _;
        let mut env: Vec<(&str, String)> = vec![
            ("CPS_LISTEN", s.listen.clone()),
            ("CPS_ADMIN_LISTEN", s.admin_listen.clone()),
            ("CPS_DATABASE_URL", s.database_url.clone()),
            (
                "CPS_DATABASE_MAX_CONNECTIONS",
                s.database_max_connections.clone(),
            ),
            ("CPS_DATABASE_TIMEOUT_SECS", s.database_timeout_secs.clone()),
            ("CPS_REDIS_PREFIX", s.redis_prefix.clone()),
            ("CPS_REDIS_TIMEOUT_MS", s.redis_timeout_ms.clone()),
            ("CPS_CACHE_CHECK_SECS", s.cache_check_secs.clone()),
            ("CPS_REQUEST_TIMEOUT_SECS", s.request_timeout_secs.clone()),
            ("CPS_MAX_CONNECTIONS", s.max_connections.clone()),
            ("CPS_MAX_IN_FLIGHT", s.max_in_flight.clone()),
            ("CPS_MAX_QUEUED", s.max_queued.clone()),
        ];
        if let Some(url) = &s.redis_url {
            env.push(("CPS_REDIS_URL", url.clone()));
        }
        if let Some(file) = &s.support_tokens_file {
            env.push(("CPS_SUPPORT_LISTEN", s.support_listen.clone()));
            env.push(("CPS_SUPPORT_TOKENS_FILE", file.display().to_string()));
        }
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_cps"))
            .arg("serve")
            .env_remove("CPS_REDIS_URL")
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
