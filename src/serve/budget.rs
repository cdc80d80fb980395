//! A memory budget for request bodies. Each review holds its body size in
//! the budget from before its body is read until its answer is serialised,
//! so however many clients send large reviews at once, the bodies being
//! read and judged together stay within `--max-inflight-body-bytes`.
//! Small reviews take a few kilobytes of it and pass at once; a large one
//! waits for room until its deadline.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

#[derive(Clone, Debug)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: u32,
}

/// Room held in the budget; given back when dropped.
#[derive(Debug)]
pub struct Held(#[allow(dead_code)] OwnedSemaphorePermit);

impl BodyBudget {
    /// A budget of `total` bytes (counted up to 4 GiB).
    pub fn new(total: usize) -> BodyBudget {
        let total = u32::try_from(total).unwrap_or(u32::MAX).max(1);
        BodyBudget { bytes: Arc::new(Semaphore::new(total as usize)), total }
    }

    /// Waits until `bytes` (at most the whole budget) are free, or `None` at
    /// `deadline`. Waiters are served in arrival order.
    pub async fn acquire(&self, bytes: usize, deadline: Instant) -> Option<Held> {
        let n = u32::try_from(bytes).unwrap_or(u32::MAX).clamp(1, self.total);
        match tokio::time::timeout_at(deadline, self.bytes.clone().acquire_many_owned(n)).await {
            Ok(Ok(permit)) => Some(Held(permit)),
            _ => None,
        }
    }

    /// Bytes free right now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn large_bodies_wait_for_room_and_small_ones_share_it() {
        let budget = BodyBudget::new(100);
        let soon = || Instant::now() + Duration::from_secs(1);
        let big = budget.acquire(80, soon()).await.expect("room for the first");
        let small = budget.acquire(10, soon()).await.expect("room beside it");
        assert!(budget.acquire(80, soon()).await.is_none(), "no room for a second big one");
        assert_eq!(budget.available(), 10);
        drop(big);
        let again = budget.acquire(80, soon()).await.expect("room once the first is done");
        drop((small, again));
        // More than the whole budget waits for all of it, never forever.
        assert!(budget.acquire(1 << 40, soon()).await.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_small_review_does_not_pass_a_large_one_waiting() {
        let budget = BodyBudget::new(100);
        let held = budget.acquire(80, Instant::now() + Duration::from_secs(1)).await.expect("room");
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.acquire(50, Instant::now() + Duration::from_secs(10)).await }
        });
        tokio::task::yield_now().await;
        // 20 bytes are not held, but the large review waiting has them.
        assert!(budget.acquire(10, Instant::now() + Duration::from_secs(1)).await.is_none());
        drop(held);
        assert!(waiting.await.expect("waiter").is_some(), "the large review gets its room");
        assert_eq!(budget.available(), 100);
    }
}
