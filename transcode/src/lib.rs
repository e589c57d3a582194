//! Transcoding: GStreamer ABR ladders (appsrc -> decode once -> scale cascade ->
//! encoders -> appsink) and the worker scheduler that places ladders on GPUs and CPUs.
//!
//! Not built yet: this crate is reserved by the design (see `docs/ARCHITECTURE.md`)
//! and is filled in by the transcode issue. It exports nothing today.
#![forbid(unsafe_code, clippy::print_stdout, clippy::print_stderr)]
