//! Logging helpers: repeated identical warnings are rate-limited, so that a flood (a client
//! hammering a refused route, an outage answered 503 a thousand times a second) leaves a few
//! lines that say how many were left out, not a disk full of copies.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one line per key per `every`; the next one that passes says how many were skipped.
pub struct RateLimit {
    every: Duration,
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl RateLimit {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(skipped)` when a line for `key` may be written now (`skipped` lines were withheld
    /// since the last one); `None` when it is to be withheld.
    pub fn allow(&self, key: &str) -> Option<u64> {
        let now = Instant::now();
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Keys are few (fixed messages, route templates); the bound only guards against a bug.
        if seen.len() > 1024 {
            seen.clear();
        }
        match seen.get_mut(key) {
            Some((last, skipped)) if now.duration_since(*last) < self.every => {
                *skipped += 1;
                None
            }
            Some((last, skipped)) => {
                *last = now;
                Some(std::mem::take(skipped))
            }
            None => {
                seen.insert(key.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}

/// The limiter shared by the whole process: one line per kind of warning per 10 seconds.
pub fn warnings() -> &'static RateLimit {
    static LIMIT: std::sync::LazyLock<RateLimit> =
        std::sync::LazyLock::new(|| RateLimit::new(Duration::from_secs(10)));
    &LIMIT
}

/// `tracing::warn!` at most once per 10 s per `$key`, with the count of withheld lines.
#[macro_export]
macro_rules! warn_limited {
    ($key:expr, $($arg:tt)+) => {
        if let Some(suppressed) = $crate::logs::warnings().allow($key) {
            tracing::warn!(suppressed, $($arg)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_withheld_and_counted() {
        let limit = RateLimit::new(Duration::from_millis(50));
        assert_eq!(limit.allow("a"), Some(0));
        assert_eq!(limit.allow("a"), None);
        assert_eq!(limit.allow("a"), None);
        assert_eq!(limit.allow("b"), Some(0), "keys are independent");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(limit.allow("a"), Some(2));
        assert_eq!(limit.allow("a"), None);
    }
}
