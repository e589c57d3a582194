//! Ingest: everything that turns a publisher's bytes into [`media::StreamEvent`]s on the
//! hub.
//!
//! - [`rtmp`]: a sans-IO RTMP core (handshake, chunk stream, AMF0 commands, FLV tags
//!   including enhanced RTMP) and a thin tokio server around it ([`rtmp::server`]).
//! - [`rtsp`]: RTSP camera pulls with retina (one task per `[[pull]]` entry, reconnect
//!   with backoff, on demand when asked).
//! - [`auth`]: who may publish, and under which public name (open, keys, webhook).
//!
//! It does not own the hub (see `media::hub`), nor packaging or HTTP.
#![forbid(unsafe_code, clippy::print_stdout, clippy::print_stderr)]

pub mod auth;
mod error;
pub mod rtmp;
pub mod rtsp;
mod timestamp;

pub use error::{Error, Result};
