//! The packaging driver: hub streams in, store entries out.
//!
//! [`run_packaging`] listens to the hub's announcements ([`Hub::announcements`]) and
//! runs one task per stream name. The task subscribes, feeds every event to one
//! [`Program`] and hands each push's outputs to the stream's [`StreamWriter`] (which
//! wakes the blocked HTTP requests). `Program::push` is CPU-light, so it runs on the
//! runtime; no lock is held across an `.await`.
//!
//! # Publisher gone, grace period, reconnect
//!
//! When the publisher ends (`StreamEvent::End` from the hub), the task pushes
//! `Discontinuity { reason: Reconnect }` at once: the open part and segment are
//! completed, so the last media the publisher sent becomes servable now rather than
//! after the grace period. It then keeps the Program for
//! [`PackagingConfig::grace_period`]:
//! - a new publisher of the same name within it is subscribed to and fed to the SAME
//!   Program, after a `Discontinuity { reason: Reconnect }` (a no-op if nothing was
//!   packaged since the first one): the playlists go on with the same media sequence
//!   and an EXT-X-DISCONTINUITY [S §4.4.4.3, §6.2.1];
//! - otherwise the task pushes End (every playlist gets EXT-X-ENDLIST [S §4.4.3.4])
//!   and closes the writer: the store keeps serving the stream for its linger time.
//!
//! A takeover (a second publisher evicting the first while live) is not an end: the
//! hub passes `Discontinuity { reason: Takeover }` to the same subscriber.
//!
//! # Shutdown
//!
//! When `shutdown` is cancelled every task pushes End (open parts are completed and
//! every playlist ends), closes its writer and stops; [`run_packaging`] returns once
//! they all have. The binary cancels ingest first, so publishers are gone by then.
//!
//! # Transcoded rungs
//!
//! A ladder publishes rung `720p` of `live/alice` as hub stream `live/alice@720p`
//! ([`media::hub::rung_stream_name`]). The driver subscribes to it and hands the
//! subscriber to the task of `live/alice`, which feeds its events to the same Program
//! with [`Program::push_rendition`]: one grid, one set of playlists. A rung published
//! while its source has no task is not packaged (the ladder follows the source, so this
//! only happens in a race with the source's end). [`PackagingConfig::source_listed`]
//! decides per stream whether `source` stays in the multivariant playlist beside rungs.
//!
//! # Which subscriber feeds which task
//!
//! Hub announcements carry the stream entry's id; a name is handed to its live task (or
//! a new one) only for an entry id not handed over before, so a stream is never
//! packaged twice, whatever order announcements, resynchronisation after a lagged
//! receiver and subscriptions race in. A task takes a new subscriber only between
//! publishers (after End); one that arrives early waits in the task's channel. The
//! registry of tasks is locked only for map operations (never across an await), and a
//! task whose grace period runs out removes itself under that lock after checking its
//! channel, so a subscriber is never handed to a task that is finishing.
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use media::hub::{AnnouncementKind, Hub, Subscriber, split_rung_stream};
use media::{DiscontinuityReason, StreamEvent};
use packager::{Output, PackagerConfig, Program};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::metrics::OriginMetrics;
use crate::store::{Store, StreamWriter};

/// Decides, per stream name, whether `source` is listed beside the rungs.
pub type SourceListed = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// One rung's event, with the rung's name.
type RungEvent = (String, StreamEvent);

/// Settings of the packaging driver.
#[derive(Clone)]
pub struct PackagingConfig {
    /// Settings of every stream's [`Program`] (should have passed
    /// [`PackagerConfig::validate`]).
    pub packager: PackagerConfig,
    /// How long a stream whose publisher left waits for it to come back before its
    /// playlists end.
    pub grace_period: Duration,
    /// Where each part's publish delay is observed (`ferrocast_part_publish_delay_seconds`:
    /// from its last frame's arrival, `received`, to the part being servable).
    pub metrics: Option<OriginMetrics>,
    /// Per stream: whether the passthrough `source` rendition is listed in the
    /// multivariant playlist when the stream has transcoded rungs (None: always).
    pub source_listed: Option<SourceListed>,
}

impl fmt::Debug for PackagingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackagingConfig")
            .field("packager", &self.packager)
            .field("grace_period", &self.grace_period)
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl Default for PackagingConfig {
    fn default() -> Self {
        PackagingConfig {
            packager: PackagerConfig::default(),
            grace_period: Duration::from_secs(10),
            metrics: None,
            source_listed: None,
        }
    }
}

/// Stream name -> its running task.
type Registry = Arc<Mutex<HashMap<String, TaskHandle>>>;

/// How the driver reaches a running task.
struct TaskHandle {
    /// Numbers the task (a finishing task removes only its own entry).
    id: u64,
    /// Its next publishers' subscribers.
    next: mpsc::UnboundedSender<Subscriber>,
    /// Its rungs' subscribers, with the rung names.
    rungs: mpsc::UnboundedSender<(String, Subscriber)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Packages every stream published on `hub` into `store` until `shutdown` is
/// cancelled, then ends every stream's playlists and returns when all are done (see
/// the module docs).
pub async fn run_packaging(
    hub: Hub,
    store: Store,
    config: PackagingConfig,
    shutdown: CancellationToken,
) {
    // Take the receiver before listing, so no stream falls between the two.
    let mut announcements = hub.announcements();
    let mut driver = Driver {
        hub,
        store,
        config: Arc::new(config),
        shutdown,
        registry: Registry::default(),
        tracker: TaskTracker::new(),
        handed: HashMap::new(),
        tasks: 0,
    };
    driver.resync();
    loop {
        let announcement = tokio::select! {
            () = driver.shutdown.cancelled() => break,
            a = announcements.recv() => a,
        };
        match announcement {
            Ok(a) => match a.kind {
                AnnouncementKind::Published => driver.handle(&a.name),
                AnnouncementKind::Ended => {
                    // That entry will not be announced again: forget it (bounded map).
                    if driver.handed.get(&a.name) == Some(&a.id) {
                        driver.handed.remove(&a.name);
                    }
                }
            },
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "hub announcements lagged, resynchronising");
                driver.resync();
            }
            Err(broadcast::error::RecvError::Closed) => {
                // The hub is gone (cannot happen while we hold it); wait for shutdown.
                driver.shutdown.cancelled().await;
                break;
            }
        }
    }
    driver.tracker.close();
    driver.tracker.wait().await;
}

struct Driver {
    hub: Hub,
    store: Store,
    config: Arc<PackagingConfig>,
    shutdown: CancellationToken,
    registry: Registry,
    tracker: TaskTracker,
    /// Per name, the newest hub entry id already handed to a task.
    handed: HashMap<String, u64>,
    /// Tasks started (numbers them).
    tasks: u64,
}

impl Driver {
    fn resync(&mut self) {
        for s in self.hub.streams() {
            self.handle(&s.name);
        }
    }

    /// Subscribes to `name` and hands the subscriber to its task (or a new one), unless
    /// that hub entry was handed over already or has ended.
    fn handle(&mut self, name: &str) {
        let Some(sub) = self.hub.subscribe(name) else {
            return;
        };
        let id = sub.stream_id();
        if self.handed.get(name).is_some_and(|&done| done >= id) {
            return;
        }
        self.handed.insert(name.to_owned(), id);
        if let Some((source, rung)) = split_rung_stream(name) {
            match lock(&self.registry).get(source) {
                Some(task) => {
                    let _ = task.rungs.send((rung.to_owned(), sub));
                }
                None => tracing::debug!(stream = name, "rung without a packaged source"),
            }
            return;
        }
        let mut registry = lock(&self.registry);
        let sub = match registry.get(name) {
            Some(task) => match task.next.send(sub) {
                Ok(()) => return,
                // The task is finishing without having removed itself (shutdown):
                // start afresh.
                Err(mpsc::error::SendError(sub)) => sub,
            },
            None => sub,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let (rungs_tx, rungs_rx) = mpsc::unbounded_channel();
        self.tasks += 1;
        registry.insert(
            name.to_owned(),
            TaskHandle {
                id: self.tasks,
                next: tx,
                rungs: rungs_tx,
            },
        );
        drop(registry);
        let mut program = Program::new(self.config.packager.clone());
        if let Some(listed) = &self.config.source_listed {
            program.set_source_listed(listed(name));
        }
        let task = StreamTask {
            id: self.tasks,
            name: name.to_owned(),
            writer: self.store.writer(name),
            program,
            config: Arc::clone(&self.config),
            registry: Arc::clone(&self.registry),
            next: rx,
            new_rungs: rungs_rx,
            rung_events: None,
            shutdown: self.shutdown.clone(),
        };
        let span = tracing::info_span!("packaging", stream = name);
        self.tracker.spawn(task.run(sub).instrument(span));
    }
}

/// One stream's packaging, across reconnects.
struct StreamTask {
    id: u64,
    name: String,
    writer: StreamWriter,
    program: Program,
    config: Arc<PackagingConfig>,
    registry: Registry,
    next: mpsc::UnboundedReceiver<Subscriber>,
    /// Subscribers of this stream's rungs, as the driver finds them.
    new_rungs: mpsc::UnboundedReceiver<(String, Subscriber)>,
    /// Events of every rung, merged by one forwarding task per rung subscriber.
    rung_events: Option<(mpsc::Sender<RungEvent>, mpsc::Receiver<RungEvent>)>,
    shutdown: CancellationToken,
}

/// Rung events queued at most between the forwarders and the task (a rung subscriber
/// has its own bounded hub queue behind this).
const RUNG_EVENTS: usize = 256;

/// Why a publisher's run stopped.
enum Stop {
    PublisherEnded,
    Shutdown,
}

impl StreamTask {
    async fn run(mut self, first: Subscriber) {
        tracing::info!("packaging started");
        let mut sub = first;
        loop {
            if let Stop::Shutdown = self.follow(&mut sub).await {
                break;
            }
            drop(sub);
            // Complete the open part and segment now: the publisher's last frames are
            // servable during the grace period.
            self.push(&StreamEvent::Discontinuity {
                reason: DiscontinuityReason::Reconnect,
            });
            tracing::info!(
                grace_ms = self.config.grace_period.as_millis() as u64,
                "publisher gone, waiting for a reconnect"
            );
            match self.wait_for_publisher().await {
                Some(next) => {
                    tracing::info!("publisher back: continuing after a discontinuity");
                    sub = next;
                    self.push(&StreamEvent::Discontinuity {
                        reason: DiscontinuityReason::Reconnect,
                    });
                }
                None => break,
            }
        }
        self.push(&StreamEvent::End);
        self.writer.close();
        // Gone from the registry (a grace expiry already did it; shutdown did not).
        let mut registry = lock(&self.registry);
        if registry.get(&self.name).is_some_and(|t| t.id == self.id) {
            registry.remove(&self.name);
        }
        drop(registry);
        tracing::info!("packaging ended");
    }

    /// Packages `sub`'s events until its publisher ends or shutdown.
    async fn follow(&mut self, sub: &mut Subscriber) -> Stop {
        let (rung_tx, mut rung_rx) = self
            .rung_events
            .take()
            .unwrap_or_else(|| mpsc::channel(RUNG_EVENTS));
        let stop = loop {
            let event = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break Stop::Shutdown,
                Some((rung, sub)) = self.new_rungs.recv() => {
                    tracing::info!(rung, "rung attached");
                    spawn_rung_forwarder(rung, sub, rung_tx.clone());
                    continue;
                }
                Some((rung, event)) = rung_rx.recv() => {
                    self.push_rung(&rung, &event);
                    continue;
                }
                e = sub.recv() => e,
            };
            match event {
                Some(StreamEvent::End) | None => break Stop::PublisherEnded,
                Some(event) => {
                    self.push(&event);
                    // A backlog is read without waiting: let other tasks run between
                    // events all the same.
                    tokio::task::consume_budget().await;
                }
            }
        };
        // Rung events already queued belong before the source's end.
        while let Ok((rung, event)) = rung_rx.try_recv() {
            self.push_rung(&rung, &event);
        }
        self.rung_events = Some((rung_tx, rung_rx));
        stop
    }

    fn push_rung(&mut self, rung: &str, event: &StreamEvent) {
        let outputs = self.program.push_rendition(rung, event);
        self.apply(outputs);
    }

    /// The next publisher of the name within the grace period; None when it runs out
    /// (the task is then out of the registry) or on shutdown.
    async fn wait_for_publisher(&mut self) -> Option<Subscriber> {
        tokio::select! {
            () = self.shutdown.cancelled() => return None,
            next = self.next.recv() => return next,
            () = tokio::time::sleep(self.config.grace_period) => {}
        }
        let mut registry = lock(&self.registry);
        // A subscriber handed over at the last moment wins over the expiry.
        if let Ok(next) = self.next.try_recv() {
            return Some(next);
        }
        registry.remove(&self.name);
        None
    }

    fn push(&mut self, event: &StreamEvent) {
        let outputs = self.program.push(event);
        self.apply(outputs);
    }

    fn apply(&mut self, outputs: Vec<Output>) {
        if outputs.is_empty() {
            return;
        }
        self.writer.apply(&self.program, &outputs);
        if let Some(metrics) = &self.config.metrics {
            let now = SystemTime::now();
            for output in &outputs {
                if let Output::Part { last_received, .. } = output {
                    // A clock step backwards reads as zero rather than an error.
                    let delay = now.duration_since(*last_received).unwrap_or_default();
                    metrics.observe_part_delay(delay.as_secs_f64());
                }
            }
        }
    }
}

/// Forwards one rung subscriber's events to its stream's task until the rung ends (or
/// the task is gone).
fn spawn_rung_forwarder(
    rung: String,
    mut sub: Subscriber,
    tx: mpsc::Sender<(String, StreamEvent)>,
) {
    tokio::spawn(async move {
        while let Some(event) = sub.recv().await {
            let end = matches!(event, StreamEvent::End);
            if tx.send((rung.clone(), event)).await.is_err() || end {
                break;
            }
        }
    });
}
