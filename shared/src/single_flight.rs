//! Single-flight: concurrent requests for the same key share one execution.
//!
//! The work runs as its own task, so it finishes (and its side effects land) even if every
//! caller waiting on it goes away, and a panic in it becomes an error for the callers
//! rather than a stuck key.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tracing::Instrument;

/// The shared work failed without producing a value (it panicked or was cancelled).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the shared work did not finish: {0}")]
pub struct FlightAborted(pub String);

type Flight<V> = Shared<BoxFuture<'static, Result<V, FlightAborted>>>;

/// A table of in-flight work by key.
pub struct SingleFlight<K, V> {
    in_flight: Arc<Mutex<HashMap<K, Flight<V>>>>,
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self {
            in_flight: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `work` for `key` unless it is already running, and returns its result either way.
    /// Returns whether this call started the work alongside the result.
    pub async fn run<F>(&self, key: K, work: impl FnOnce() -> F) -> (Result<V, FlightAborted>, bool)
    where
        F: Future<Output = V> + Send + 'static,
    {
        let (flight, leader) = {
            let mut table = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            match table.get(&key) {
                Some(existing) => (existing.clone(), false),
                None => {
                    let guard = RemoveOnDrop {
                        table: Arc::clone(&self.in_flight),
                        key: Some(key.clone()),
                    };
                    let fut = work();
                    // The work runs in the span of the call that started it, so what it
                    // logs names that request.
                    let task = tokio::spawn(
                        async move {
                            let value = fut.await;
                            // Leave the table before the waiters wake, so a later caller
                            // starts afresh instead of joining a finished flight.
                            drop(guard);
                            value
                        }
                        .in_current_span(),
                    );
                    let flight = task
                        .map(|joined| joined.map_err(|e| FlightAborted(e.to_string())))
                        .boxed()
                        .shared();
                    table.insert(key, flight.clone());
                    (flight, true)
                }
            }
        };
        (flight.await, leader)
    }

    /// How many keys have work running.
    pub fn in_flight(&self) -> usize {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// Removes the key when the work ends, however it ends (value, panic or cancellation).
struct RemoveOnDrop<K: Eq + Hash, V> {
    table: Arc<Mutex<HashMap<K, Flight<V>>>>,
    key: Option<K>,
}

impl<K: Eq + Hash, V> Drop for RemoveOnDrop<K, V> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.table
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_calls_share_one_execution() {
        let flights = Arc::new(SingleFlight::<&str, usize>::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let calls = (0..20).map(|_| {
            let flights = Arc::clone(&flights);
            let runs = Arc::clone(&runs);
            async move {
                flights
                    .run("k", || async move {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        runs.fetch_add(1, Ordering::SeqCst) + 1
                    })
                    .await
            }
        });
        let results = futures::future::join_all(calls).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(results.iter().all(|(r, _)| *r == Ok(1)));
        assert_eq!(results.iter().filter(|(_, leader)| *leader).count(), 1);
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test]
    async fn later_calls_start_afresh() {
        let flights = SingleFlight::<u8, u8>::new();
        assert_eq!(flights.run(1, || async { 1 }).await, (Ok(1), true));
        assert_eq!(flights.run(1, || async { 2 }).await, (Ok(2), true));
    }

    #[tokio::test]
    async fn a_panic_is_an_error_and_frees_the_key() {
        let flights = SingleFlight::<u8, u8>::new();
        let (result, _) = flights.run(1, || async { panic!("boom") }).await;
        assert!(result.is_err());
        assert_eq!(flights.in_flight(), 0);
        assert_eq!(flights.run(1, || async { 3 }).await.0, Ok(3));
    }

    #[tokio::test]
    async fn work_finishes_even_when_the_caller_gives_up() {
        let flights = SingleFlight::<u8, ()>::new();
        let done = Arc::new(AtomicUsize::new(0));
        let d = Arc::clone(&done);
        let call = flights.run(1, || async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            d.fetch_add(1, Ordering::SeqCst);
        });
        let _ = tokio::time::timeout(Duration::from_millis(5), call).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }
}
