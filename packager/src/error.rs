//! The packager's error type.
use thiserror::Error;

/// Errors from building fMP4 boxes or packaging a stream.
///
/// Every variant names what was being built, so a log line points at the fault.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `mp4-atom` refused to encode a box.
    #[error("fmp4 {what}: {source}")]
    Mp4 {
        what: &'static str,
        #[source]
        source: Mp4Error,
    },
    /// A track whose codec the packager cannot put in fMP4.
    #[error("{what}: unsupported codec {codec}")]
    UnsupportedCodec {
        what: &'static str,
        codec: &'static str,
    },
    /// A value that does not fit the field that stores it (e.g. a sample duration over
    /// `u32::MAX` ticks).
    #[error("{what}: {field} out of range ({value})")]
    OutOfRange {
        what: &'static str,
        field: &'static str,
        value: i128,
    },
    /// A configuration key holds a value the packager cannot use.
    #[error("packager.{key}: {problem}")]
    Config { key: &'static str, problem: String },
}

/// The `mp4-atom` error, kept as its message: `mp4_atom::Error` is neither `Clone` nor
/// `PartialEq`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct Mp4Error(pub String);

impl From<mp4_atom::Error> for Mp4Error {
    fn from(e: mp4_atom::Error) -> Self {
        Mp4Error(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
