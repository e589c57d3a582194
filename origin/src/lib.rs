//! The HTTP origin: LL-HLS playlists with blocking reload, parts, segments and init
//! segments, preload-hint blocking, and publishing to object storage.
//!
//! Not built yet: this crate is reserved by the design (see `docs/ARCHITECTURE.md`)
//! and is filled in by the origin issue. It exports nothing today.
#![forbid(unsafe_code, clippy::print_stdout, clippy::print_stderr)]
