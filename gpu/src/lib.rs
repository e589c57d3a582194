//! GPU inventory (NVML) and the real encoder/decoder capability probe.
//!
//! Not built yet: this crate is reserved by the design (see `docs/ARCHITECTURE.md`)
//! and is filled in by the transcode issue. It knows nothing of the other crates and
//! exports nothing today.
#![forbid(unsafe_code, clippy::print_stdout, clippy::print_stderr)]
