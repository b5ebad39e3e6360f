//! Gateway health: the order in which gateways are tried.
//!
//! As py-hamt's `KuboCAS`: gateways are tried one after another (never raced). A gateway that
//! failed `threshold` times in a row goes to the back of the order until `probe_after` has
//! passed since its last failure; then it is tried in its configured place again. Any success
//! resets its count. Ties keep the configured order.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use url::Url;

#[derive(Debug, Default, Clone, Copy)]
struct Health {
    consecutive_failures: u32,
    last_failure: Option<Instant>,
}

/// The gateways of a store, with their health.
#[derive(Debug)]
pub struct Gateways {
    urls: Vec<Url>,
    health: Mutex<Vec<Health>>,
    threshold: u32,
    probe_after: Duration,
}

impl Gateways {
    /// Tracks `urls` (in configured order).
    pub fn new(urls: Vec<Url>, threshold: u32, probe_after: Duration) -> Self {
        let health = Mutex::new(vec![Health::default(); urls.len()]);
        Gateways {
            urls,
            health,
            threshold,
            probe_after,
        }
    }

    /// The configured URLs.
    pub fn urls(&self) -> &[Url] {
        &self.urls
    }

    /// Indexes of the gateways in the order to try them now.
    pub fn order(&self) -> Vec<usize> {
        let now = Instant::now();
        let health = match self.health.lock() {
            Ok(h) => h.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let unhealthy = |i: usize| {
            health.get(i).is_some_and(|h| {
                h.consecutive_failures >= self.threshold
                    && h.last_failure
                        .is_some_and(|t| now.duration_since(t) < self.probe_after)
            })
        };
        let mut idx: Vec<usize> = (0..self.urls.len()).collect();
        // Stable: healthy ones first, configured order kept within each group.
        idx.sort_by_key(|&i| unhealthy(i));
        idx
    }

    fn update(&self, i: usize, f: impl FnOnce(&mut Health)) {
        let mut guard = match self.health.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(h) = guard.get_mut(i) {
            f(h);
        }
    }

    /// Records a success of gateway `i`.
    pub fn success(&self, i: usize) {
        self.update(i, |h| *h = Health::default());
    }

    /// Records a failure of gateway `i`.
    pub fn failure(&self, i: usize) {
        self.update(i, |h| {
            h.consecutive_failures = h.consecutive_failures.saturating_add(1);
            h.last_failure = Some(Instant::now());
        });
    }

    /// Consecutive failures of gateway `i`.
    pub fn failures(&self, i: usize) -> u32 {
        match self.health.lock() {
            Ok(g) => g.get(i).map_or(0, |h| h.consecutive_failures),
            Err(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_gateway_moves_back_then_is_probed() {
        let urls = vec![
            Url::parse("http://a/ipfs/").unwrap(),
            Url::parse("http://b/ipfs/").unwrap(),
            Url::parse("http://c/ipfs/").unwrap(),
        ];
        let g = Gateways::new(urls, 3, Duration::from_millis(50));
        assert_eq!(g.order(), [0, 1, 2]);
        g.failure(0);
        g.failure(0);
        assert_eq!(g.order(), [0, 1, 2]);
        g.failure(0);
        assert_eq!(g.order(), [1, 2, 0]);
        g.failure(1);
        g.failure(1);
        g.failure(1);
        assert_eq!(g.order(), [2, 0, 1]);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(g.order(), [0, 1, 2]);
        g.failure(0);
        g.success(1);
        assert_eq!(g.order(), [1, 2, 0]);
        assert_eq!(g.failures(0), 4);
    }
}
