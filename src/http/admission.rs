//! How many requests run at once, and what happens to the next one.
//!
//! A bounded number run; a bounded number more wait for a place, for at most [`QUEUE_WAIT`]
//! (a burst is absorbed; a sustained overload does not make every answer late); beyond both,
//! a request is answered 503. An unbounded queue would let every answer wait behind every other
//! under overload, which is worse for all of them than a quick "come back in a second".

use std::sync::Arc;

use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The longest a request waits in line for a place before it is shed.
pub const QUEUE_WAIT: Duration = Duration::from_millis(30);

#[derive(Clone)]
pub struct Admission {
    running: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
}

impl Admission {
    pub fn new(max_running: usize, max_waiting: usize) -> Self {
        Self {
            running: Arc::new(Semaphore::new(max_running)),
            waiting: Arc::new(Semaphore::new(max_waiting)),
        }
    }

    /// A place among the running requests, held until the permit is dropped; `None` when the
    /// request is to be shed (every place taken, and the queue full or no place freed within
    /// [`QUEUE_WAIT`]).
    pub async fn enter(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(place) = self.running.clone().try_acquire_owned() {
            return Some(place);
        }
        let _in_line = self.waiting.try_acquire().ok()?;
        tokio::time::timeout(QUEUE_WAIT, self.running.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_then_queues_then_sheds() {
        let admission = Admission::new(1, 1);
        let running = admission.enter().await.expect("a free place");
        let queued = tokio::spawn({
            let admission = admission.clone();
            async move { admission.enter().await.is_some() }
        });
        // On this single-threaded runtime the spawned request now takes its place in line.
        tokio::task::yield_now().await;
        assert!(
            admission.enter().await.is_none(),
            "place and line taken: shed at once"
        );
        drop(running);
        assert!(
            queued.await.unwrap(),
            "the request in line runs once a place frees"
        );
        let running = admission.enter().await.expect("a free place");
        let started = std::time::Instant::now();
        assert!(
            admission.enter().await.is_none(),
            "no place freed within the wait: shed"
        );
        assert!(started.elapsed() >= QUEUE_WAIT);
        drop(running);
    }
}
