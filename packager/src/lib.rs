//! Packaging: the CMAF fMP4 writer, the segmenter (segment and part cutting on one grid
//! shared by every rendition) and the LL-HLS playlist model and renderers.
//!
//! Not built yet: this crate is reserved by the design (see `docs/ARCHITECTURE.md`)
//! and is filled in by the packager issue. It exports nothing today.
#![forbid(unsafe_code, clippy::print_stdout, clippy::print_stderr)]
