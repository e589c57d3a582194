//! Ingest: everything that turns a publisher's bytes into [`media::StreamEvent`]s on the
//! hub.
//!
//! - [`rtmp`]: a sans-IO RTMP core (handshake, chunk stream, AMF0 commands, FLV tags
//!   including enhanced RTMP) and a thin tokio server around it ([`rtmp::server`]).
//! - [`mpegts`]: a sans-IO MPEG-TS demuxer and the elementary streams (H.264, H.265,
//!   AAC) -> frames stage, the core of SRT ingest.
//! - [`srt`]: the SRT listener (srt-tokio) for MPEG-TS publishers: stream ids, auth,
//!   passphrases, transport statistics ([`srt::server`]).
//! - [`auth`]: who may publish, and under which public name (open, keys, webhook).
//!
//! It does not own the hub (see `media::hub`), nor packaging or HTTP.
#![forbid(unsafe_code, clippy::print_stdout, clippy::print_stderr)]

pub mod auth;
mod error;
pub mod mpegts;
pub mod rtmp;
pub mod srt;
mod timestamp;

pub use error::{Error, Result};
