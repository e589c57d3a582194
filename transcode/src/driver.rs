//! The transcode driver: hub announcements in, one ladder task per source stream.
//!
//! Imitates `origin::driver`: the announcement receiver is taken before listing
//! `Hub::streams()`, so no stream falls between the two, and a hub entry is handed to a
//! ladder only once (by entry id), whatever order announcements and resynchronisation
//! after a lagged receiver race in. Rung streams (`live/alice@720p`) are never
//! transcoded again, nor are streams whose transcoding is off.
//!
//! A ladder lives as long as its hub entry: a takeover reaches it as a Discontinuity;
//! a publisher that leaves ends it (its rung streams end too), and a re-publish is a
//! new entry with a new ladder.
use std::collections::HashMap;

use media::hub::{AnnouncementKind, Hub, split_rung_stream};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::TranscodeConfig;
use crate::ladder::{LadderSettings, run_ladder};
use crate::metrics::TranscodeMetrics;
use crate::probe::select_backend;

/// Transcodes every source stream published on `hub` (see the module docs) until
/// `shutdown` is cancelled, then drains every ladder and returns once all have ended.
/// Returns at once when `config.enabled` is false; on a GStreamer that cannot start it
/// logs the error and only waits for `shutdown` (the source renditions still play).
pub async fn run(
    hub: Hub,
    config: TranscodeConfig,
    metrics: Option<TranscodeMetrics>,
    shutdown: CancellationToken,
) {
    if !config.enabled {
        tracing::info!("transcoding disabled");
        return;
    }
    let mut announcements = hub.announcements();
    let probe_config = config.clone();
    let backend = match tokio::task::spawn_blocking(move || select_backend(&probe_config)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "transcoding unavailable");
            shutdown.cancelled().await;
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "transcode backend probe panicked");
            shutdown.cancelled().await;
            return;
        }
    };
    let mut d = Driver {
        hub,
        config,
        backend,
        metrics,
        shutdown,
        tracker: TaskTracker::new(),
        handed: HashMap::new(),
    };
    d.resync();
    loop {
        let a = tokio::select! {
            () = d.shutdown.cancelled() => break,
            a = announcements.recv() => a,
        };
        match a {
            Ok(a) => match a.kind {
                AnnouncementKind::Published => d.handle(&a.name),
                AnnouncementKind::Ended => {
                    if d.handed.get(&a.name) == Some(&a.id) {
                        d.handed.remove(&a.name);
                    }
                }
            },
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "hub announcements lagged, resynchronising");
                d.resync();
            }
            Err(broadcast::error::RecvError::Closed) => {
                d.shutdown.cancelled().await;
                break;
            }
        }
    }
    d.tracker.close();
    d.tracker.wait().await;
}

struct Driver {
    hub: Hub,
    config: TranscodeConfig,
    backend: crate::Backend,
    metrics: Option<TranscodeMetrics>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// Per name, the newest hub entry id already given a ladder.
    handed: HashMap<String, u64>,
}

impl Driver {
    fn resync(&mut self) {
        for s in self.hub.streams() {
            self.handle(&s.name);
        }
    }

    fn handle(&mut self, name: &str) {
        if split_rung_stream(name).is_some() {
            return;
        }
        let ladder = self.config.for_stream(name);
        if !ladder.enabled || ladder.rungs.is_empty() {
            return;
        }
        let Some(sub) = self.hub.subscribe(name) else {
            return;
        };
        let id = sub.stream_id();
        if self.handed.get(name).is_some_and(|&done| done >= id) {
            return;
        }
        self.handed.insert(name.to_owned(), id);
        let settings = LadderSettings {
            hub: self.hub.clone(),
            ladder,
            backend: self.backend.clone(),
            x264_preset: self.config.x264_preset.clone(),
            keyframe_interval: (self.config.keyframe_interval_ms * 90) as i64,
            metrics: self.metrics.clone(),
        };
        let span = tracing::info_span!("ladder", stream = %name, id);
        self.tracker
            .spawn(run_ladder(sub, settings, self.shutdown.clone()).instrument(span));
    }
}
