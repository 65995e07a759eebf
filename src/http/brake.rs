//! The brake on guessing from one place: an address that failed too often within a window is
//! refused until its oldest counted failure leaves it, whatever it sends. The desk's token
//! checks and the portal's sign-ins each hold one. It is kept in memory, per instance: an
//! address is braked by the instance it guesses at (the per-card and service-wide limits of the
//! portal, kept in the database, are what every instance shares).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses whose failures are remembered at most; beyond, the oldest are forgotten (a flood
/// from many addresses must not grow the table without bound).
const MAX_ADDRESSES: usize = 10_000;

/// Failures per address within a sliding window.
pub struct Brake {
    /// Failures tolerated from one address within `window`.
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Brake {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// While `addr` is braked: how long until its oldest counted failure leaves the window.
    pub fn braked(&self, addr: IpAddr, now: Instant) -> Option<Duration> {
        let counted = counted_as(addr);
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let seen = failures.get_mut(&counted)?;
        while seen.front().is_some_and(|t| now - *t >= self.window) {
            seen.pop_front();
        }
        if seen.is_empty() {
            failures.remove(&counted);
            return None;
        }
        (seen.len() >= self.max_failures).then(|| self.window - (now - seen[0]))
    }

    /// Counts a failure against `addr`.
    pub fn failed(&self, addr: IpAddr, now: Instant) {
        let counted = counted_as(addr);
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if failures.len() >= MAX_ADDRESSES && !failures.contains_key(&counted) {
            let window = self.window;
            failures.retain(|_, seen| seen.back().is_some_and(|t| now - *t < window));
            if failures.len() >= MAX_ADDRESSES
                && let Some(oldest) = failures
                    .iter()
                    .min_by_key(|(_, seen)| seen.back().copied())
                    .map(|(a, _)| *a)
            {
                failures.remove(&oldest);
            }
        }
        let seen = failures.entry(counted).or_default();
        seen.push_back(now);
        // Only the last `max_failures` matter.
        while seen.len() > self.max_failures {
            seen.pop_front();
        }
    }
}

/// The address failures are counted against: an IPv6 client by its /64 network (one host is
/// given a whole /64 and may send from any of its 2^64 addresses), an IPv4 client (also when
/// written as an IPv4-mapped IPv6 address) by its address.
pub fn counted_as(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !u128::from(u64::MAX),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_counted_by_its_slash_64() {
        let brake = Brake::new(3, Duration::from_secs(60));
        let now = Instant::now();
        for i in 0..3u16 {
            let addr = IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, i + 1]);
            assert!(brake.braked(addr, now).is_none());
            brake.failed(addr, now);
        }
        let same_net = IpAddr::from([0x2001, 0xdb8, 0, 1, 0xffff, 1, 2, 3]);
        assert!(brake.braked(same_net, now).is_some());
        let next_net = IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]);
        assert!(brake.braked(next_net, now).is_none());
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(counted_as(mapped), IpAddr::from([10, 0, 0, 1]));
    }

    #[test]
    fn an_address_is_braked_after_the_allowed_failures_and_released_after_the_window() {
        let window = Duration::from_secs(60);
        let brake = Brake::new(10, window);
        let addr = IpAddr::from([10, 0, 0, 1]);
        let other = IpAddr::from([10, 0, 0, 2]);
        let start = Instant::now();
        for i in 0..10 {
            assert!(brake.braked(addr, start).is_none(), "after {i} failures");
            brake.failed(addr, start);
        }
        let wait = brake.braked(addr, start).expect("braked");
        assert!(wait <= window && wait > Duration::from_secs(50));
        assert!(brake.braked(other, start).is_none(), "per address");
        assert!(brake.braked(addr, start + window).is_none());
    }
}
