//! The CMAF fMP4 writer: one track per file, track_ID 1.
//!
//! - [`init_segment`]: the CMAF header (`ftyp` + `moov` with `mvex`/`trex`) for one
//!   [`media::TrackInfo`]; the sample entry carries the decoder configuration
//!   (`avc1`/`hvc1` with parameter sets, `av01`, `mp4a` + `esds`, `Opus` + `dOps`).
//! - [`fragment`]: one CMAF chunk, `moof` + `mdat`, from a run of [`Sample`]s. An LL-HLS
//!   part is one chunk; a segment is the concatenation of its parts' chunks.
//!
//! Both are pure functions from values to bytes. Boxes are the `mp4-atom` types; the
//! only bytes written by hand are container headers (see [`init_segment`] for why) and
//! the `mdat` payload.
//!
//! What the output holds, per LLHLS.md "CMAF / fMP4 media" and ISO/IEC 23000-19 (CMAF):
//! - `ftyp`: major brand `iso6`, compatible `iso6`, `cmfc`, `cmf2`.
//! - Times in the track's own timescale (`mvhd` and `mdhd` both use it), no edit list:
//!   a sample's presentation time is its decode time plus its composition offset.
//! - Every sample's duration, size and flags are written in the `trun` (no defaults
//!   to resolve); composition offsets only when one is non-zero, and then the `trun` is
//!   version 1 (signed offsets), which is what `mp4-atom` writes. `tfdt` is version 1.
//!
//! It does not choose where parts start, compute durations or keep sequence numbers:
//! the segmenter does, and hands each call the values to write.

mod fragment;
mod init;

pub use fragment::{NON_SYNC_SAMPLE_FLAGS, SYNC_SAMPLE_FLAGS, Sample, fragment};
pub use init::{COMPATIBLE_BRANDS, MAJOR_BRAND, TRACK_ID, init_segment};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_init;

/// Maps an `mp4-atom` encoding error to ours, naming the box being written.
fn mp4(what: &'static str) -> impl FnOnce(mp4_atom::Error) -> crate::Error {
    move |e| crate::Error::Mp4 {
        what,
        source: e.into(),
    }
}
