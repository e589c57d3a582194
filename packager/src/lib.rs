//! Packaging, free of I/O: frames in, CMAF bytes and playlist state out.
//!
//! - [`Program`]: one per stream. It holds the stream's renditions (video renditions and
//!   one audio rendition), cuts every rendition on one shared segment grid, and returns
//!   [`Output`] events (init segments, parts, completed segments, discontinuities).
//! - [`fmp4`]: the CMAF fMP4 writer (init segments, `moof`+`mdat` chunks), on `mp4-atom`.
//! - [`timing`]: the part-target choice that lets every frame grid meet the
//!   LL-HLS part-duration rules.
//! - [`playlist`]: the playlist model ([`playlist::MediaPlaylist`], a snapshot per
//!   rendition) and pure renderers for media playlists (full and delta) and the
//!   multivariant playlist.
//!
//! It does not serve HTTP, keep anything beyond the configured window, or know about
//! ingest protocols; the origin crate serves what this crate produces.
#![forbid(unsafe_code, clippy::print_stdout, clippy::print_stderr)]

mod error;
pub use error::{Error, Result};

pub mod fmp4;
pub mod playlist;
mod program;
mod segmenter;
pub mod timing;
pub use program::{Output, PackagerConfig, Program};
