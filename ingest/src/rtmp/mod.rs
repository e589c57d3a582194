//! RTMP ingest: a sans-IO core and a thin tokio server.
//!
//! - [`handshake`], [`chunk`], [`amf0`], [`session`]: the protocol core, bytes in and
//!   events plus bytes out, no sockets.
//! - [`flv`]: FLV audio/video tag bodies, including enhanced RTMP (FourCC) video.
//! - [`frames`]: turns tags into [`media::StreamEvent`]s (tracks, 64-bit timestamps).
//! - [`server`]: the socket loop, auth and the hub.
pub mod amf0;
pub mod chunk;
pub mod client;
pub mod flv;
pub mod frames;
pub mod handshake;
pub mod server;
pub mod session;
