//! The in-memory store the HTTP server reads: per stream, per rendition, the latest
//! playlist snapshot and the published bytes (init segments, parts, segments).
//!
//! The driver feeds it through a [`StreamWriter`] after every [`Program::push`]
//! ([`StreamWriter::apply`]); readers never touch the [`Program`]. Each rendition has a
//! `tokio::sync::watch` channel carrying its latest [`Snapshot`]: blocking playlist
//! requests and preload-hint part requests wait on it (see `crate::blocking`).
//!
//! # Retention [S §6.2.1, §6.2.2]
//!
//! Parts and segments in the packager's window are served as the packager keeps them.
//! When a segment leaves the window, it and its parts stay downloadable for
//! `removed_retention_tds` target durations (3 by default, as [S §6.2.2] asks of removed
//! segments), then are freed. Memory per rendition is bounded by the window plus that
//! retention; the retention also has a cap in media time (see [`REMOVED_CAP_TDS`]) so a
//! publisher pushing faster than real time cannot grow it.
//!
//! # Stream life
//!
//! [`Store::writer`] creates a stream's entry (or continues a live one: a reconnect
//! within the grace period keeps the same playlists). [`StreamWriter::close`] marks it
//! gone: it keeps being served for [`StoreConfig::linger`], then is dropped. A new
//! writer for a closed name starts a fresh entry.
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use packager::playlist::{MediaPlaylist, Multivariant, RenditionReport};
use packager::{Output, Program};
use tokio::sync::watch;

mod snapshot;
pub use snapshot::{Rendered, Snapshot};

/// Removed segments are dropped, whatever their age, once the removed media they hold
/// adds up to more than this many target durations.
pub const REMOVED_CAP_TDS: u32 = 5;

/// Store settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// How long a closed stream keeps being served before its state is dropped.
    pub linger: Duration,
    /// How long removed parts and segments stay downloadable, in target durations
    /// [S §6.2.2: "at least ... the duration of the Playlist file"; LLHLS.md: 3 x TD].
    pub removed_retention_tds: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            linger: Duration::from_secs(60),
            removed_retention_tds: 3,
        }
    }
}

/// The store: cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    config: StoreConfig,
    streams: RwLock<HashMap<String, Arc<StreamEntry>>>,
}

/// Whether a rendition carries audio or video (its media Content-Type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaType {
    Video,
    Audio,
}

/// A stream as listed for the page and the admin API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSummary {
    pub name: String,
    /// Rendition names, in the program's order (video first, then audio).
    pub renditions: Vec<String>,
    /// Every playlist carries EXT-X-ENDLIST.
    pub ended: bool,
    /// [`StreamWriter::close`] was called: the stream lingers, then disappears.
    pub closed: bool,
}

static EPOCHS: AtomicU64 = AtomicU64::new(1);

/// One stream's state.
pub(crate) struct StreamEntry {
    pub(crate) name: String,
    /// Distinguishes this instance of the stream from earlier ones of the same name
    /// (ETags of media include it, so a reused name never matches an old cached copy).
    pub(crate) epoch: u64,
    closed_at: Mutex<Option<Instant>>,
    state: RwLock<StreamState>,
    retention_tds: u32,
}

#[derive(Default)]
struct StreamState {
    /// In the program's order.
    renditions: Vec<Arc<RenditionEntry>>,
    multivariant: Option<(Multivariant, Arc<Rendered>)>,
}

/// One rendition: its snapshot channel and its bytes.
pub(crate) struct RenditionEntry {
    pub(crate) name: String,
    media_type: RwLock<MediaType>,
    snapshot: watch::Sender<Arc<Snapshot>>,
    media: RwLock<MediaStore>,
}

/// A stored init segment, part or segment.
#[derive(Clone, Debug)]
pub struct Media {
    /// The bytes: one chunk for init segments and parts, the parts of a segment in order.
    pub chunks: Arc<[Bytes]>,
    /// Total length of `chunks`.
    pub len: u64,
    /// When it was stored (Last-Modified).
    pub stored: SystemTime,
    pub media_type: MediaType,
    /// Strong ETag value, quoted.
    pub etag: String,
}

struct Stored {
    data: Bytes,
    stored: SystemTime,
}

struct StoredSegment {
    parts: Arc<[Bytes]>,
    len: u64,
    stored: SystemTime,
    init_version: u32,
}

#[derive(Default)]
struct MediaStore {
    inits: BTreeMap<u32, Stored>,
    parts: BTreeMap<(u64, u32), Stored>,
    segments: BTreeMap<u64, StoredSegment>,
    /// First MSN of the packager's window at the last apply: anything before it was
    /// removed.
    window_start: u64,
    /// Segments removed from the window, oldest first: (msn, when, media duration).
    removed: VecDeque<Removed>,
}

struct Removed {
    msn: u64,
    at: Instant,
    duration: Duration,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    pub fn new(config: StoreConfig) -> Store {
        Store {
            inner: Arc::new(StoreInner {
                config,
                streams: RwLock::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// The writer for stream `name`: creates its entry, continues a live one, or
    /// replaces a closed one with a fresh entry.
    pub fn writer(&self, name: &str) -> StreamWriter {
        let mut streams = write(&self.inner.streams);
        self.sweep_locked(&mut streams);
        let fresh = || {
            Arc::new(StreamEntry {
                name: name.to_owned(),
                epoch: next_epoch(),
                closed_at: Mutex::new(None),
                state: RwLock::new(StreamState::default()),
                retention_tds: self.inner.config.removed_retention_tds,
            })
        };
        let entry = match streams.get(name) {
            Some(e) if !e.is_closed() => e.clone(),
            _ => {
                let e = fresh();
                streams.insert(name.to_owned(), e.clone());
                e
            }
        };
        StreamWriter {
            store: self.clone(),
            entry,
        }
    }

    /// Names of the streams being served (live, and closed ones still lingering), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.live_entries().map(|e| e.name.clone()).collect();
        names.sort();
        names
    }

    /// Every stream being served, sorted by name.
    pub fn streams(&self) -> Vec<StreamSummary> {
        let mut out: Vec<StreamSummary> = self
            .live_entries()
            .map(|e| {
                let state = read(&e.state);
                StreamSummary {
                    name: e.name.clone(),
                    renditions: state.renditions.iter().map(|r| r.name.clone()).collect(),
                    ended: !state.renditions.is_empty()
                        && state
                            .renditions
                            .iter()
                            .all(|r| r.snapshot.borrow().playlist.ended),
                    closed: e.is_closed(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The latest media playlist of a rendition.
    pub fn playlist(&self, stream: &str, rendition: &str) -> Option<MediaPlaylist> {
        let r = self.rendition(stream, rendition)?;
        let snapshot = r.snapshot();
        Some(snapshot.playlist.clone())
    }

    /// The bytes of a part, if it is servable now.
    pub fn part(&self, stream: &str, rendition: &str, msn: u64, index: u32) -> Option<Bytes> {
        let (entry, r) = self.lookup(stream, rendition)?;
        r.part(&entry, msn, index)
            .and_then(|m| m.chunks.first().cloned())
    }

    /// Drops closed streams whose linger time is over.
    pub fn sweep(&self) {
        let mut streams = write(&self.inner.streams);
        self.sweep_locked(&mut streams);
    }

    fn sweep_locked(&self, streams: &mut HashMap<String, Arc<StreamEntry>>) {
        let linger = self.inner.config.linger;
        streams.retain(|_, e| !e.expired(linger));
    }

    fn live_entries(&self) -> impl Iterator<Item = Arc<StreamEntry>> {
        let linger = self.inner.config.linger;
        let streams = read(&self.inner.streams);
        let list: Vec<Arc<StreamEntry>> = streams
            .values()
            .filter(|e| !e.expired(linger))
            .cloned()
            .collect();
        list.into_iter()
    }

    pub(crate) fn stream(&self, name: &str) -> Option<Arc<StreamEntry>> {
        let streams = read(&self.inner.streams);
        let e = streams.get(name)?;
        (!e.expired(self.inner.config.linger)).then(|| e.clone())
    }

    pub(crate) fn lookup(
        &self,
        stream: &str,
        rendition: &str,
    ) -> Option<(Arc<StreamEntry>, Arc<RenditionEntry>)> {
        let entry = self.stream(stream)?;
        let r = entry.rendition(rendition)?;
        Some((entry, r))
    }

    fn rendition(&self, stream: &str, rendition: &str) -> Option<Arc<RenditionEntry>> {
        self.lookup(stream, rendition).map(|(_, r)| r)
    }

    fn remove_if_same(&self, entry: &Arc<StreamEntry>) {
        let mut streams = write(&self.inner.streams);
        if streams
            .get(&entry.name)
            .is_some_and(|e| Arc::ptr_eq(e, entry))
        {
            streams.remove(&entry.name);
        }
    }
}

fn next_epoch() -> u64 {
    // Time-based high bits so epochs differ across process restarts too.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (now << 20) | (EPOCHS.fetch_add(1, Ordering::Relaxed) & 0xF_FFFF)
}

impl StreamEntry {
    /// Ended (EXT-X-ENDLIST written) and only lingering.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    fn expired(&self, linger: Duration) -> bool {
        self.closed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|t| t.elapsed() >= linger)
    }

    pub(crate) fn rendition(&self, name: &str) -> Option<Arc<RenditionEntry>> {
        read(&self.state)
            .renditions
            .iter()
            .find(|r| r.name == name)
            .cloned()
    }

    /// The rendered multivariant playlist, once the program has renditions.
    pub(crate) fn multivariant(&self) -> Option<Arc<Rendered>> {
        read(&self.state)
            .multivariant
            .as_ref()
            .map(|(_, r)| r.clone())
    }

    /// EXT-X-TARGETDURATION of the stream (the same in every rendition [S §6.2.4]).
    pub(crate) fn target_duration(&self) -> Option<u32> {
        read(&self.state)
            .renditions
            .first()
            .map(|r| r.snapshot.borrow().playlist.target_duration)
    }

    fn retention(&self, td: u32) -> Duration {
        Duration::from_secs(u64::from(td) * u64::from(self.retention_tds))
    }
}

impl RenditionEntry {
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.subscribe()
    }

    pub(crate) fn media_type(&self) -> MediaType {
        *read(&self.media_type)
    }

    /// A part in the window, or removed less than the retention time ago.
    pub(crate) fn part(&self, entry: &StreamEntry, msn: u64, index: u32) -> Option<Media> {
        let td = self.snapshot.borrow().playlist.target_duration;
        let media = read(&self.media);
        if !media.servable(msn, Instant::now(), entry.retention(td)) {
            return None;
        }
        let s = media.parts.get(&(msn, index))?;
        Some(Media {
            len: s.data.len() as u64,
            chunks: Arc::from([s.data.clone()]),
            stored: s.stored,
            media_type: self.media_type(),
            etag: format!("\"{:x}-{}-{}.{}\"", entry.epoch, self.name, msn, index),
        })
    }

    pub(crate) fn segment(&self, entry: &StreamEntry, msn: u64) -> Option<Media> {
        let td = self.snapshot.borrow().playlist.target_duration;
        let media = read(&self.media);
        if !media.servable(msn, Instant::now(), entry.retention(td)) {
            return None;
        }
        let s = media.segments.get(&msn)?;
        Some(Media {
            chunks: s.parts.clone(),
            len: s.len,
            stored: s.stored,
            media_type: self.media_type(),
            etag: format!("\"{:x}-{}-{}\"", entry.epoch, self.name, msn),
        })
    }

    pub(crate) fn init(&self, entry: &StreamEntry, version: u32) -> Option<Media> {
        let media = read(&self.media);
        let s = media.inits.get(&version)?;
        Some(Media {
            len: s.data.len() as u64,
            chunks: Arc::from([s.data.clone()]),
            stored: s.stored,
            media_type: self.media_type(),
            etag: format!("\"{:x}-{}-init{}\"", entry.epoch, self.name, version),
        })
    }
}

impl MediaStore {
    /// Whether media of segment `msn` may be served: in the window, or removed less than
    /// `retention` ago.
    fn servable(&self, msn: u64, now: Instant, retention: Duration) -> bool {
        if msn >= self.window_start {
            return true;
        }
        self.removed
            .iter()
            .find(|r| r.msn == msn)
            .is_some_and(|r| now.saturating_duration_since(r.at) <= retention)
    }

    /// Records that every segment before `start` left the window at `now`, and frees
    /// removed segments older than `retention` (or beyond the media-time cap).
    fn advance(
        &mut self,
        start: u64,
        durations: &BTreeMap<u64, Duration>,
        now: Instant,
        retention: Duration,
        cap: Duration,
    ) {
        if start > self.window_start {
            let removed: Vec<u64> = self
                .parts
                .range((self.window_start, 0)..(start, 0))
                .map(|((msn, _), _)| *msn)
                .chain(
                    self.segments
                        .range(self.window_start..start)
                        .map(|(m, _)| *m),
                )
                .collect::<std::collections::BTreeSet<u64>>()
                .into_iter()
                .collect();
            for msn in removed {
                let duration = durations.get(&msn).copied().unwrap_or_default();
                self.removed.push_back(Removed {
                    msn,
                    at: now,
                    duration,
                });
            }
            self.window_start = start;
        }
        let mut total: Duration = self.removed.iter().map(|r| r.duration).sum();
        while let Some(front) = self.removed.front() {
            let expired = now.saturating_duration_since(front.at) > retention;
            if !(expired || total > cap) {
                break;
            }
            total = total.saturating_sub(front.duration);
            let msn = front.msn;
            self.removed.pop_front();
            self.free(msn);
        }
    }

    fn free(&mut self, msn: u64) {
        self.segments.remove(&msn);
        let keys: Vec<(u64, u32)> = self
            .parts
            .range((msn, 0)..=(msn, u32::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.parts.remove(&k);
        }
    }

    /// Drops init segments no stored segment or window segment can refer to.
    fn drop_inits(&mut self, keep_from: u32) {
        self.inits.retain(|v, _| *v >= keep_from);
    }
}

/// Writes one stream's outputs into the store.
pub struct StreamWriter {
    store: Store,
    entry: Arc<StreamEntry>,
}

impl StreamWriter {
    pub fn name(&self) -> &str {
        &self.entry.name
    }

    /// After each [`Program::push`]: copies the new bytes from `outputs` (init segments,
    /// parts; segments are assembled from their stored parts), refreshes every
    /// rendition's playlist snapshot, rendition reports and the multivariant playlist
    /// from `program`, frees removed media past its retention, then wakes blocked
    /// requests. Does nothing when `outputs` is empty (the playlists cannot have changed).
    pub fn apply(&self, program: &Program, outputs: &[Output]) {
        if outputs.is_empty() {
            return;
        }
        let now = SystemTime::now();
        let instant = Instant::now();
        let names = program.renditions();
        let multivariant = program.multivariant();
        let audio_names: Vec<String> = multivariant.as_ref().map_or(Vec::new(), audio_renditions);

        // Renditions, in program order; new ones are registered (made visible to
        // readers) only at the end, once their bytes and snapshot are in place.
        let mut fresh: Vec<Arc<RenditionEntry>> = Vec::new();
        let mut renditions: Vec<Arc<RenditionEntry>> = read(&self.entry.state).renditions.clone();
        for name in &names {
            if !renditions.iter().any(|r| &r.name == name)
                && let Some(playlist) = program.playlist(name)
            {
                let entry = Arc::new(RenditionEntry {
                    name: name.clone(),
                    media_type: RwLock::new(MediaType::Video),
                    snapshot: watch::Sender::new(Arc::new(Snapshot::new(
                        playlist,
                        Vec::new(),
                        now,
                    ))),
                    media: RwLock::new(MediaStore::default()),
                });
                fresh.push(entry.clone());
                renditions.push(entry);
            }
        }

        // New bytes.
        for output in outputs {
            match output {
                Output::Init {
                    rendition,
                    version,
                    data,
                } => {
                    if let Some(r) = renditions.iter().find(|r| &r.name == rendition) {
                        write(&r.media).inits.insert(
                            *version,
                            Stored {
                                data: data.clone(),
                                stored: now,
                            },
                        );
                    }
                }
                Output::Part {
                    rendition,
                    msn,
                    index,
                    data,
                    ..
                } => {
                    if let Some(r) = renditions.iter().find(|r| &r.name == rendition) {
                        write(&r.media).parts.insert(
                            (*msn, *index),
                            Stored {
                                data: data.clone(),
                                stored: now,
                            },
                        );
                    }
                }
                Output::Segment { rendition, msn, .. } => {
                    if let Some(r) = renditions.iter().find(|r| &r.name == rendition) {
                        let mut media = write(&r.media);
                        let parts: Vec<Bytes> = media
                            .parts
                            .range((*msn, 0)..=(*msn, u32::MAX))
                            .map(|(_, s)| s.data.clone())
                            .collect();
                        let listed = program
                            .playlist(rendition)
                            .and_then(|p| p.segments.iter().find(|s| s.msn == *msn).cloned());
                        let expected = listed.as_ref().map(|s| s.parts.len());
                        let init_version = listed.map_or(0, |s| s.init_version);
                        let parts = if expected == Some(parts.len()) && !parts.is_empty() {
                            parts
                        } else {
                            // Parts missing from the store (should not happen): take the
                            // program's own concatenation.
                            program
                                .segment(rendition, *msn)
                                .map_or_else(Vec::new, |b| vec![b])
                        };
                        if !parts.is_empty() {
                            let len = parts.iter().map(|b| b.len() as u64).sum();
                            media.segments.insert(
                                *msn,
                                StoredSegment {
                                    parts: parts.into(),
                                    len,
                                    stored: now,
                                    init_version,
                                },
                            );
                        }
                    }
                }
                Output::Discontinuity { .. } | Output::Ended => {}
            }
        }

        // Snapshots, retention, wake-ups.
        for r in &renditions {
            let Some(playlist) = program.playlist(&r.name) else {
                continue;
            };
            *write(&r.media_type) = if audio_names.contains(&r.name) {
                MediaType::Audio
            } else {
                MediaType::Video
            };
            let reports: Vec<RenditionReport> = program.rendition_reports(&r.name);
            let td = playlist.target_duration;
            let start = playlist
                .segments
                .first()
                .map(|s| s.msn)
                .or(playlist.pending.as_ref().map(|p| p.msn))
                .unwrap_or(playlist.media_sequence);
            let durations: BTreeMap<u64, Duration> = r
                .snapshot
                .borrow()
                .playlist
                .segments
                .iter()
                .map(|s| (s.msn, s.duration))
                .collect();
            {
                let mut media = write(&r.media);
                let cap = Duration::from_secs(u64::from(td) * u64::from(REMOVED_CAP_TDS));
                media.advance(start, &durations, instant, self.entry.retention(td), cap);
                // Init segments stay while a stored segment or the pending one names them.
                let keep_from = media
                    .segments
                    .values()
                    .map(|s| s.init_version)
                    .chain(playlist.pending.as_ref().map(|p| p.init_version))
                    .min();
                if let Some(v) = keep_from {
                    media.drop_inits(v);
                }
            }
            // Every snapshot carries fresh rendition reports, but waiters only care about
            // this rendition's own playlist: wake them only when it changed.
            let snapshot = Arc::new(Snapshot::new(playlist, reports, now));
            r.snapshot.send_if_modified(|current| {
                let changed = current.playlist != snapshot.playlist;
                *current = snapshot;
                changed
            });
        }

        // Publish new renditions and the multivariant playlist.
        let mut state = write(&self.entry.state);
        state.renditions.extend(fresh);
        state
            .renditions
            .sort_by_key(|r| names.iter().position(|n| n == &r.name));
        if let Some(m) = multivariant
            && state.multivariant.as_ref().is_none_or(|(old, _)| *old != m)
        {
            let text = packager::playlist::render_multivariant(&m);
            state.multivariant = Some((m, Arc::new(Rendered::new(text.into(), now))));
        }
    }

    /// The stream is gone for good (after the grace period and ENDLIST): it keeps being
    /// served for [`StoreConfig::linger`], then its state is dropped. Wakes every waiter
    /// (they see the final playlists).
    pub fn close(&self) {
        {
            let mut closed = self
                .entry
                .closed_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if closed.is_some() {
                return;
            }
            *closed = Some(Instant::now());
        }
        for r in read(&self.entry.state).renditions.iter() {
            r.snapshot.send_modify(|_| {});
        }
        let linger = self.store.inner.config.linger;
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let store = self.store.clone();
            let entry = self.entry.clone();
            handle.spawn(async move {
                tokio::time::sleep(linger).await;
                store.remove_if_same(&entry);
            });
        }
    }
}

/// Names of the renditions that carry audio: the audio group's rendition, or the variant
/// of an audio-only stream (no resolution, audio codecs only).
fn audio_renditions(m: &Multivariant) -> Vec<String> {
    let mut out: Vec<String> = m.audio.iter().map(|a| a.name.clone()).collect();
    for v in &m.variants {
        let audio_only = v.resolution.is_none()
            && !v.codecs.is_empty()
            && v.codecs.iter().all(|c| {
                let c = c.to_ascii_lowercase();
                c.starts_with("mp4a") || c == "opus" || c.starts_with("ac-3") || c == "ec-3"
            });
        if audio_only {
            out.push(v.name.clone());
        }
    }
    out
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
