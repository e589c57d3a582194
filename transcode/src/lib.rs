//! Transcoding: GStreamer ABR ladders.
//!
//! Every published source stream (not a rung itself) with transcoding enabled gets one
//! ladder: one GStreamer pipeline that decodes the source video ONCE and encodes every
//! rung at or below the source height:
//!
//! ```text
//! appsrc (avc/hvc1 + codec_data) ! h26xparse ! decoder ! tee
//!   ├─ queue ! scale ! caps 1080p ! tee ─┬─ queue ! x264enc ! h264parse ! appsink  -> live/alice@1080p
//!   │                                    └─ queue ! scale ! caps 720p ! tee ─ ...  -> live/alice@720p
//! ```
//!
//! Each rung is scaled from the next larger rung (the scale cascade: cheaper than scaling
//! every rung from the full-size picture), and published into the hub as its own stream
//! `<source>@<rung>` ([`media::hub::rung_stream_name`]), which the packaging driver adds
//! as a rendition of the source's program. Audio is not touched: the packager takes it
//! from the source.
//!
//! Entry points: [`run`] (the driver: hub announcements -> one ladder per stream),
//! [`TranscodeConfig`] (the `[transcode]` section), [`select_backend`] (the encoder and
//! decoder choice, with the reason), [`TranscodeMetrics`].
//!
//! Threads: GStreamer runs on its own streaming threads; each ladder has one plain OS
//! thread that owns its pipeline (build, push into appsrc, drain, tear down) and is fed
//! through a bounded channel from a small async task, so no tokio worker ever waits on a
//! GStreamer call. Rung frames are published from the appsink callbacks
//! (`Publisher::send` never blocks).
//!
//! Not owned here: GPU inventory (the `gpu` crate), packaging (the `packager` crate).
#![forbid(unsafe_code, clippy::print_stdout, clippy::print_stderr)]

mod config;
mod driver;
mod ladder;
mod metrics;
mod pipeline;
mod probe;

pub use config::{
    DecoderChoice, EncoderChoice, Profile, Rung, StreamLadder, StreamOverride, TranscodeConfig,
    X264_PRESETS, default_rungs, plan_rungs, rung_width,
};
pub use driver::run;
pub use metrics::TranscodeMetrics;
pub use probe::{Backend, DecoderKind, EncoderKind, select_backend};

/// Errors of the transcode crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad `[transcode]` key.
    #[error("{key}: {problem}")]
    Config { key: String, problem: String },
    /// GStreamer could not be initialised.
    #[error("GStreamer init failed: {0}")]
    Init(String),
    /// A pipeline could not be built (missing element, failed link, refused state change).
    #[error("stream {stream}: building the ladder failed at {what}: {message}")]
    Build {
        stream: String,
        what: String,
        message: String,
    },
    /// A running pipeline reported an error.
    #[error("stream {stream}: pipeline error from {element}: {message}")]
    Pipeline {
        stream: String,
        element: String,
        message: String,
    },
}

/// Result alias of the crate.
pub type Result<T> = std::result::Result<T, Error>;
