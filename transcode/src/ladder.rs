//! One stream's ladder: a small async task that reads the source from the hub, and a
//! plain OS thread that owns the GStreamer pipeline.
//!
//! The async task only forwards hub events into a bounded channel (`send().await`, so a
//! slow ladder backs up into the hub's subscriber queue, which drops to the next
//! keyframe, and never blocks a tokio worker). The thread does every GStreamer call that
//! may block: building, pushing into appsrc (which blocks while the pipeline is full),
//! draining (EOS, bounded wait) and tearing down.
//!
//! What the thread does with each source event:
//! - `Tracks` with a new video configuration: drain, send `Discontinuity{CodecChange}`
//!   on the rungs that stay, drop the rungs that no longer fit (their subscribers read
//!   End), publish the new ones; the pipeline is rebuilt at the next keyframe. An AV1
//!   source is not transcoded (warning). Audio is ignored: the packager takes it from
//!   the source.
//! - `Frame`: waiting for a keyframe, a frame that is not one is dropped; at a keyframe
//!   the pipeline is built. Then the frame is pushed, marked "force a keyframe" when it
//!   is a source keyframe or the last mark is a keyframe interval back.
//! - `Discontinuity`: drain, forward the same discontinuity to every rung, rebuild at
//!   the next keyframe.
//! - `End` (or the source subscriber closing, or shutdown): drain, then drop the rung
//!   publishers.
//! - A pipeline error (corrupt input, a lost encoder session): logged with the element
//!   and message, counted in `ferrocast_transcode_restarts_total`, the pipeline torn
//!   down; frames are dropped until the next source keyframe, where it is rebuilt. The
//!   rung publishers stay: their subscribers see a gap, not an End.
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use media::hub::{Hub, PublisherInfo, Subscriber, rung_stream_name};
use media::{Codec, DiscontinuityReason, Frame, MediaKind, StreamEvent};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::{StreamLadder, plan_rungs, rung_width};
use crate::metrics::TranscodeMetrics;
use crate::pipeline::{BuildSpec, RungOutput, Running, SourceVideo};
use crate::probe::Backend;

/// Source events buffered between the async task and the ladder thread.
const CHANNEL: usize = 16;

/// What a ladder needs besides its source.
#[derive(Clone)]
pub(crate) struct LadderSettings {
    pub hub: Hub,
    pub ladder: StreamLadder,
    pub backend: Backend,
    pub x264_preset: String,
    /// Longest keyframe interval in 90 kHz ticks.
    pub keyframe_interval: i64,
    pub metrics: Option<TranscodeMetrics>,
}

/// Runs the ladder of `sub`'s stream until its End, the subscriber closing or
/// `shutdown`; returns once the pipeline is drained and the rung publishers dropped.
pub(crate) async fn run_ladder(
    mut sub: Subscriber,
    settings: LadderSettings,
    shutdown: CancellationToken,
) {
    let stream = sub.name().to_owned();
    let (tx, rx) = mpsc::channel(CHANNEL);
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let worker = Worker::new(stream.clone(), settings);
    let spawned = std::thread::Builder::new()
        .name("ferrocast-ladder".into())
        .spawn(move || {
            worker.run(rx);
            let _ = done_tx.send(());
        });
    if let Err(e) = spawned {
        tracing::error!(stream = %stream, error = %e, "cannot start the ladder thread");
        return;
    }
    loop {
        let ev = tokio::select! {
            () = shutdown.cancelled() => break,
            ev = sub.recv() => ev,
        };
        let Some(ev) = ev else { break };
        let end = matches!(ev, StreamEvent::End);
        tokio::select! {
            () = shutdown.cancelled() => break,
            r = tx.send(ev) => if r.is_err() { break },
        }
        if end {
            break;
        }
    }
    drop(tx);
    let _ = done_rx.await;
    tracing::info!(stream = %stream, "ladder ended");
}

struct Worker {
    stream: String,
    s: LadderSettings,
    video: Option<SourceVideo>,
    outputs: Vec<Arc<RungOutput>>,
    running: Option<Running>,
    /// Source pts of the last picture marked as a forced keyframe.
    last_forced: Option<i64>,
    /// The last build error logged (the same one is not logged at every keyframe).
    last_build_error: Option<String>,
    /// Rung names that ever had a series (forgotten at the end).
    series: Vec<String>,
}

impl Worker {
    fn new(stream: String, s: LadderSettings) -> Worker {
        Worker {
            stream,
            s,
            video: None,
            outputs: Vec::new(),
            running: None,
            last_forced: None,
            last_build_error: None,
            series: Vec::new(),
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<StreamEvent>) {
        while let Some(ev) = rx.blocking_recv() {
            match ev {
                StreamEvent::Tracks(tracks) => self.tracks(&tracks),
                StreamEvent::Frame(f) => self.frame(f),
                StreamEvent::Discontinuity { reason } => {
                    self.drain();
                    for o in &self.outputs {
                        o.publisher.send(StreamEvent::Discontinuity {
                            reason: reason.clone(),
                        });
                    }
                }
                StreamEvent::End => break,
            }
        }
        self.drain();
        // Dropping the publishers ends the rung streams.
        self.outputs.clear();
        if let Some(m) = &self.s.metrics {
            m.forget_stream(&self.stream, &self.series);
        }
    }

    fn tracks(&mut self, tracks: &[media::TrackInfo]) {
        let new = tracks
            .iter()
            .find(|t| t.codec.kind() == MediaKind::Video)
            .and_then(|t| match &t.codec {
                Codec::H264 { .. } | Codec::H265 { .. } => Some(SourceVideo {
                    track: t.id,
                    codec: t.codec.clone(),
                }),
                other => {
                    tracing::warn!(stream = %self.stream, codec = other.name(), "source codec not transcoded; only the source rendition is served");
                    None
                }
            });
        if new == self.video {
            return;
        }
        self.drain();
        for o in &self.outputs {
            o.publisher.send(StreamEvent::Discontinuity {
                reason: DiscontinuityReason::CodecChange,
            });
            o.reset_tracks();
        }
        self.video = new;
        self.replan();
    }

    /// Matches the rung publishers to the current source: keeps the rungs that still
    /// fit, drops the others, publishes the new ones.
    fn replan(&mut self) {
        let Some((w, h)) = self.video.as_ref().and_then(|v| v.codec.dimensions()) else {
            self.outputs.clear();
            return;
        };
        let mut old: Vec<Arc<RungOutput>> = std::mem::take(&mut self.outputs);
        for rung in plan_rungs(&self.s.ladder.rungs, h) {
            let width = rung_width(w, h, rung.height);
            let publisher = match old.iter().position(|o| o.rung.name == rung.name) {
                Some(i) => old.swap_remove(i).publisher.clone(),
                None => {
                    let name = rung_stream_name(&self.stream, &rung.name);
                    let info = PublisherInfo {
                        protocol: "transcode",
                        peer: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                    };
                    match self.s.hub.publish(&name, info) {
                        Ok(p) => Arc::new(p),
                        Err(e) => {
                            tracing::warn!(stream = %self.stream, rung = %rung.name, error = %e, "rung not published");
                            continue;
                        }
                    }
                }
            };
            if !self.series.contains(&rung.name) {
                self.series.push(rung.name.clone());
            }
            self.outputs
                .push(Arc::new(RungOutput::new(rung, width, publisher)));
        }
        tracing::info!(
            stream = %self.stream,
            source = format!("{w}x{h}"),
            rungs = ?self.outputs.iter().map(|o| format!("{}={}x{}", o.rung.name, o.width, o.rung.height)).collect::<Vec<_>>(),
            "ladder planned"
        );
    }

    fn frame(&mut self, f: Frame) {
        let Some(video) = &self.video else { return };
        if f.track != video.track || self.outputs.is_empty() {
            return;
        }
        if self.running.is_none() {
            if !f.keyframe {
                return;
            }
            let spec = BuildSpec {
                stream: &self.stream,
                source: video,
                outputs: &self.outputs,
                backend: &self.s.backend,
                x264_preset: &self.s.x264_preset,
                base: f.pts,
                metrics: self.s.metrics.clone(),
            };
            match Running::build(&spec) {
                Ok(r) => {
                    self.running = Some(r);
                    self.last_build_error = None;
                    self.last_forced = None;
                }
                Err(e) => {
                    let text = e.to_string();
                    if self.last_build_error.as_ref() != Some(&text) {
                        tracing::error!(stream = %self.stream, error = %text, "ladder build failed; retrying at the next keyframe");
                        self.last_build_error = Some(text);
                    }
                    return;
                }
            }
        }
        let force = f.keyframe
            || self
                .last_forced
                .is_none_or(|l| f.pts - l >= self.s.keyframe_interval);
        if force {
            self.last_forced = Some(f.pts);
        }
        let Some(running) = &self.running else { return };
        if let Err(e) = running.push(&f, force) {
            tracing::error!(stream = %self.stream, error = %e, "ladder failed; restarting at the next source keyframe");
            if let Some(m) = &self.s.metrics {
                m.restarts.with_label_values(&[self.stream.as_str()]).inc();
            }
            self.running = None;
        }
    }

    fn drain(&mut self) {
        if let Some(r) = self.running.take()
            && let Err(e) = r.drain()
        {
            tracing::warn!(stream = %self.stream, error = %e, "ladder drain incomplete");
        }
        self.last_forced = None;
    }
}
