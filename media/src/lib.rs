//! The I/O-free core every other crate shares.
//!
//! - [`Frame`], [`TrackInfo`], [`Codec`] and [`StreamEvent`]: the one vocabulary the
//!   ingest, transcode and packager stages exchange.
//! - Bitstream helpers: Annex B <-> length-prefixed NAL conversion ([`nal`]), H.264 and
//!   H.265 parameter-set parsing ([`h264`], [`h265`]), the AV1 sequence header ([`av1`]),
//!   AAC AudioSpecificConfig and ADTS ([`aac`]), a bounds-checked bit reader ([`bits`]),
//!   and the RFC 6381 codec strings derived from them ([`Codec::rfc6381`]).
//! - The stream hub ([`hub`]): one publisher, many subscribers per stream name, a bounded
//!   queue per subscriber that drops to the next keyframe and counts the drop.
//! - [`demand`]: which on-demand streams someone is watching (the origin records
//!   requests, on-demand pulls start and stop by it).
//!
//! It owns no sockets, no files and no clocks beyond the `received` stamps the caller
//! puts on frames.
#![forbid(unsafe_code, clippy::print_stdout, clippy::print_stderr)]

pub mod aac;
pub mod av1;
pub mod bits;
mod codec;
pub mod demand;
mod error;
mod frame;
pub mod h264;
pub mod h265;
pub mod hub;
pub mod nal;

pub use codec::{Codec, FrameRate, MediaKind};
pub use error::{Error, Result};
pub use frame::{DiscontinuityReason, Frame, StreamEvent, TrackId, TrackInfo};
