//! A PostgreSQL server of the benchmark's own, made with the installed `initdb` and left at
//! PostgreSQL's default settings (autovacuum on), for figures the shared development server
//! cannot give: it runs with `autovacuum = off`, and a benchmark must not reconfigure it.

use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct PrivatePostgres {
    pg_ctl: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
    pub port: u16,
}

impl PrivatePostgres {
    /// Makes and starts it on a free port, as the `postgres` user (the benchmark runs as root);
    /// `None`, saying why, when the binaries or the user are missing.
    pub fn start() -> Option<Self> {
        let Some(bin) = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|v| {
            v.filter_map(Result::ok)
                .map(|v| v.path().join("bin"))
                .find(|b| b.join("initdb").exists())
        }) else {
            println!("private PostgreSQL: skipped: no initdb under /usr/lib/postgresql");
            return None;
        };
        let dir = tempfile::tempdir().ok()?;
        let data = dir.path().join("data");
        let as_postgres = |program: PathBuf, args: &[&str]| {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(program)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let owned = Command::new("chown")
            .args(["postgres:postgres", &dir.path().display().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        let data_dir = data.display().to_string();
        if !owned
            || !as_postgres(
                bin.join("initdb"),
                &["-D", &data_dir, "-A", "trust", "-U", "postgres"],
            )
        {
            println!("private PostgreSQL: skipped: initdb as the postgres user failed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={}",
            dir.path().display()
        );
        let log = dir.path().join("log").display().to_string();
        let pg_ctl = bin.join("pg_ctl");
        if !as_postgres(
            pg_ctl.clone(),
            &["-D", &data_dir, "-w", "-o", &options, "-l", &log, "start"],
        ) {
            println!("private PostgreSQL: skipped: it did not start (see {log})");
            return None;
        }
        Some(Self {
            pg_ctl,
            data,
            _dir: dir,
            port,
        })
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&self.pg_ctl)
            .args([
                "-D",
                &self.data.display().to_string(),
                "-m",
                "immediate",
                "stop",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
