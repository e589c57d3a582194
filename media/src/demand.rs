//! Who is watching: the registry that starts and stops pulls on demand.
//!
//! An ingest that only runs while someone watches (an RTSP camera pulled with
//! `on_demand = true`) registers its stream name with [`Demand::register`] and gets a
//! [`DemandWatch`]; the HTTP origin calls [`Demand::touch`] for every request under a
//! stream name. The watch wakes the ingest when a request arrives and tells it how long
//! ago the last one was, so it can stop after its idle time.
//!
//! It lives in `media`, beside the hub, because both `origin` (which sees requests) and
//! `ingest` (which pulls) use it and neither may depend on the other.
//!
//! The registry is bounded by its registrations: a request for a name nobody registered
//! is a cheap lookup that stores nothing, so clients asking for random names cannot
//! grow it.
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use tokio::sync::watch;

/// The shared registry (cheap to clone; all clones share the names).
#[derive(Clone, Default)]
pub struct Demand(Arc<RwLock<HashMap<String, watch::Sender<Option<Instant>>>>>);

/// The receiving end for one registered name: the time of the latest request.
#[derive(Clone, Debug)]
pub struct DemandWatch(watch::Receiver<Option<Instant>>);

impl Demand {
    pub fn new() -> Demand {
        Demand::default()
    }

    /// Registers `name` as pulled on demand (again: the new watch replaces the old one's
    /// sender, so an old watch sees no more requests).
    pub fn register(&self, name: &str) -> DemandWatch {
        let (tx, rx) = watch::channel(None);
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), tx);
        DemandWatch(rx)
    }

    /// Records a request for `name` now. True when `name` is registered (an on-demand
    /// stream), false (and nothing stored) otherwise.
    pub fn touch(&self, name: &str) -> bool {
        let names = self.0.read().unwrap_or_else(PoisonError::into_inner);
        match names.get(name) {
            Some(tx) => {
                tx.send_replace(Some(Instant::now()));
                true
            }
            None => false,
        }
    }

    /// Whether `name` is registered as on demand.
    pub fn is_on_demand(&self, name: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(name)
    }
}

impl DemandWatch {
    /// When the latest request arrived; None before the first.
    pub fn last_request(&self) -> Option<Instant> {
        *self.0.borrow()
    }

    /// Resolves when a request arrives after this call (or at once if one arrived since
    /// the last call); pending forever once the registry is gone.
    pub async fn requested(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Whether a request arrived within `idle` of now.
    pub fn wanted(&self, idle: std::time::Duration) -> bool {
        self.last_request().is_some_and(|t| t.elapsed() < idle)
    }

    /// Resolves once no request has arrived for `idle` (at once when none ever did).
    pub async fn idle(&mut self, idle: std::time::Duration) {
        loop {
            let Some(last) = self.last_request() else {
                return;
            };
            let due = last + idle;
            if Instant::now() >= due {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(due)) => {}
                () = self.requested() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn unregistered_names_are_not_stored() {
        let d = Demand::new();
        assert!(!d.touch("live/nobody"));
        assert!(!d.is_on_demand("live/nobody"));
        assert!(d.0.read().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_request_wakes_the_watch_and_idle_follows() {
        let d = Demand::new();
        let mut w = d.register("live/cam");
        assert_eq!(w.last_request(), None);
        assert!(!w.wanted(Duration::from_secs(1)));
        let waiter = tokio::spawn({
            let mut w = w.clone();
            async move { w.requested().await }
        });
        assert!(d.touch("live/cam"));
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("task");
        assert!(w.wanted(Duration::from_secs(10)));
        // Idle resolves about 150 ms after the last touch, not before.
        let start = Instant::now();
        d.touch("live/cam");
        tokio::time::timeout(Duration::from_secs(5), w.idle(Duration::from_millis(150)))
            .await
            .expect("idle within 5 s");
        assert!(start.elapsed() >= Duration::from_millis(140));
    }
}
