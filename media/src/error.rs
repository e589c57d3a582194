use thiserror::Error;

/// Errors from parsing bitstreams and codec configuration records.
///
/// Every variant says what was being parsed, so a log line points at the fault.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input ended before `what` was complete.
    #[error("{what}: truncated at byte {offset}")]
    Truncated { what: &'static str, offset: usize },
    /// A field held a value the format does not allow.
    #[error("{what}: invalid {field} ({value})")]
    Invalid {
        what: &'static str,
        field: &'static str,
        value: u64,
    },
    /// A syntactically valid input that this crate does not handle.
    #[error("{what}: unsupported {detail}")]
    Unsupported {
        what: &'static str,
        detail: &'static str,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
