use std::net::SocketAddr;

use thiserror::Error;

/// Everything that can end an ingest connection. Each variant says enough to find the
/// fault in a log: what was being read, and where.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    #[error("rtmp handshake: {reason}")]
    Handshake { reason: &'static str },
    #[error("rtmp handshake: peer asked for version {version}, only version 3 is supported")]
    HandshakeVersion { version: u8 },
    #[error("rtmp chunk stream: {reason} (at byte {offset})")]
    Chunk { reason: &'static str, offset: u64 },
    #[error("rtmp message of {len} bytes exceeds the limit of {max}")]
    MessageTooLarge { len: u32, max: u32 },
    #[error("amf0: {reason} at byte {offset}")]
    Amf0 { reason: &'static str, offset: usize },
    #[error("rtmp message type {message_type} on stream {stream_id}: {reason}")]
    UnexpectedMessage {
        message_type: u8,
        stream_id: u32,
        reason: &'static str,
    },
    #[error("rtmp command {command:?}: {reason}")]
    Command {
        command: String,
        reason: &'static str,
    },
    #[error("flv {kind} tag: {reason}")]
    Flv {
        kind: &'static str,
        reason: &'static str,
    },
    /// A well-formed tag in a codec this server does not carry (MP3, Speex, VP9, ...).
    /// Not a protocol fault: the caller may drop the tag and that track, log it once,
    /// and keep the connection (see `rtmp::flv`).
    #[error("flv {kind} tag: unsupported {codec}")]
    UnsupportedCodec {
        kind: &'static str,
        codec: &'static str,
    },
    #[error("codec configuration: {0}")]
    Codec(#[from] media::Error),
    #[error("publish refused for {peer}: {reason}")]
    Refused { peer: SocketAddr, reason: String },
    #[error("no {what} within {after:?}")]
    Timeout {
        what: &'static str,
        after: std::time::Duration,
    },
    /// retina reported a failure talking to an RTSP camera (`url` without credentials).
    #[error("rtsp {url}: {source}")]
    Rtsp {
        url: String,
        #[source]
        source: retina::Error,
    },
    /// An RTSP session that cannot be used: no supported stream, no answer in time, ...
    #[error("rtsp {url}: {reason}")]
    RtspSession { url: String, reason: String },
    /// A track's RTP clock jumped (more than 10 s forward, or more than 1 s back): the
    /// session is dropped and started again.
    #[error("rtsp {kind} track: timestamp jumped from {from} to {to} (timescale {timescale})")]
    RtspTimestampJump {
        kind: &'static str,
        from: i64,
        to: i64,
        timescale: u32,
    },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
