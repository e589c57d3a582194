use std::net::SocketAddr;

use thiserror::Error;

/// Everything that can end an ingest connection. Each variant says enough to find the
/// fault in a log: what was being read, and where.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    #[error("rtmp handshake: {reason}")]
    Handshake { reason: &'static str },
    #[error("rtmp chunk stream: {reason} (at byte {offset})")]
    Chunk { reason: &'static str, offset: u64 },
    #[error("rtmp message of {len} bytes exceeds the limit of {max}")]
    MessageTooLarge { len: u32, max: u32 },
    #[error("amf0: {reason} at byte {offset}")]
    Amf0 { reason: &'static str, offset: usize },
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
    #[error("codec configuration: {0}")]
    Codec(#[from] media::Error),
    #[error("publish refused for {peer}: {reason}")]
    Refused { peer: SocketAddr, reason: String },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
