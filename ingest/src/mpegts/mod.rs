//! MPEG-TS ingest core (ISO/IEC 13818-1), the payload SRT publishers send.
//!
//! Two sans-IO stages, so the SRT listener (and any other carrier of a transport stream)
//! only moves bytes:
//!
//! - [`demux`]: [`TsDemuxer`] turns 188-byte transport packets, arriving in chunks of any
//!   size, into [`TsEvent`]s: the elementary streams of the first program (PAT -> PMT)
//!   and their reassembled PES packets with 64-bit (unwrapped) 90 kHz timestamps. It
//!   resynchronises after garbage, counts continuity errors and drops only the damaged
//!   PES, and bounds every buffer.
//! - [`es`]: [`EsFrames`] turns those PES packets into [`media::StreamEvent`]s: H.264 and
//!   H.265 access units (Annex B -> 4-byte length-prefixed NAL units, codec
//!   configuration from in-band parameter sets) and AAC (ADTS frames -> raw access
//!   units + AudioSpecificConfig), rebased to start near zero on one shared timeline.
//!
//! Neither owns a socket, the hub or a clock: the caller stamps the wall-clock arrival
//! time and publishes the events.
pub mod demux;
pub mod es;

pub use demux::{EsInfo, EsKind, TsDemuxer, TsEvent, TsStats};
pub use es::{EsFrames, EsStats};
