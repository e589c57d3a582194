use std::time::SystemTime;

use bytes::Bytes;

use crate::Codec;

/// Identifies a track within one stream (not globally).
pub type TrackId = u32;

/// One access unit of one track.
///
/// Times are in the track's own timescale (video 90 kHz, audio its sample rate), 64-bit
/// and never wrapping: ingest unwraps 32-bit wire clocks and rebases them to start near
/// zero. Video `data` is length-prefixed NAL units (4-byte lengths, the form fMP4
/// stores); audio `data` is one raw access unit (AAC without ADTS, one Opus packet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub track: TrackId,
    pub pts: i64,
    pub dts: i64,
    /// A sync sample: an IDR (or IRAP) for video; every audio frame is a keyframe.
    pub keyframe: bool,
    pub data: Bytes,
    /// Wall-clock time the frame reached the server: drives EXT-X-PROGRAM-DATE-TIME and
    /// every latency figure.
    pub received: SystemTime,
}

/// A track's identity and decoder configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackInfo {
    pub id: TrackId,
    pub codec: Codec,
    /// Ticks per second of this track's `pts`/`dts`.
    pub timescale: u32,
}

/// Why a stream's timeline is broken; players see an EXT-X-DISCONTINUITY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscontinuityReason {
    /// A new publisher took over the stream name.
    Takeover,
    /// The publisher reconnected after going away.
    Reconnect,
    /// Timestamps jumped by more than the tolerated gap.
    TimestampJump,
    /// Codec parameters changed (a new init segment is needed).
    CodecChange,
}

/// What flows through the hub, in order, for one stream.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// The complete set of tracks; sent before any frame and again whenever it changes.
    Tracks(Vec<TrackInfo>),
    Frame(Frame),
    Discontinuity {
        reason: DiscontinuityReason,
    },
    /// The publisher finished; no more events follow from it.
    End,
}
