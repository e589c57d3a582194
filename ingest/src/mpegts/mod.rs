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
//! [`TsFrames`] chains the two for a caller that only wants hub events.
//!
//! Neither owns a socket, the hub or a clock: the caller stamps the wall-clock arrival
//! time and publishes the events.
use std::time::SystemTime;

use media::StreamEvent;

pub mod demux;
pub mod es;

pub use demux::{EsInfo, EsKind, TsDemuxer, TsEvent, TsStats};
pub use es::{EsFrames, EsStats};

/// [`TsDemuxer`] and [`EsFrames`] in one: transport stream bytes in, hub events out.
#[derive(Debug, Default)]
pub struct TsFrames {
    demux: TsDemuxer,
    es: EsFrames,
}

impl TsFrames {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next chunk of the stream, which arrived at `received`.
    pub fn push(&mut self, bytes: &[u8], received: SystemTime) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        for ev in self.demux.push(bytes) {
            out.extend(self.es.push(ev, received));
        }
        out
    }

    /// Ends the stream: the last packet, the PES still being collected and the frames
    /// held back at startup. Send [`StreamEvent::End`] after these.
    pub fn finish(&mut self, received: SystemTime) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        for ev in self.demux.flush() {
            out.extend(self.es.push(ev, received));
        }
        out.extend(self.es.finish());
        out
    }

    /// The elementary streams of the current PMT (to warn about unsupported ones).
    pub fn streams(&self) -> &[EsInfo] {
        self.demux.streams()
    }

    /// The demuxer's counters.
    pub fn ts_stats(&self) -> TsStats {
        self.demux.stats()
    }

    /// The elementary-stream stage's counters.
    pub fn es_stats(&self) -> EsStats {
        self.es.stats()
    }
}
