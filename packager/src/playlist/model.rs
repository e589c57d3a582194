//! The playlist model: plain data, one snapshot per rendition, rendered by the pure
//! functions in [`super::media`] and [`super::multivariant`].
//!
//! URIs are relative to the rendition's directory and follow DESIGN.md:
//! `init.mp4` (or `init-<version>.mp4` after a codec change), `<msn>.m4s` for segments
//! and `<msn>.<part>.m4s` for parts.
use std::time::{Duration, SystemTime};

/// One rendition's media playlist at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaPlaylist {
    /// EXT-X-TARGETDURATION in whole seconds; never changes for a stream [S §6.2.1].
    pub target_duration: u32,
    /// EXT-X-PART-INF:PART-TARGET; every part's duration is <= this [S §4.4.4.9].
    pub part_target: Duration,
    /// Media sequence number of `segments[0]` (or of `pending` when there are no
    /// complete segments); starts at 1 or more.
    pub media_sequence: u64,
    /// Discontinuities that came before `segments[0]` [S §4.4.3.3].
    pub discontinuity_sequence: u64,
    /// Complete segments in the window, oldest first, consecutive MSNs.
    pub segments: Vec<Segment>,
    /// The segment being built: its parts so far (possibly none). `None` once ended.
    pub pending: Option<PendingSegment>,
    /// The stream has ended: render EXT-X-ENDLIST, no preload hint.
    pub ended: bool,
    /// Every segment starts with an independent (IDR) frame: EXT-X-INDEPENDENT-SEGMENTS.
    pub independent_segments: bool,
    /// The Skip Boundary offered as EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL, or `None` when
    /// delta updates are not offered. It is a property of the stream (set from the config
    /// with [`super::skip_boundary`]), so every rendition carries the same value
    /// [S §6.2.4] and the playlist version does not change over the stream's life.
    pub can_skip_until: Option<Duration>,
}

/// A complete segment.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub msn: u64,
    /// Sum of its samples' durations.
    pub duration: Duration,
    /// EXT-X-PROGRAM-DATE-TIME: its first sample on the program's clock (the ingest
    /// wall-clock time of the timeline's first frame plus the media time since).
    pub program_date_time: SystemTime,
    /// EXT-X-DISCONTINUITY precedes this segment.
    pub discontinuity: bool,
    /// Which init segment (EXT-X-MAP) applies: 0 = `init.mp4`, n = `init-<n>.mp4`.
    pub init_version: u32,
    /// Its parts, in order; renderers list them only for recent segments.
    pub parts: Vec<Part>,
    /// EXT-X-GAP [S §4.4.4.7]: this rendition has no media for the segment (a
    /// transcoded rung whose ladder was restarting); players take it from another
    /// rendition or skip it, and its URI is not served.
    pub gap: bool,
}

/// The segment under construction.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingSegment {
    pub msn: u64,
    pub program_date_time: Option<SystemTime>,
    pub discontinuity: bool,
    pub init_version: u32,
    /// Complete parts so far.
    pub parts: Vec<Part>,
}

/// A complete partial segment.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub index: u32,
    pub duration: Duration,
    /// Its first sample is a sync sample (INDEPENDENT=YES).
    pub independent: bool,
}

/// EXT-X-RENDITION-REPORT for another rendition of the same stream [S §4.4.5.4].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenditionReport {
    /// Relative URI of that rendition's media playlist, e.g. `../720p/index.m3u8`.
    pub uri: String,
    pub last_msn: u64,
    pub last_part: u32,
}

/// The multivariant playlist of one stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Multivariant {
    pub variants: Vec<Variant>,
    pub audio: Option<AudioRendition>,
    /// Every media playlist of the stream is EXT-X-INDEPENDENT-SEGMENTS: the multivariant
    /// playlist then carries the tag too [A 9.11].
    pub independent_segments: bool,
}

/// One EXT-X-STREAM-INF.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    /// Rendition name, also its directory: `source`, `720p`, ...
    pub name: String,
    /// Peak segment bitrate of video plus its audio, bits/s.
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    /// RFC 6381 codecs of the video and (when present) the audio rendition.
    pub codecs: Vec<String>,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
}

/// The one EXT-X-MEDIA TYPE=AUDIO rendition every variant refers to.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioRendition {
    /// Directory name, `audio`.
    pub name: String,
    pub group_id: String,
    pub language: Option<String>,
    pub channels: u8,
    pub codec: String,
}
