//! The stream hub: one entry per stream name, one publisher, many subscribers.
//!
//! Ingest claims a name with [`Hub::publish`] and pushes [`StreamEvent`]s through the
//! returned [`Publisher`]; transcoders and packagers call [`Hub::subscribe`] and read them
//! from a [`Subscriber`]. The hub owns no sockets and no tasks.
//!
//! Fan-out rules:
//! - Each subscriber has its own queue bounded to [`HubConfig::subscriber_queue_frames`]
//!   frames. When it is full the subscriber is too slow: new frames are dropped, and
//!   counted ([`Subscriber::dropped`], [`StreamSnapshot::dropped_frames`],
//!   [`Hub::dropped_frames_total`]), until a *resume point* finds room: a video keyframe,
//!   or any sync sample for a stream without video. Frames already queued are kept, so a
//!   subscriber sees a contiguous run, a gap, then a keyframe. The publisher never waits.
//! - Control events (Tracks, Discontinuity, End) are never dropped (a flood of them with no
//!   frame between is folded to its first Discontinuity and last Tracks, see `queue.rs`).
//! - A new subscriber is replayed the GOP cache (see `cache.rs`): the Tracks in effect at
//!   the latest video keyframe, then everything since. When the cache holds nothing
//!   decodable, or more frames than a subscriber queue holds, it gets the current Tracks
//!   and starts at the next resume point instead.
//! - Payloads are `Bytes`: a send clones a handle per subscriber, never the data, and costs
//!   O(subscribers) under one stream lock plus one short lock per subscriber queue.
//!
//! Takeover: with [`HubConfig::takeover`] on, a second `publish` of a live name evicts the
//! first publisher. Subscribers keep their handle and read
//! `Discontinuity { reason: Takeover }`, then the new publisher's events. Counters in the
//! snapshot (`bytes_in`, per-track stats, `started`) describe the current publisher;
//! `dropped_frames` covers the stream entry's whole life.
//!
//! Announcements: [`Hub::announcements`] tells who is interested (the packaging driver)
//! when a stream entry appears ([`AnnouncementKind::Published`]) or ends
//! ([`AnnouncementKind::Ended`]), without polling. Each entry has an id
//! ([`Subscriber::stream_id`], [`Announcement::id`]) that grows with every new entry, so
//! a listener can tell a re-publish of a name from the entry it already follows. A
//! takeover keeps the entry: it is announced to subscribers as a Discontinuity, not here.
//! The channel is a bounded broadcast: a listener that falls more than
//! [`ANNOUNCEMENT_CAPACITY`] behind gets `Lagged` and should resynchronise from
//! [`Hub::streams`].
//!
//! Transport figures: a publisher whose transport measures itself (SRT: round trip,
//! retransmissions, losses) hands the latest figures to [`Publisher::set_transport_stats`];
//! they ride along in [`StreamSnapshot::transport`] for the admin API and metrics. The
//! hub only stores them; it never reads a socket.

mod cache;
mod queue;
mod rung;
mod stats;

pub use rung::{RUNG_SEPARATOR, rung_stream_name, split_rung_stream};

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use tokio::sync::{Notify, broadcast, watch};

use crate::{DiscontinuityReason, Frame, MediaKind, StreamEvent, TrackId, TrackInfo};
use cache::GopCache;
use queue::{Gate, Push, SubQueue};
use stats::TrackStatsSet;

/// Hub limits and policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubConfig {
    /// A new publisher of a live name evicts the old one (true) or is refused (false).
    pub takeover: bool,
    /// Frames a subscriber may have waiting before it starts to drop.
    pub subscriber_queue_frames: usize,
    /// Most events (frames and control events) kept in a GOP cache.
    pub gop_cache_max_frames: usize,
    /// Most frame payload bytes kept in a GOP cache.
    pub gop_cache_max_bytes: usize,
}

impl Default for HubConfig {
    fn default() -> HubConfig {
        HubConfig {
            takeover: true,
            subscriber_queue_frames: 1024,
            gop_cache_max_frames: 1500,
            gop_cache_max_bytes: 32 << 20,
        }
    }
}

/// Announcements kept for a listener that has not read them yet (see the module docs).
pub const ANNOUNCEMENT_CAPACITY: usize = 256;

/// A stream entry appeared or ended (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    pub name: String,
    /// The entry's id: a new entry for the same name gets a higher one.
    pub id: u64,
    pub kind: AnnouncementKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnouncementKind {
    /// A publisher claimed a free name: a new entry, subscribable now.
    Published,
    /// The entry's publisher ended (or was dropped); its subscribers read End.
    Ended,
}

/// Who publishes a stream, for snapshots and error messages.
#[derive(Clone, Debug)]
pub struct PublisherInfo {
    /// "rtmp", "srt", "rtsp", "transcode", ...
    pub protocol: &'static str,
    pub peer: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    #[error("stream {name} already has a publisher ({peer})")]
    Busy { name: String, peer: SocketAddr },
}

/// A live stream as seen at one instant.
#[derive(Clone, Debug)]
pub struct StreamSnapshot {
    pub name: String,
    pub protocol: &'static str,
    pub peer: SocketAddr,
    /// When the current publisher claimed the name.
    pub started: SystemTime,
    /// Wire bytes the current publisher reported with [`Publisher::add_bytes`].
    pub bytes_in: u64,
    pub subscribers: usize,
    /// Frames dropped for slow subscribers of this stream since it appeared.
    pub dropped_frames: u64,
    /// The current publisher's tracks, in its Tracks order.
    pub tracks: Vec<TrackStats>,
    /// The latest figures the current publisher's transport reported, if it reports any
    /// ([`Publisher::set_transport_stats`]).
    pub transport: Option<TransportStats>,
}

/// What a packet transport (SRT, RTP) knows about the path from its publisher, as
/// cumulative counters since the connection started plus current gauges. Figures a
/// transport cannot measure stay `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransportStats {
    /// Round-trip time to the publisher.
    pub rtt: Option<std::time::Duration>,
    /// Data packets received, retransmissions included.
    pub packets_received: u64,
    /// Data packets found missing on arrival (later recovered or not).
    pub packets_lost: u64,
    /// Retransmitted data packets received.
    pub packets_retransmitted: u64,
    /// Data packets dropped for good (arrived too late, or never).
    pub packets_dropped: u64,
    /// Receive bitrate over the last reporting interval, wire payload bits per second.
    pub receive_bitrate_bps: u64,
    /// MPEG-TS packets whose continuity counter skipped (0 when not carrying TS).
    pub ts_continuity_errors: u64,
    /// Times an MPEG-TS demuxer lost and found packet sync again (0 when not TS).
    pub ts_resyncs: u64,
}

/// Counters of one track of the current publisher.
#[derive(Clone, Debug)]
pub struct TrackStats {
    pub info: TrackInfo,
    pub frames: u64,
    /// Payload bytes (frame data, not wire bytes).
    pub bytes: u64,
    /// Payload bitrate over the last 5 s of the track's own `dts` timeline (not the wall
    /// clock); 0 until two frames are spaced apart. See `stats.rs`.
    pub bitrate_bps: u64,
}

/// The stream registry. Cheap to clone; all clones share the same streams.
#[derive(Clone)]
pub struct Hub(Arc<HubInner>);

struct HubInner {
    config: HubConfig,
    /// Lock order: `streams`, then a stream's `state`, then a subscriber's `queue`.
    streams: Mutex<HashMap<String, Arc<Stream>>>,
    dropped_total: AtomicU64,
    /// Id of the next stream entry (taken under the `streams` lock).
    next_id: AtomicU64,
    /// Sent under the `streams` lock, so announcements keep the order of the changes.
    announce: broadcast::Sender<Announcement>,
}

struct Stream {
    name: String,
    id: u64,
    state: Mutex<StreamState>,
}

struct PublisherRecord {
    generation: u64,
    protocol: &'static str,
    peer: SocketAddr,
    started: SystemTime,
    bytes_in: Arc<AtomicU64>,
    evicted: watch::Sender<bool>,
    transport: Option<TransportStats>,
}

struct StreamState {
    publisher: PublisherRecord,
    ended: bool,
    tracks: Option<Vec<TrackInfo>>,
    video_tracks: Vec<TrackId>,
    cache: GopCache,
    stats: TrackStatsSet,
    subscribers: Vec<Arc<SubShared>>,
    dropped_frames: u64,
    queue_frames: usize,
}

struct SubShared {
    queue: Mutex<SubQueue>,
    notify: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding a lock leaves consistent-enough counters and queues;
    // carrying on beats taking every stream down with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    pub fn new(config: HubConfig) -> Hub {
        Hub(Arc::new(HubInner {
            config,
            streams: Mutex::new(HashMap::new()),
            dropped_total: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            announce: broadcast::channel(ANNOUNCEMENT_CAPACITY).0,
        }))
    }

    /// A receiver of every stream entry published or ended from now on. To learn about
    /// streams already live, call [`Hub::streams`] after taking the receiver (then a
    /// stream is seen at least once, maybe twice: compare ids).
    pub fn announcements(&self) -> broadcast::Receiver<Announcement> {
        self.0.announce.subscribe()
    }

    fn announce(&self, name: &str, id: u64, kind: AnnouncementKind) {
        // No receiver is not an error: nobody listens.
        let _ = self.0.announce.send(Announcement {
            name: name.to_owned(),
            id,
            kind,
        });
    }

    pub fn config(&self) -> &HubConfig {
        &self.0.config
    }

    /// Claims `name`. With takeover on, an existing publisher is evicted: its
    /// [`Publisher::taken_over`] resolves, its later sends are ignored, and subscribers
    /// keep their handle and receive `Discontinuity { reason: Takeover }` then the new
    /// publisher's events. With takeover off, a live name is [`PublishError::Busy`].
    pub fn publish(&self, name: &str, info: PublisherInfo) -> Result<Publisher, PublishError> {
        let mut streams = lock(&self.0.streams);
        let bytes_in = Arc::new(AtomicU64::new(0));
        let (evicted_tx, evicted_rx) = watch::channel(false);
        if let Some(stream) = streams.get(name) {
            let mut st = lock(&stream.state);
            if !self.0.config.takeover {
                return Err(PublishError::Busy {
                    name: name.to_owned(),
                    peer: st.publisher.peer,
                });
            }
            let generation = st.publisher.generation + 1;
            let old = std::mem::replace(
                &mut st.publisher,
                PublisherRecord {
                    generation,
                    protocol: info.protocol,
                    peer: info.peer,
                    started: SystemTime::now(),
                    bytes_in: Arc::clone(&bytes_in),
                    evicted: evicted_tx,
                    transport: None,
                },
            );
            old.evicted.send_replace(true);
            tracing::info!(
                stream = name,
                old_peer = %old.peer,
                new_peer = %info.peer,
                protocol = info.protocol,
                "publisher taken over"
            );
            st.on_takeover();
            return Ok(Publisher {
                hub: self.clone(),
                stream: Arc::clone(stream),
                generation,
                bytes_in,
                evicted: evicted_rx,
            });
        }
        let config = &self.0.config;
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        let stream = Arc::new(Stream {
            name: name.to_owned(),
            id,
            state: Mutex::new(StreamState {
                publisher: PublisherRecord {
                    generation: 0,
                    protocol: info.protocol,
                    peer: info.peer,
                    started: SystemTime::now(),
                    bytes_in: Arc::clone(&bytes_in),
                    evicted: evicted_tx,
                    transport: None,
                },
                ended: false,
                tracks: None,
                video_tracks: Vec::new(),
                cache: GopCache::new(config.gop_cache_max_frames, config.gop_cache_max_bytes),
                stats: TrackStatsSet::default(),
                subscribers: Vec::new(),
                dropped_frames: 0,
                queue_frames: config.subscriber_queue_frames.max(1),
            }),
        });
        streams.insert(name.to_owned(), Arc::clone(&stream));
        self.announce(name, id, AnnouncementKind::Published);
        tracing::debug!(stream = name, peer = %info.peer, protocol = info.protocol, "stream published");
        Ok(Publisher {
            hub: self.clone(),
            stream,
            generation: 0,
            bytes_in,
            evicted: evicted_rx,
        })
    }

    /// Subscribes to a live stream; None when nobody publishes `name`.
    pub fn subscribe(&self, name: &str) -> Option<Subscriber> {
        let stream = Arc::clone(lock(&self.0.streams).get(name)?);
        let shared = {
            let mut st = lock(&stream.state);
            if st.ended {
                return None;
            }
            let shared = Arc::new(SubShared {
                queue: Mutex::new(st.new_queue()),
                notify: Notify::new(),
            });
            st.subscribers.push(Arc::clone(&shared));
            shared
        };
        Some(Subscriber {
            stream,
            shared,
            done: false,
        })
    }

    /// Live streams, sorted by name.
    pub fn streams(&self) -> Vec<StreamSnapshot> {
        let streams: Vec<Arc<Stream>> = lock(&self.0.streams).values().cloned().collect();
        let mut out: Vec<StreamSnapshot> = streams.iter().filter_map(|s| s.snapshot()).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    pub fn stream(&self, name: &str) -> Option<StreamSnapshot> {
        let stream = Arc::clone(lock(&self.0.streams).get(name)?);
        stream.snapshot()
    }

    /// Frames dropped for slow subscribers, all streams, since the hub was made.
    pub fn dropped_frames_total(&self) -> u64 {
        self.0.dropped_total.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("config", &self.0.config)
            .field("streams", &lock(&self.0.streams).len())
            .finish()
    }
}

impl Stream {
    fn snapshot(&self) -> Option<StreamSnapshot> {
        let st = lock(&self.state);
        if st.ended {
            return None;
        }
        Some(StreamSnapshot {
            name: self.name.clone(),
            protocol: st.publisher.protocol,
            peer: st.publisher.peer,
            started: st.publisher.started,
            bytes_in: st.publisher.bytes_in.load(Ordering::Relaxed),
            subscribers: st.subscribers.len(),
            dropped_frames: st.dropped_frames,
            tracks: st.stats.snapshot(),
            transport: st.publisher.transport.clone(),
        })
    }
}

impl StreamState {
    fn has_video(&self) -> bool {
        !self.video_tracks.is_empty()
    }

    /// Where a subscriber may start or resume: a video keyframe, or any sync sample when
    /// the stream has no video track.
    fn is_resume_point(&self, frame: &Frame) -> bool {
        frame.keyframe && (!self.has_video() || self.video_tracks.contains(&frame.track))
    }

    fn new_queue(&self) -> SubQueue {
        match self.cache.replay() {
            Some(replay) if replay.frames <= self.queue_frames => {
                SubQueue::new(self.queue_frames, replay.events, Gate::Open)
            }
            _ => {
                let initial = self
                    .tracks
                    .iter()
                    .cloned()
                    .map(StreamEvent::Tracks)
                    .collect();
                SubQueue::new(self.queue_frames, initial, Gate::Joining)
            }
        }
    }

    fn broadcast_control(&self, event: &StreamEvent) {
        for sub in &self.subscribers {
            lock(&sub.queue).push_control(event.clone());
            sub.notify.notify_one();
        }
    }

    fn on_tracks(&mut self, tracks: Vec<TrackInfo>) {
        let video: Vec<TrackId> = tracks
            .iter()
            .filter(|t| t.codec.kind() == MediaKind::Video)
            .map(|t| t.id)
            .collect();
        if video.is_empty() != self.video_tracks.is_empty() {
            // An audio tail is not a GOP, nor the reverse.
            self.cache.clear();
        }
        self.video_tracks = video;
        self.stats.set_tracks(&tracks);
        let event = StreamEvent::Tracks(tracks.clone());
        self.cache.push_control(&event, self.has_video());
        self.tracks = Some(tracks);
        self.broadcast_control(&event);
    }

    fn on_discontinuity(&mut self, reason: DiscontinuityReason) {
        self.stats.on_discontinuity();
        let event = StreamEvent::Discontinuity { reason };
        self.cache.push_control(&event, self.has_video());
        self.broadcast_control(&event);
    }

    /// Returns how many frame copies were dropped for slow subscribers.
    fn on_frame(&mut self, name: &str, frame: Frame) -> u64 {
        self.stats.on_frame(&frame);
        let resume = self.is_resume_point(&frame);
        let video = self.has_video();
        self.cache
            .push_frame(&frame, resume, video, self.tracks.as_ref());
        let mut dropped = 0;
        for sub in &self.subscribers {
            let mut q = lock(&sub.queue);
            let was_open = q.gate() != Gate::Overflowed;
            match q.push_frame(&frame, resume) {
                Push::Queued => {
                    drop(q);
                    sub.notify.notify_one();
                }
                Push::Dropped => {
                    dropped += 1;
                    if was_open {
                        // Once per overflow episode, not once per frame.
                        tracing::debug!(
                            stream = name,
                            peer = %self.publisher.peer,
                            frame_pts = frame.pts,
                            queued = q.frames(),
                            "slow subscriber, dropping to the next keyframe"
                        );
                    }
                }
                Push::Skipped => {}
            }
        }
        self.dropped_frames += dropped;
        dropped
    }

    fn on_takeover(&mut self) {
        self.broadcast_control(&StreamEvent::Discontinuity {
            reason: DiscontinuityReason::Takeover,
        });
        // The old publisher's parameter sets and GOP mean nothing to the new one.
        self.tracks = None;
        self.video_tracks.clear();
        self.cache.clear();
        self.stats = TrackStatsSet::default();
    }

    fn end(&mut self) {
        self.ended = true;
        self.broadcast_control(&StreamEvent::End);
        self.subscribers.clear();
        self.cache.clear();
    }
}

/// The right to publish one stream name. Not `Clone`: one publisher per name.
///
/// Dropping it while still current ends the stream: subscribers read End and the name is
/// free again.
pub struct Publisher {
    hub: Hub,
    stream: Arc<Stream>,
    generation: u64,
    bytes_in: Arc<AtomicU64>,
    evicted: watch::Receiver<bool>,
}

impl Publisher {
    pub fn name(&self) -> &str {
        &self.stream.name
    }

    /// Fans `event` out to every subscriber. Never blocks on a subscriber; ignored once
    /// this publisher was taken over or ended. Sending End ends the stream as dropping the
    /// publisher does.
    pub fn send(&self, event: StreamEvent) {
        let mut st = lock(&self.stream.state);
        if st.publisher.generation != self.generation || st.ended {
            return;
        }
        match event {
            StreamEvent::Tracks(tracks) => st.on_tracks(tracks),
            StreamEvent::Frame(frame) => {
                let dropped = st.on_frame(&self.stream.name, frame);
                if dropped > 0 {
                    self.hub
                        .0
                        .dropped_total
                        .fetch_add(dropped, Ordering::Relaxed);
                }
            }
            StreamEvent::Discontinuity { reason } => st.on_discontinuity(reason),
            StreamEvent::End => {
                drop(st);
                self.end();
            }
        }
    }

    /// Counts wire bytes received from the peer, for metrics.
    pub fn add_bytes(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    /// Replaces the transport figures shown for this stream (see [`TransportStats`]).
    /// Ignored once this publisher was taken over or ended.
    pub fn set_transport_stats(&self, stats: TransportStats) {
        let mut st = lock(&self.stream.state);
        if st.publisher.generation == self.generation && !st.ended {
            st.publisher.transport = Some(stats);
        }
    }

    /// False once taken over or ended.
    pub fn is_current(&self) -> bool {
        let st = lock(&self.stream.state);
        st.publisher.generation == self.generation && !st.ended
    }

    /// Resolves when another publisher took this name over (at once if that already
    /// happened); pending forever otherwise. Cancel-safe.
    pub async fn taken_over(&self) {
        let mut rx = self.evicted.clone();
        if rx.wait_for(|evicted| *evicted).await.is_err() {
            // The record outlives this publisher (we hold the stream), so the sender only
            // goes away after a takeover, which the value above reports first.
            std::future::pending::<()>().await;
        }
    }

    fn end(&self) {
        let mut streams = lock(&self.hub.0.streams);
        let mut st = lock(&self.stream.state);
        if st.publisher.generation != self.generation || st.ended {
            return;
        }
        st.end();
        if streams
            .get(&self.stream.name)
            .is_some_and(|s| Arc::ptr_eq(s, &self.stream))
        {
            streams.remove(&self.stream.name);
        }
        self.hub
            .announce(&self.stream.name, self.stream.id, AnnouncementKind::Ended);
        tracing::debug!(stream = %self.stream.name, "stream ended");
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.end();
    }
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("name", &self.stream.name)
            .field("generation", &self.generation)
            .finish()
    }
}

/// One reader of a stream, with its own bounded queue.
pub struct Subscriber {
    stream: Arc<Stream>,
    shared: Arc<SubShared>,
    done: bool,
}

impl Subscriber {
    pub fn name(&self) -> &str {
        &self.stream.name
    }

    /// The id of the stream entry this subscriber reads (see [`Announcement::id`]).
    pub fn stream_id(&self) -> u64 {
        self.stream.id
    }

    /// The next event; None after End was delivered. Cancel-safe: an event is only taken
    /// from the queue by the call that returns it.
    pub async fn recv(&mut self) -> Option<StreamEvent> {
        loop {
            if self.done {
                return None;
            }
            if let Some(ev) = self.try_recv() {
                return Some(ev);
            }
            if self.done {
                return None;
            }
            // `notify_one` stores a permit when nobody waits, so a push between the check
            // above and this await is not lost.
            self.shared.notify.notified().await;
        }
    }

    /// The next event if one is queued; None when the queue is empty or End was delivered.
    pub fn try_recv(&mut self) -> Option<StreamEvent> {
        if self.done {
            return None;
        }
        let mut q = lock(&self.shared.queue);
        let ev = q.pop();
        if q.finished() {
            self.done = true;
        }
        ev
    }

    /// Frames dropped because this subscriber fell behind.
    pub fn dropped(&self) -> u64 {
        lock(&self.shared.queue).dropped()
    }

    /// Frames waiting in this subscriber's queue (at most
    /// [`HubConfig::subscriber_queue_frames`]).
    pub fn queued_frames(&self) -> usize {
        lock(&self.shared.queue).frames()
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        lock(&self.shared.queue).is_empty()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let mut st = lock(&self.stream.state);
        st.subscribers.retain(|s| !Arc::ptr_eq(s, &self.shared));
    }
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("name", &self.stream.name)
            .field("done", &self.done)
            .finish()
    }
}

#[cfg(test)]
mod tests;
