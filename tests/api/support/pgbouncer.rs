//! PgBouncer (Debian's package) in front of the shared PostgreSQL, started by the tests: one
//! per test binary in session mode for the black-box suite, or one of a test's own.

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::backends::{available, free_port, postgres_url};

/// A running PgBouncer; it stops when this is dropped, or when the test process exits.
pub struct PgBouncer {
    pub port: u16,
    _dir: tempfile::TempDir,
    child: Child,
}

impl PgBouncer {
    /// PgBouncer with `pool_mode` (`session`, `transaction`, `statement`) on a free port,
    /// forwarding every database name to the shared PostgreSQL; `None` (or a failure under
    /// `CI=true`) where it is not installed.
    pub fn start(pool_mode: &str) -> Option<Self> {
        let bin = Path::new("/usr/sbin/pgbouncer");
        if !available(
            "PgBouncer (Debian's pgbouncer)",
            "/usr/sbin/pgbouncer",
            bin.exists(),
        ) {
            return None;
        }
        let server = super::faults::socket_addr(&postgres_url());
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        // No `ignore_startup_parameters`: the service must connect without any.
        let config = format!(
            "[databases]\n\
             * = host={} port={}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {dir}/users.txt\n\
             pool_mode = {pool_mode}\n\
             max_client_conn = 2000\n\
             default_pool_size = 40\n\
             server_reset_query = DISCARD ALL\n\
             logfile = {dir}/pgbouncer.log\n",
            server.ip(),
            server.port(),
            dir = dir.path().display(),
        );
        std::fs::write(dir.path().join("pgbouncer.ini"), config).unwrap();
        std::fs::write(dir.path().join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres", &dir.path().display().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // Through a shell that stops it once this process's end closes its standard input: a
        // PgBouncer shared by a whole test binary has no owner to drop it.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{} -u postgres {}/pgbouncer.ini & p=$!; cat >/dev/null; kill $p",
                bin.display(),
                dir.path().display()
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer starts");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > std::time::Duration::from_secs(10) {
                let log =
                    std::fs::read_to_string(dir.path().join("pgbouncer.log")).unwrap_or_default();
                let _ = child.kill();
                panic!("PgBouncer does not listen on {port}:\n{log}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some(Self {
            port,
            _dir: dir,
            child,
        })
    }

    /// The shared one of this test binary, in session mode.
    pub fn shared() -> Option<u16> {
        use std::sync::OnceLock;
        static SHARED: OnceLock<Option<PgBouncer>> = OnceLock::new();
        SHARED
            .get_or_init(|| Self::start("session"))
            .as_ref()
            .map(|b| b.port)
    }

    /// `database` on the shared PostgreSQL, through this PgBouncer.
    pub fn url(&self, database: &str) -> String {
        url(self.port, database)
    }
}

/// `database` through the PgBouncer on `port`.
pub fn url(port: u16, database: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{database}")
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // Closing its input stops it (see `start`).
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.flush();
        }
        let _ = self.child.wait();
    }
}
