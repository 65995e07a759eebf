//! The `cps` binary run as a process of its own.

use std::io::BufRead;

/// A running `cps` process, killed when dropped so that a failing test leaves none behind.
pub struct Running(std::process::Child);

impl Running {
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Waits (bounded) for the process to exit by itself.
    pub fn wait_for_exit(
        &mut self,
        within: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A process's log lines: those read while waiting for it to start, then the rest as they come.
pub struct LogLines {
    early: Vec<String>,
    rest: std::sync::mpsc::Receiver<String>,
}

impl LogLines {
    /// Every line so far.
    pub fn drain(&mut self) -> Vec<String> {
        self.early.extend(self.rest.try_iter());
        self.early.clone()
    }
}

/// Starts the binary, returns it, its log lines and its address read from the start-up line.
pub fn start(env: &[(&str, &str)]) -> (Running, LogLines, String) {
    let mut child = Running(
        std::process::Command::new(env!("CARGO_BIN_EXE_cps"))
            .arg("serve")
            .env_remove("CPS_REDIS_URL")
            .env_remove("RUST_LOG")
            .env("CPS_LISTEN", "127.0.0.1:0")
            .env("CPS_ADMIN_LISTEN", "127.0.0.1:0")
            // A test that stops the process does not wait out the drain delay, unless it
            // sets one.
            .env("CPS_SHUTDOWN_DELAY_SECS", "0")
            .envs(env.iter().copied())
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            // Keep draining after the reader is gone: a closed pipe would kill the server at
            // its next log line.
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut early = Vec::new();
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .unwrap_or_else(|_| panic!("the server logs its address; it said: {early:?}"));
        // `addr=…` in text, `"addr":"…"` in JSON lines.
        let addr = line
            .find("addr=")
            .map(|at| line[at + 5..].split_whitespace().next().unwrap().to_owned())
            .or_else(|| {
                line.find("\"addr\":\"")
                    .map(|at| line[at + 8..].split('"').next().unwrap().to_owned())
            });
        early.push(line);
        if let Some(addr) = addr {
            return (child, LogLines { early, rest: rx }, addr);
        }
    }
}
