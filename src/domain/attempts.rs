//! How failed sign-ins are throttled (contract section 8): per *submitted* card number, whether
//! a card has it or not, so that the answer tells nothing about which numbers exist. A few
//! failures in a row are free; then each try must wait, the wait doubling; after enough the web
//! sign-in is locked until a reset (the desk). A success forgets the failures.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The per-card policy and its figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimits {
    /// Failures in a row that cost nothing.
    pub free_failures: u32,
    /// The wait after the first failure beyond the free ones; each further failure doubles it.
    pub first_delay: Duration,
    /// Failures in a row after which the web sign-in is locked.
    pub lock_after: u32,
}

impl Default for SignInLimits {
    /// Three free failures, then 30 s, 60 s, … 16 min; locked at the tenth (a random 4-digit
    /// PIN is then guessed with a chance of 1 in 1,000).
    fn default() -> Self {
        Self {
            free_failures: 3,
            first_delay: Duration::from_secs(30),
            lock_after: 10,
        }
    }
}

/// Whether a card number may try to sign in now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    Open,
    /// Not before this long.
    Wait(Duration),
    /// Until a reset.
    Locked,
}

/// What `Retry-After` says of a locked sign-in: the lock does not end by time, but a client
/// must not be told to try again at once.
pub const LOCKED_RETRY_AFTER: Duration = Duration::from_secs(3600);

impl SignInLimits {
    /// The state of a card number that failed `failures` times in a row, the last at `last`.
    pub fn throttle(&self, failures: i64, last: DateTime<Utc>, now: DateTime<Utc>) -> Throttle {
        if failures >= i64::from(self.lock_after) {
            return Throttle::Locked;
        }
        let Some(delay) = self.delay_after(failures) else {
            return Throttle::Open;
        };
        let until = last + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        match (until - now).to_std() {
            Ok(left) if !left.is_zero() => Throttle::Wait(Duration::from_secs(
                left.as_secs() + u64::from(left.subsec_nanos() > 0),
            )),
            _ => Throttle::Open,
        }
    }

    /// The wait after `failures` in a row, when there is one.
    fn delay_after(&self, failures: i64) -> Option<Duration> {
        let beyond = failures - i64::from(self.free_failures);
        if beyond <= 0 {
            return None;
        }
        let doublings = u32::try_from(beyond - 1).unwrap_or(u32::MAX).min(20);
        Some(self.first_delay.saturating_mul(1 << doublings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_free_failures_then_doubling_waits_then_a_lock() {
        let limits = SignInLimits::default();
        let now = Utc::now();
        for f in 0..=3 {
            assert_eq!(limits.throttle(f, now, now), Throttle::Open, "{f}");
        }
        let waits: Vec<Throttle> = (4..10).map(|f| limits.throttle(f, now, now)).collect();
        let secs = [30, 60, 120, 240, 480, 960];
        for (wait, secs) in waits.iter().zip(secs) {
            assert_eq!(*wait, Throttle::Wait(Duration::from_secs(secs)));
        }
        assert_eq!(limits.throttle(10, now, now), Throttle::Locked);
        assert_eq!(
            limits.throttle(10, now - chrono::Duration::days(30), now),
            Throttle::Locked
        );
    }

    #[test]
    fn a_wait_ends_by_time() {
        let limits = SignInLimits::default();
        let last = Utc::now();
        let later = last + chrono::Duration::milliseconds(29_500);
        assert_eq!(
            limits.throttle(4, last, later),
            Throttle::Wait(Duration::from_secs(1))
        );
        let after = last + chrono::Duration::seconds(30);
        assert_eq!(limits.throttle(4, last, after), Throttle::Open);
    }
}

/// What a one-time code sent by SMS proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    /// A step-up of the session it was asked in.
    StepUp,
    /// The new phone number it was sent to.
    Phone,
    /// The phone on record, to set a new password.
    Reset,
}

impl CodePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StepUp => "step_up",
            Self::Phone => "phone",
            Self::Reset => "reset",
        }
    }
}

/// How long a code may be used.
pub const CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// Wrong tries after which a code is gone.
pub const CODE_TRIES: i64 = 5;
