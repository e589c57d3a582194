//! A sans-IO MPEG-TS demuxer: transport packets in, elementary-stream PES packets out.
//!
//! [`TsDemuxer::push`] takes bytes in chunks of any size (SRT carries seven 188-byte
//! packets per datagram, a file read or a pipe anything) and returns what became
//! complete.
//!
//! # What it reads
//!
//! - The PAT (PID 0) for the first program's PMT PID, the PMT for its elementary
//!   streams. H.264 (stream_type 0x1B), H.265 (0x24) and AAC in ADTS (0x0F) are
//!   demuxed; every other stream type is reported as [`EsKind::Unsupported`] in
//!   [`TsEvent::Streams`] (sent whenever the list changes, so once per program layout)
//!   and otherwise ignored. PSI sections are checked with their CRC32.
//! - PES packets of the supported streams, reassembled from `payload_unit_start` to the
//!   next one (or to `PES_packet_length` when the header gives one), with PTS and DTS
//!   and the adaptation field's `random_access_indicator` of the first packet.
//! - The PCR, only to place the first timestamp of each PID (see below).
//!
//! # Timestamps
//!
//! PTS and DTS are 33-bit 90 kHz counters that wrap every 26.5 hours. Each PID's values
//! are unwrapped to 64 bits: a value is placed at the position nearest to that PID's
//! previous one. A PID's first value is placed nearest to the latest unwrapped PCR or
//! timestamp of any PID, so two streams that start on either side of the wrap point stay
//! in sync. The output is still in 90 kHz and not rebased ([`super::EsFrames`] rebases).
//!
//! # Damage
//!
//! Nothing a peer sends can make it panic or grow without bound:
//!
//! - Sync: a packet is taken only when a sync byte (0x47) starts it and another starts
//!   the packet after it, so bytes inserted inside a packet are caught at that packet,
//!   not one later. On a miss the demuxer drops the packet, scans for a 0x47 with another
//!   0x47 188 bytes later and counts a resync. The suspect packet's PID (if its header
//!   is readable) loses its PES in progress.
//! - Continuity: a continuity counter that skips (outside a signalled discontinuity)
//!   is counted and drops the PES in progress on that PID, and the PES is skipped until
//!   the next `payload_unit_start`. A repeated packet (same counter, allowed once) is
//!   ignored.
//! - Packets flagged with `transport_error_indicator` are dropped like lost packets.
//! - A PES larger than [`MAX_PES_SIZE`] is dropped; a malformed PES header too. Both
//!   are counted in [`TsStats::pes_errors`].

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

/// Size of a transport packet.
pub const PACKET_SIZE: usize = 188;
/// The byte every transport packet starts with.
pub const SYNC_BYTE: u8 = 0x47;
/// Largest PES packet reassembled; a larger one is dropped and counted.
pub const MAX_PES_SIZE: usize = 8 << 20;
/// Largest PSI section (`section_length` is at most 1021 for PAT and PMT).
const MAX_SECTION_SIZE: usize = 1024;
/// The 33-bit wrap of PTS, DTS and the PCR base.
const WRAP: i64 = 1 << 33;

/// What an elementary stream carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EsKind {
    /// stream_type 0x1B: H.264 in Annex B.
    H264,
    /// stream_type 0x24: H.265 in Annex B.
    H265,
    /// stream_type 0x0F: AAC in ADTS frames.
    Aac,
    /// Any other stream_type (MPEG audio, AC-3 in private data, KLV, SCTE-35, ...):
    /// listed so the caller can warn, never demuxed.
    Unsupported(u8),
}

impl EsKind {
    /// The kind for a PMT `stream_type`.
    pub fn from_stream_type(stream_type: u8) -> EsKind {
        match stream_type {
            0x1B => EsKind::H264,
            0x24 => EsKind::H265,
            0x0F => EsKind::Aac,
            other => EsKind::Unsupported(other),
        }
    }

    /// True for the kinds whose PES packets are reassembled.
    pub fn is_supported(self) -> bool {
        !matches!(self, EsKind::Unsupported(_))
    }
}

/// One elementary stream of the program, as the PMT lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EsInfo {
    pub pid: u16,
    pub kind: EsKind,
}

/// What the demuxer found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TsEvent {
    /// The elementary streams of the first program, in PMT order; sent when the PMT
    /// is first read and whenever the list changes.
    Streams(Vec<EsInfo>),
    /// One complete PES packet of a supported stream.
    Pes {
        pid: u16,
        /// 90 kHz, unwrapped to 64 bits (see the module docs); not rebased.
        pts: Option<i64>,
        /// 90 kHz, unwrapped; `None` when the header carries only a PTS (then DTS = PTS).
        dts: Option<i64>,
        /// The PES payload (the elementary stream bytes, header removed).
        data: Bytes,
        /// The adaptation field of the PES's first packet set `random_access_indicator`.
        random_access: bool,
    },
}

/// Counters of what the demuxer saw, for metrics and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TsStats {
    /// Transport packets taken (including those of ignored PIDs).
    pub packets: u64,
    /// Continuity counter skips (lost or reordered packets).
    pub continuity_errors: u64,
    /// Times sync was found again after it was lost.
    pub resyncs: u64,
    /// Bytes thrown away while out of sync (including suspect packets).
    pub skipped_bytes: u64,
    /// PES packets dropped: damaged by a lost packet, oversized or with a bad header.
    pub pes_errors: u64,
    /// Packets with `transport_error_indicator` set.
    pub transport_errors: u64,
    /// PSI sections (PAT, PMT) dropped for a bad CRC or layout.
    pub psi_errors: u64,
    /// PES packets delivered.
    pub pes_packets: u64,
}

/// Reassembly of one PSI PID's sections.
#[derive(Debug, Default)]
struct SectionBuf {
    buf: Vec<u8>,
    /// A section is being collected (its start was seen and nothing was lost since).
    active: bool,
}

/// Reassembly of one elementary stream's PES packets.
#[derive(Debug, Default)]
struct PesBuf {
    buf: BytesMut,
    /// Collecting a PES whose start was seen and nothing was lost since.
    active: bool,
    random_access: bool,
    /// Whole PES size (header included) when `PES_packet_length` is non-zero.
    expected: Option<usize>,
    /// Last unwrapped timestamp of this PID.
    last_ts: Option<i64>,
}

/// Per-PID continuity state.
#[derive(Clone, Copy, Debug, Default)]
struct Continuity {
    last: Option<u8>,
    /// The last packet was already a repeat of the one before.
    repeated: bool,
}

/// The MPEG-TS demuxer; see the module docs.
#[derive(Debug)]
pub struct TsDemuxer {
    /// Bytes not yet taken as packets (less than two packets after each push).
    pending: Vec<u8>,
    synced: bool,
    pmt_pid: Option<u16>,
    program_number: Option<u16>,
    sections: HashMap<u16, SectionBuf>,
    streams: Vec<EsInfo>,
    pes: HashMap<u16, PesBuf>,
    continuity: HashMap<u16, Continuity>,
    pcr_pid: Option<u16>,
    /// Latest unwrapped PCR base or timestamp of any PID: the anchor for a PID's first
    /// timestamp.
    reference: Option<i64>,
    last_pcr: Option<i64>,
    stats: TsStats,
}

impl Default for TsDemuxer {
    fn default() -> Self {
        Self::new()
    }
}

impl TsDemuxer {
    pub fn new() -> Self {
        TsDemuxer {
            pending: Vec::with_capacity(2 * PACKET_SIZE),
            synced: true,
            pmt_pid: None,
            program_number: None,
            sections: HashMap::new(),
            streams: Vec::new(),
            pes: HashMap::new(),
            continuity: HashMap::new(),
            pcr_pid: None,
            reference: None,
            last_pcr: None,
            stats: TsStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> TsStats {
        self.stats
    }

    /// The elementary streams of the current PMT (empty before one was read).
    pub fn streams(&self) -> &[EsInfo] {
        &self.streams
    }

    /// The latest PCR (program clock reference base, 90 kHz), unwrapped to 64 bits.
    pub fn last_pcr(&self) -> Option<i64> {
        self.last_pcr
    }

    /// Takes the next chunk of the stream; returns the events it completed, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<TsEvent> {
        let mut events = Vec::new();
        self.pending.extend_from_slice(bytes);
        let mut pos = 0;
        loop {
            let rest = &self.pending[pos..];
            if self.synced {
                // A packet is taken once the sync byte of the next one confirms it.
                if rest.len() <= PACKET_SIZE {
                    break;
                }
                if rest[0] == SYNC_BYTE && rest[PACKET_SIZE] == SYNC_BYTE {
                    let mut packet = [0u8; PACKET_SIZE];
                    packet.copy_from_slice(&rest[..PACKET_SIZE]);
                    pos += PACKET_SIZE;
                    self.packet(&packet, &mut events);
                    continue;
                }
                // Lost sync: the packet here (if it is one) is suspect; its PID, when
                // the header looks like one, loses the PES in progress.
                if rest[0] == SYNC_BYTE {
                    let pid = (u16::from(rest[1] & 0x1f) << 8) | u16::from(rest[2]);
                    self.lose(pid);
                }
                tracing::debug!(offset = pos, "mpeg-ts sync lost");
                self.synced = false;
                self.stats.skipped_bytes += 1;
                pos += 1;
                continue;
            }
            // Out of sync: find a sync byte with another one a packet later.
            match find_sync(rest) {
                Sync::At(skip) => {
                    self.stats.skipped_bytes += skip as u64;
                    self.stats.resyncs += 1;
                    self.synced = true;
                    pos += skip;
                }
                Sync::NeedMore(skip) => {
                    self.stats.skipped_bytes += skip as u64;
                    pos += skip;
                    break;
                }
            }
        }
        self.pending.drain(..pos);
        events
    }

    /// Ends the stream: takes the last packet (which `push` holds until the next sync
    /// byte confirms it) and delivers the PES packets still being collected.
    pub fn flush(&mut self) -> Vec<TsEvent> {
        let mut events = Vec::new();
        let mut taken = 0;
        if self.synced && self.pending.len() >= PACKET_SIZE && self.pending[0] == SYNC_BYTE {
            let mut packet = [0u8; PACKET_SIZE];
            packet.copy_from_slice(&self.pending[..PACKET_SIZE]);
            self.packet(&packet, &mut events);
            taken = PACKET_SIZE;
        }
        self.stats.skipped_bytes += (self.pending.len() - taken) as u64;
        self.pending.clear();
        let mut pids: Vec<u16> = self.streams.iter().map(|s| s.pid).collect();
        pids.dedup();
        for pid in pids {
            self.finish_pes(pid, &mut events);
        }
        events
    }

    /// Drops the PES in progress on `pid` (lost or damaged packet).
    fn lose(&mut self, pid: u16) {
        if let Some(pes) = self.pes.get_mut(&pid) {
            if pes.active {
                self.stats.pes_errors += 1;
            }
            pes.active = false;
            pes.buf.clear();
        }
        if let Some(section) = self.sections.get_mut(&pid) {
            section.active = false;
            section.buf.clear();
        }
    }

    fn packet(&mut self, p: &[u8; PACKET_SIZE], events: &mut Vec<TsEvent>) {
        self.stats.packets += 1;
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        if pid == 0x1fff {
            return; // null packet
        }
        if p[1] & 0x80 != 0 {
            self.stats.transport_errors += 1;
            self.lose(pid);
            return;
        }
        let pusi = p[1] & 0x40 != 0;
        let afc = (p[3] >> 4) & 0x03;
        let cc = p[3] & 0x0f;
        if afc == 0 {
            // Reserved: no adaptation field, no payload.
            return;
        }
        let mut payload_start = 4;
        let mut discontinuity = false;
        let mut random_access = false;
        if afc & 0x02 != 0 {
            let len = usize::from(p[4]);
            let max = if afc == 0x02 { 183 } else { 182 };
            if len > max {
                // Damaged header: treat the packet as lost.
                self.lose(pid);
                return;
            }
            if len > 0 {
                let flags = p[5];
                discontinuity = flags & 0x80 != 0;
                random_access = flags & 0x40 != 0;
                if flags & 0x10 != 0 && len >= 7 {
                    let base = (i64::from(p[6]) << 25)
                        | (i64::from(p[7]) << 17)
                        | (i64::from(p[8]) << 9)
                        | (i64::from(p[9]) << 1)
                        | i64::from(p[10] >> 7);
                    if self.pcr_pid.is_none_or(|pcr| pcr == pid) {
                        let pcr = unwrap_near(base, self.last_pcr.or(self.reference));
                        self.last_pcr = Some(pcr);
                        self.reference = Some(pcr);
                    }
                }
            }
            payload_start = 5 + len;
        }
        if afc & 0x01 == 0 {
            return;
        }
        // Continuity counts packets with payload only.
        let state = self.continuity.entry(pid).or_default();
        match state.last {
            Some(last) if !discontinuity => {
                if cc == last {
                    if !state.repeated {
                        state.repeated = true;
                        return; // a duplicate, allowed once
                    }
                    state.repeated = false;
                    self.stats.continuity_errors += 1;
                    self.lose(pid);
                } else if cc != (last + 1) & 0x0f {
                    state.last = Some(cc);
                    state.repeated = false;
                    self.stats.continuity_errors += 1;
                    tracing::debug!(
                        pid,
                        expected = (last + 1) & 0x0f,
                        got = cc,
                        "continuity error"
                    );
                    self.lose(pid);
                } else {
                    state.last = Some(cc);
                    state.repeated = false;
                }
            }
            _ => {
                state.last = Some(cc);
                state.repeated = false;
            }
        }
        let payload = &p[payload_start.min(PACKET_SIZE)..];
        if pid == 0 || Some(pid) == self.pmt_pid {
            self.psi(pid, pusi, payload, events);
        } else if self.pes.contains_key(&pid) {
            self.pes_payload(pid, pusi, random_access, payload, events);
        }
    }

    fn psi(&mut self, pid: u16, pusi: bool, payload: &[u8], events: &mut Vec<TsEvent>) {
        let mut complete = Vec::new();
        {
            let section = self.sections.entry(pid).or_default();
            let mut data = payload;
            if pusi {
                let Some((&pointer, rest)) = data.split_first() else {
                    return;
                };
                let pointer = usize::from(pointer);
                let Some(tail) = rest.get(..pointer) else {
                    section.active = false;
                    section.buf.clear();
                    return;
                };
                if section.active {
                    section.buf.extend_from_slice(tail);
                    take_sections(&mut section.buf, &mut complete);
                }
                section.buf.clear();
                section.active = true;
                data = &rest[pointer..];
            } else if !section.active {
                return;
            }
            section.buf.extend_from_slice(data);
            take_sections(&mut section.buf, &mut complete);
            if section.buf.len() > MAX_SECTION_SIZE {
                section.buf.clear();
                section.active = false;
            }
        }
        for s in complete {
            match self.section(pid, &s, events) {
                Ok(()) => {}
                Err(reason) => {
                    self.stats.psi_errors += 1;
                    tracing::debug!(pid, reason, "psi section dropped");
                }
            }
        }
    }

    /// One complete section (header to CRC) of PID `pid`.
    fn section(
        &mut self,
        pid: u16,
        s: &[u8],
        events: &mut Vec<TsEvent>,
    ) -> Result<(), &'static str> {
        if crc32_mpeg2(s) != 0 {
            return Err("bad CRC32");
        }
        if s.len() < 12 || s[1] & 0x80 == 0 {
            return Err("not a long-form section");
        }
        if s[5] & 0x01 == 0 {
            return Ok(()); // current_next_indicator 0: not yet applicable
        }
        let body = &s[8..s.len() - 4];
        match (pid, s[0]) {
            (0, 0x00) => {
                let first = body
                    .chunks_exact(4)
                    .map(|e| {
                        (
                            u16::from_be_bytes([e[0], e[1]]),
                            (u16::from(e[2] & 0x1f) << 8) | u16::from(e[3]),
                        )
                    })
                    .find(|&(program, _)| program != 0);
                if let Some((program, pmt_pid)) = first
                    && self.pmt_pid != Some(pmt_pid)
                {
                    if let Some(old) = self.pmt_pid {
                        self.sections.remove(&old);
                    }
                    self.pmt_pid = Some(pmt_pid);
                    self.program_number = Some(program);
                }
                Ok(())
            }
            (_, 0x02) => {
                let program = u16::from_be_bytes([s[3], s[4]]);
                if self.program_number.is_some_and(|p| p != program) {
                    return Ok(());
                }
                self.pmt(body, events)
            }
            _ => Ok(()),
        }
    }

    fn pmt(&mut self, body: &[u8], events: &mut Vec<TsEvent>) -> Result<(), &'static str> {
        let head = body.get(..4).ok_or("PMT too short")?;
        let pcr_pid = (u16::from(head[0] & 0x1f) << 8) | u16::from(head[1]);
        let info_len = usize::from(u16::from_be_bytes([head[2] & 0x0f, head[3]]));
        let mut es = body
            .get(4 + info_len..)
            .ok_or("program_info_length too long")?;
        let mut streams = Vec::new();
        while !es.is_empty() {
            let e = es.get(..5).ok_or("truncated elementary stream entry")?;
            let pid = (u16::from(e[1] & 0x1f) << 8) | u16::from(e[2]);
            let info_len = usize::from(u16::from_be_bytes([e[3] & 0x0f, e[4]]));
            es = es.get(5 + info_len..).ok_or("ES_info_length too long")?;
            if !streams.iter().any(|s: &EsInfo| s.pid == pid) {
                streams.push(EsInfo {
                    pid,
                    kind: EsKind::from_stream_type(e[0]),
                });
            }
        }
        self.pcr_pid = (pcr_pid != 0x1fff).then_some(pcr_pid);
        if streams != self.streams {
            self.pes.retain(|pid, _| {
                streams
                    .iter()
                    .any(|s| s.pid == *pid && s.kind.is_supported())
            });
            for s in &streams {
                if s.kind.is_supported() {
                    self.pes.entry(s.pid).or_default();
                }
            }
            self.streams = streams.clone();
            events.push(TsEvent::Streams(streams));
        }
        Ok(())
    }

    fn pes_payload(
        &mut self,
        pid: u16,
        pusi: bool,
        random_access: bool,
        payload: &[u8],
        events: &mut Vec<TsEvent>,
    ) {
        if pusi {
            self.finish_pes(pid, events);
            let Some(pes) = self.pes.get_mut(&pid) else {
                return;
            };
            pes.buf.clear();
            pes.active = true;
            pes.random_access = random_access;
            pes.expected = None;
        }
        let Some(pes) = self.pes.get_mut(&pid) else {
            return;
        };
        if !pes.active {
            return;
        }
        if pes.buf.len() + payload.len() > MAX_PES_SIZE {
            tracing::debug!(pid, "PES over {MAX_PES_SIZE} bytes dropped");
            self.stats.pes_errors += 1;
            pes.active = false;
            pes.buf.clear();
            return;
        }
        pes.buf.extend_from_slice(payload);
        if pes.expected.is_none() && pes.buf.len() >= 6 {
            let len = usize::from(u16::from_be_bytes([pes.buf[4], pes.buf[5]]));
            if len != 0 {
                pes.expected = Some(6 + len);
            }
        }
        if pes.expected.is_some_and(|e| pes.buf.len() >= e) {
            self.finish_pes(pid, events);
        }
    }

    /// Delivers the PES being collected on `pid`, if any.
    fn finish_pes(&mut self, pid: u16, events: &mut Vec<TsEvent>) {
        let Some(pes) = self.pes.get_mut(&pid) else {
            return;
        };
        if !pes.active {
            return;
        }
        pes.active = false;
        let mut whole = std::mem::take(&mut pes.buf).freeze();
        if let Some(expected) = pes.expected.take()
            && whole.len() > expected
        {
            // Stuffing after a PES with a known length.
            whole.truncate(expected);
        }
        let parsed = match parse_pes(&whole) {
            Ok(p) => p,
            Err(reason) => {
                self.stats.pes_errors += 1;
                tracing::debug!(pid, reason, "PES dropped");
                return;
            }
        };
        let reference = pes.last_ts.or(self.reference);
        let pts = parsed.pts.map(|t| unwrap_near(t, reference));
        let dts = parsed.dts.map(|t| unwrap_near(t, pts.or(reference)));
        if let Some(latest) = dts.or(pts) {
            pes.last_ts = Some(latest);
            self.reference = Some(latest);
        }
        let random_access = pes.random_access;
        self.stats.pes_packets += 1;
        events.push(TsEvent::Pes {
            pid,
            pts,
            dts,
            data: whole.slice(parsed.payload_start..),
            random_access,
        });
    }
}

enum Sync {
    /// A confirmed packet starts this many bytes in.
    At(usize),
    /// No confirmed packet yet: this many bytes can be thrown away, the rest must wait.
    NeedMore(usize),
}

/// Finds a sync byte followed by another one packet later.
fn find_sync(data: &[u8]) -> Sync {
    let mut i = 0;
    while i + PACKET_SIZE < data.len() {
        if data[i] == SYNC_BYTE && data[i + PACKET_SIZE] == SYNC_BYTE {
            return Sync::At(i);
        }
        i += 1;
    }
    // Keep from the first position that could still start a packet.
    let keep_from = data[i..]
        .iter()
        .position(|&b| b == SYNC_BYTE)
        .map_or(data.len(), |p| i + p);
    Sync::NeedMore(keep_from)
}

/// Moves the complete sections at the front of `buf` into `out`; stops at stuffing
/// (0xFF) or an incomplete section.
fn take_sections(buf: &mut Vec<u8>, out: &mut Vec<Vec<u8>>) {
    let mut pos = 0;
    while let Some(head) = buf.get(pos..pos + 3) {
        if head[0] == 0xff {
            buf.clear();
            return;
        }
        let len = 3 + usize::from(u16::from_be_bytes([head[1] & 0x0f, head[2]]));
        let Some(section) = buf.get(pos..pos + len) else {
            break;
        };
        out.push(section.to_vec());
        pos += len;
    }
    buf.drain(..pos);
}

struct ParsedPes {
    pts: Option<i64>,
    dts: Option<i64>,
    payload_start: usize,
}

/// Parses a PES header (ISO/IEC 13818-1 2.4.3.6).
fn parse_pes(p: &[u8]) -> Result<ParsedPes, &'static str> {
    let head = p.get(..6).ok_or("PES shorter than its header")?;
    if head[..3] != [0, 0, 1] {
        return Err("no PES start code");
    }
    let stream_id = head[3];
    // Streams without the optional header: program_stream_map, padding, private_stream_2,
    // ECM, EMM, directory, DSMCC, H.222.1 type E.
    if matches!(
        stream_id,
        0xbc | 0xbe | 0xbf | 0xf0 | 0xf1 | 0xf2 | 0xf8 | 0xff
    ) {
        return Ok(ParsedPes {
            pts: None,
            dts: None,
            payload_start: 6,
        });
    }
    let opt = p.get(6..9).ok_or("PES optional header truncated")?;
    if opt[0] & 0xc0 != 0x80 {
        return Err("PES optional header marker bits");
    }
    let header_end = 9 + usize::from(opt[2]);
    if header_end > p.len() {
        return Err("PES_header_data_length past the end");
    }
    let (pts, dts) = match opt[1] >> 6 {
        0b10 => (Some(timestamp(p.get(9..14))?), None),
        0b11 => (
            Some(timestamp(p.get(9..14))?),
            Some(timestamp(p.get(14..19))?),
        ),
        0b01 => return Err("PTS_DTS_flags 01 (forbidden)"),
        _ => (None, None),
    };
    if header_end
        < 9 + match (pts, dts) {
            (Some(_), Some(_)) => 10,
            (Some(_), None) => 5,
            _ => 0,
        }
    {
        return Err("PES_header_data_length shorter than its timestamps");
    }
    Ok(ParsedPes {
        pts,
        dts,
        payload_start: header_end,
    })
}

/// A 33-bit PTS or DTS from its 5-byte field.
fn timestamp(b: Option<&[u8]>) -> Result<i64, &'static str> {
    let b = b.ok_or("PES timestamp truncated")?;
    if b[0] & 0x01 == 0 || b[2] & 0x01 == 0 || b[4] & 0x01 == 0 {
        return Err("PES timestamp marker bits");
    }
    Ok((i64::from((b[0] >> 1) & 0x07) << 30)
        | (i64::from(b[1]) << 22)
        | (i64::from(b[2] >> 1) << 15)
        | (i64::from(b[3]) << 7)
        | i64::from(b[4] >> 1))
}

/// Places the 33-bit value `ts` at the 64-bit position nearest to `near` (as is when
/// there is no reference yet).
fn unwrap_near(ts: i64, near: Option<i64>) -> i64 {
    let Some(near) = near else {
        return ts;
    };
    let step = (ts - near).rem_euclid(WRAP);
    if step >= WRAP / 2 {
        near + step - WRAP
    } else {
        near + step
    }
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, initial all ones, no reflection, no final
/// xor); 0 over a whole section including its CRC field when it is intact.
fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
#[path = "demux_tests.rs"]
mod tests;
