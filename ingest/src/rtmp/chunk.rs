//! The RTMP chunk stream: [`ChunkDecoder`] reassembles messages from chunks, and
//! [`ChunkEncoder`] cuts messages into chunks. No I/O.
//!
//! # Reading
//!
//! [`ChunkDecoder::feed`] consumes whole chunks from a `BytesMut` and returns the next
//! complete [`Message`]; `Ok(None)` means more bytes are needed, and then nothing of the
//! incomplete chunk has been consumed. It handles:
//!
//! - basic headers of format 0..=3 with the 1-, 2- and 3-byte chunk stream id forms;
//! - absolute timestamps (format 0) and deltas (formats 1, 2, and 3 when it starts a new
//!   message), added with wrapping `u32` arithmetic. As in ffmpeg and librtmp, the delta
//!   that a format-3 new message repeats is the last timestamp field seen on that chunk
//!   stream, which after a format-0 header is the absolute timestamp;
//! - extended timestamps. When the last format 0/1/2 header on a chunk stream carried an
//!   extended timestamp, the spec (and ffmpeg, librtmp, GStreamer, OBS) repeat those 4
//!   bytes after every format-3 header on that chunk stream; some older encoders do not.
//!   We accept both: after a format-3 header the next 4 bytes are taken as the repeated
//!   field when they equal the last extended timestamp value, and as payload otherwise.
//!   (A peer that omits the field and whose payload happens to start with those exact 4
//!   bytes is misread; no rule can tell the two apart.)
//! - interleaved messages on several chunk streams (at most [`MAX_CHUNK_STREAMS`]);
//! - Set Chunk Size (type 1, 1..=0x7FFF_FFFF) and Abort Message (type 2): applied by
//!   the decoder itself, and still returned so a session can log them.
//!
//! Memory: a message longer than `max_message_size` is refused from its header
//! ([`Error::MessageTooLarge`]). Nothing is allocated from a peer-declared length: a
//! partial message grows only with the payload bytes that actually arrived, and the sum
//! of all partial messages is bounded by twice `max_message_size`. A message that fits
//! in one chunk is split off the input without a copy.
//!
//! # Writing
//!
//! [`ChunkEncoder`] writes a format-0 header for the first chunk of every message and
//! format-3 headers for the continuation chunks, repeating the extended timestamp there
//! when the message has one.
use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::{Error, Result};

/// Message type ids.
pub mod msg_type {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ABORT: u8 = 2;
    pub const ACKNOWLEDGEMENT: u8 = 3;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK_SIZE: u8 = 5;
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const DATA_AMF3: u8 = 15;
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    pub const COMMAND_AMF3: u8 = 17;
    pub const DATA_AMF0: u8 = 18;
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    pub const COMMAND_AMF0: u8 = 20;
    pub const AGGREGATE: u8 = 22;
}

/// User control event types (message type 4).
pub mod user_control {
    pub const STREAM_BEGIN: u16 = 0;
    pub const STREAM_EOF: u16 = 1;
    pub const SET_BUFFER_LENGTH: u16 = 3;
    pub const PING_REQUEST: u16 = 6;
    pub const PING_RESPONSE: u16 = 7;
}

/// Chunk size both sides use until a Set Chunk Size.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest chunk size the protocol allows (31 bits).
pub const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;
/// Most chunk streams tracked per connection; a peer opening more is refused.
pub const MAX_CHUNK_STREAMS: usize = 64;
/// Largest message length a chunk header can express.
pub const MAX_MESSAGE_LEN: u32 = 0xFF_FFFF;
/// Chunk stream id of protocol control messages.
pub const CONTROL_CSID: u32 = 2;

const EXTENDED_TIMESTAMP: u32 = 0xFF_FFFF;
const MIN_CSID: u32 = 2;
const MAX_CSID: u32 = 65_599;

/// One RTMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Chunk stream it travelled on.
    pub csid: u32,
    /// Absolute 32-bit timestamp in milliseconds (it wraps).
    pub timestamp: u32,
    /// See [`msg_type`].
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
    pub payload: Bytes,
}

impl Message {
    fn control(type_id: u8, payload: Bytes) -> Message {
        Message {
            csid: CONTROL_CSID,
            timestamp: 0,
            type_id,
            stream_id: 0,
            payload,
        }
    }

    fn control_u32(type_id: u8, value: u32) -> Message {
        Message::control(type_id, Bytes::copy_from_slice(&value.to_be_bytes()))
    }

    /// Set Chunk Size (type 1). Prefer [`ChunkEncoder::write_set_chunk_size`], which also
    /// switches the encoder.
    pub fn set_chunk_size(size: u32) -> Message {
        Message::control_u32(msg_type::SET_CHUNK_SIZE, size)
    }

    /// Acknowledgement (type 3): bytes received so far.
    pub fn acknowledgement(sequence: u32) -> Message {
        Message::control_u32(msg_type::ACKNOWLEDGEMENT, sequence)
    }

    /// Window Acknowledgement Size (type 5).
    pub fn window_ack_size(size: u32) -> Message {
        Message::control_u32(msg_type::WINDOW_ACK_SIZE, size)
    }

    /// Set Peer Bandwidth (type 6); `limit_type` 0 hard, 1 soft, 2 dynamic.
    pub fn set_peer_bandwidth(size: u32, limit_type: u8) -> Message {
        let mut p = BytesMut::with_capacity(5);
        p.put_u32(size);
        p.put_u8(limit_type);
        Message::control(msg_type::SET_PEER_BANDWIDTH, p.freeze())
    }

    /// User Control (type 4) with one 32-bit argument (stream id or ping timestamp).
    pub fn user_control(event: u16, value: u32) -> Message {
        let mut p = BytesMut::with_capacity(6);
        p.put_u16(event);
        p.put_u32(value);
        Message::control(msg_type::USER_CONTROL, p.freeze())
    }
}

/// State of one chunk stream id.
#[derive(Debug)]
struct ChunkStream {
    csid: u32,
    /// Absolute timestamp of the current (or last) message.
    timestamp: u32,
    /// Last timestamp field (absolute for format 0, else delta): what a format-3 chunk
    /// that starts a new message adds.
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The extended timestamp of the last format 0/1/2 header, if it had one.
    extended: Option<u32>,
    /// Payload received so far of the message in progress.
    partial: Option<BytesMut>,
}

impl ChunkStream {
    fn new(csid: u32) -> Self {
        ChunkStream {
            csid,
            timestamp: 0,
            delta: 0,
            length: 0,
            type_id: 0,
            stream_id: 0,
            extended: None,
            partial: None,
        }
    }
}

/// Reassembles messages from a chunk stream. See the module docs.
#[derive(Debug)]
pub struct ChunkDecoder {
    chunk_size: u32,
    max_message_size: u32,
    streams: Vec<ChunkStream>,
    /// Bytes consumed so far, for error context.
    offset: u64,
    /// Sum of the lengths of all partial messages.
    buffered: usize,
}

/// What applying one chunk did.
enum Applied {
    /// The chunk's payload is not all here; nothing was consumed.
    NeedMore,
    /// The chunk was consumed; its message is not complete yet.
    Partial,
    Complete(Message),
}

/// A parsed chunk header, not yet applied to the chunk stream state.
struct Header {
    fmt: u8,
    csid: u32,
    /// Header length including basic header and extended timestamp.
    len: usize,
    /// Timestamp field (extended value when present); `None` for format 3.
    ts_field: Option<u32>,
    /// Whether the timestamp field was the 0xFFFFFF escape (formats 0..=2).
    extended: bool,
    length: Option<u32>,
    type_id: Option<u8>,
    stream_id: Option<u32>,
}

impl ChunkDecoder {
    /// A decoder at the default chunk size (128) that refuses messages longer than
    /// `max_message_size`.
    pub fn new(max_message_size: u32) -> Self {
        ChunkDecoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_message_size,
            streams: Vec::new(),
            offset: 0,
            buffered: 0,
        }
    }

    /// The peer's current chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Bytes consumed from the input so far.
    pub fn bytes_consumed(&self) -> u64 {
        self.offset
    }

    /// Bytes reserved for partial messages (capacity, not length): what the peer has made
    /// us allocate beyond the input buffer.
    pub fn buffered_capacity(&self) -> usize {
        self.streams
            .iter()
            .filter_map(|s| s.partial.as_ref())
            .map(BytesMut::capacity)
            .sum()
    }

    /// Sets the peer's chunk size (what a Set Chunk Size message does).
    pub fn set_chunk_size(&mut self, size: u32) -> Result<()> {
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(self.error("set chunk size out of 1..=0x7FFFFFFF"));
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Drops the partial message on `csid` (what an Abort Message does).
    pub fn abort(&mut self, csid: u32) {
        if let Some(s) = self.streams.iter_mut().find(|s| s.csid == csid)
            && let Some(p) = s.partial.take()
        {
            self.buffered -= p.len();
        }
    }

    fn error(&self, reason: &'static str) -> Error {
        Error::Chunk {
            reason,
            offset: self.offset,
        }
    }

    /// Consumes chunks from `input` until a message is complete. `Ok(None)`: `input`
    /// holds no complete chunk (any whole chunks before it have been consumed).
    pub fn feed(&mut self, input: &mut BytesMut) -> Result<Option<Message>> {
        loop {
            let Some(header) = self.parse_header(input)? else {
                return Ok(None);
            };
            match self.apply_chunk(header, input)? {
                Applied::NeedMore => return Ok(None),
                Applied::Partial => {}
                Applied::Complete(message) => {
                    self.on_message(&message)?;
                    return Ok(Some(message));
                }
            }
        }
    }

    /// Parses a chunk header without consuming anything.
    fn parse_header(&self, input: &[u8]) -> Result<Option<Header>> {
        let Some(&first) = input.first() else {
            return Ok(None);
        };
        let fmt = first >> 6;
        let (csid, mut pos) = match first & 0x3F {
            0 => match input.get(1) {
                Some(&b) => (64 + u32::from(b), 2),
                None => return Ok(None),
            },
            1 => match (input.get(1), input.get(2)) {
                (Some(&lo), Some(&hi)) => (64 + u32::from(lo) + 256 * u32::from(hi), 3),
                _ => return Ok(None),
            },
            n => (u32::from(n), 1),
        };
        let header_len = [11, 7, 3, 0][usize::from(fmt)];
        let Some(h) = input.get(pos..pos + header_len) else {
            return Ok(None);
        };
        pos += header_len;
        let mut header = Header {
            fmt,
            csid,
            len: pos,
            ts_field: None,
            extended: false,
            length: None,
            type_id: None,
            stream_id: None,
        };
        if fmt <= 2 {
            let field = u32::from_be_bytes([0, h[0], h[1], h[2]]);
            if fmt <= 1 {
                header.length = Some(u32::from_be_bytes([0, h[3], h[4], h[5]]));
                header.type_id = Some(h[6]);
            }
            if fmt == 0 {
                header.stream_id = Some(u32::from_le_bytes([h[7], h[8], h[9], h[10]]));
            }
            if field == EXTENDED_TIMESTAMP {
                let Some(ext) = input.get(pos..pos + 4) else {
                    return Ok(None);
                };
                header.ts_field = Some(u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]));
                header.extended = true;
                header.len += 4;
            } else {
                header.ts_field = Some(field);
            }
        } else {
            // Format 3: maybe a repeated extended timestamp (see the module docs).
            let state = self.streams.iter().find(|s| s.csid == csid);
            if let Some(expected) = state.and_then(|s| s.extended) {
                let Some(ext) = input.get(pos..pos + 4) else {
                    return Ok(None);
                };
                if u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]) == expected {
                    header.len += 4;
                }
            }
        }
        Ok(Some(header))
    }

    /// Applies one chunk if its payload is all in `input`.
    fn apply_chunk(&mut self, h: Header, input: &mut BytesMut) -> Result<Applied> {
        let index = match self.streams.iter().position(|s| s.csid == h.csid) {
            Some(i) => i,
            None => {
                if h.fmt == 3 {
                    return Err(self.error("type 3 chunk on a chunk stream with no header"));
                }
                if self.streams.len() >= MAX_CHUNK_STREAMS {
                    return Err(self.error("too many chunk streams"));
                }
                self.streams.push(ChunkStream::new(h.csid));
                self.streams.len() - 1
            }
        };
        let state = &self.streams[index];
        let in_progress = state.partial.as_ref().map_or(0, BytesMut::len);
        let starts_message = state.partial.is_none();
        if !starts_message && h.fmt != 3 {
            return Err(self.error("new message header while a message is in progress"));
        }
        let length = h.length.unwrap_or(state.length);
        if starts_message && length > self.max_message_size {
            return Err(Error::MessageTooLarge {
                len: length,
                max: self.max_message_size,
            });
        }
        let remaining = length as usize - in_progress;
        let take = remaining.min(self.chunk_size as usize);
        if input.len() < h.len + take {
            return Ok(Applied::NeedMore);
        }
        let limit = (self.max_message_size as usize).saturating_mul(2);
        if !(starts_message && take == remaining) && self.buffered + take > limit {
            return Err(self.error("partial messages exceed the buffer limit"));
        }

        // The whole chunk is here: commit.
        input.advance(h.len);
        self.offset += (h.len + take) as u64;
        let state = &mut self.streams[index];
        if starts_message {
            match h.fmt {
                0 => {
                    let ts = h.ts_field.unwrap_or(0);
                    state.timestamp = ts;
                    state.delta = ts;
                }
                1 | 2 => {
                    let delta = h.ts_field.unwrap_or(0);
                    state.timestamp = state.timestamp.wrapping_add(delta);
                    state.delta = delta;
                }
                _ => state.timestamp = state.timestamp.wrapping_add(state.delta),
            }
            if h.fmt <= 2 {
                state.extended = h.extended.then_some(h.ts_field.unwrap_or(0));
            }
            state.length = length;
            if let Some(t) = h.type_id {
                state.type_id = t;
            }
            if let Some(s) = h.stream_id {
                state.stream_id = s;
            }
        }
        let payload = if starts_message && take == remaining {
            input.split_to(take).freeze()
        } else {
            let partial = state
                .partial
                .get_or_insert_with(|| BytesMut::with_capacity(take));
            partial.extend_from_slice(&input[..take]);
            input.advance(take);
            self.buffered += take;
            if partial.len() < length as usize {
                return Ok(Applied::Partial);
            }
            let done = state.partial.take().unwrap_or_default();
            self.buffered -= done.len();
            done.freeze()
        };
        Ok(Applied::Complete(Message {
            csid: state.csid,
            timestamp: state.timestamp,
            type_id: state.type_id,
            stream_id: state.stream_id,
            payload,
        }))
    }

    /// Applies the protocol control messages that change how chunks are read.
    fn on_message(&mut self, message: &Message) -> Result<()> {
        match message.type_id {
            msg_type::SET_CHUNK_SIZE => {
                let size = read_u32(&message.payload)
                    .ok_or_else(|| self.error("set chunk size shorter than 4 bytes"))?;
                self.set_chunk_size(size)
            }
            msg_type::ABORT => {
                let csid = read_u32(&message.payload)
                    .ok_or_else(|| self.error("abort message shorter than 4 bytes"))?;
                self.abort(csid);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The big-endian u32 a control message starts with.
pub fn read_u32(payload: &[u8]) -> Option<u32> {
    let b = payload.get(..4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Cuts messages into chunks at our outbound chunk size.
#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    chunk_size: u32,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkEncoder {
    /// An encoder at the default chunk size (128).
    pub fn new() -> Self {
        ChunkEncoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Writes a Set Chunk Size message (at the current size) and switches to `size`.
    pub fn write_set_chunk_size(&mut self, size: u32, out: &mut BytesMut) -> Result<()> {
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(Error::Chunk {
                reason: "outbound chunk size out of 1..=0x7FFFFFFF",
                offset: 0,
            });
        }
        self.write(&Message::set_chunk_size(size), out)?;
        self.chunk_size = size;
        Ok(())
    }

    /// Appends `message`, cut into chunks, to `out`.
    pub fn write(&self, message: &Message, out: &mut BytesMut) -> Result<()> {
        let len = u32::try_from(message.payload.len())
            .ok()
            .filter(|&l| l <= MAX_MESSAGE_LEN)
            .ok_or(Error::MessageTooLarge {
                len: u32::try_from(message.payload.len()).unwrap_or(u32::MAX),
                max: MAX_MESSAGE_LEN,
            })?;
        if !(MIN_CSID..=MAX_CSID).contains(&message.csid) {
            return Err(Error::Chunk {
                reason: "outbound chunk stream id out of 2..=65599",
                offset: 0,
            });
        }
        let extended = message.timestamp >= EXTENDED_TIMESTAMP;
        let chunk_size = self.chunk_size as usize;
        let chunks = message.payload.len().div_ceil(chunk_size).max(1);
        let ext_len = if extended { 4 } else { 0 };
        out.reserve(message.payload.len() + 11 + chunks * (3 + ext_len));

        put_basic_header(out, 0, message.csid);
        out.put_uint(u64::from(message.timestamp.min(EXTENDED_TIMESTAMP)), 3);
        out.put_uint(u64::from(len), 3);
        out.put_u8(message.type_id);
        out.put_u32_le(message.stream_id);
        if extended {
            out.put_u32(message.timestamp);
        }
        for (i, chunk) in message.payload.chunks(chunk_size).enumerate() {
            if i > 0 {
                put_basic_header(out, 3, message.csid);
                if extended {
                    out.put_u32(message.timestamp);
                }
            }
            out.extend_from_slice(chunk);
        }
        Ok(())
    }
}

fn put_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    let fmt = fmt << 6;
    match csid {
        2..=63 => out.put_u8(fmt | csid as u8),
        64..=319 => {
            out.put_u8(fmt);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            out.put_u8(fmt | 1);
            out.put_u16_le((csid - 64) as u16);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn msg(csid: u32, timestamp: u32, type_id: u8, stream_id: u32, payload: &[u8]) -> Message {
        Message {
            csid,
            timestamp,
            type_id,
            stream_id,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    /// A hand-assembled chunk stream exercising every header form, and the messages it
    /// carries.
    fn vector() -> (Vec<u8>, Vec<Message>) {
        let mut s = Vec::new();
        let mut want = Vec::new();
        // M1: fmt 0, csid 3, ts 1000, len 5, type 20, stream 0.
        s.extend_from_slice(&[0x03, 0x00, 0x03, 0xE8, 0, 0, 5, 20, 0, 0, 0, 0]);
        s.extend_from_slice(b"hello");
        want.push(msg(3, 1000, 20, 0, b"hello"));
        // M2: fmt 1, delta 20, len 3, type 18.
        s.extend_from_slice(&[0x43, 0, 0, 20, 0, 0, 3, 18]);
        s.extend_from_slice(b"abc");
        want.push(msg(3, 1020, 18, 0, b"abc"));
        // M3: fmt 2, delta 30.
        s.extend_from_slice(&[0x83, 0, 0, 30]);
        s.extend_from_slice(b"xyz");
        want.push(msg(3, 1050, 18, 0, b"xyz"));
        // M4: fmt 3 starting a new message: same length, type and delta.
        s.push(0xC3);
        s.extend_from_slice(b"123");
        want.push(msg(3, 1080, 18, 0, b"123"));
        // M5: csid 70 (2-byte form), extended timestamp 0x0100_0000, 150 bytes in two
        // chunks at size 128, interleaved with M6 on csid 400 (3-byte form).
        let m5 = pattern(150, 5);
        s.extend_from_slice(&[0x00, 6, 0xFF, 0xFF, 0xFF, 0, 0, 150, 9, 1, 0, 0, 0]);
        s.extend_from_slice(&[1, 0, 0, 0]);
        s.extend_from_slice(&m5[..128]);
        s.extend_from_slice(&[0x01, 0x50, 0x01, 0, 0, 5, 0, 0, 4, 8, 1, 0, 0, 0]);
        s.extend_from_slice(b"aaaa");
        want.push(msg(400, 5, 8, 1, b"aaaa"));
        // Continuation of M5, repeating the extended timestamp.
        s.extend_from_slice(&[0xC0, 6, 1, 0, 0, 0]);
        s.extend_from_slice(&m5[128..]);
        want.push(msg(70, 0x0100_0000, 9, 1, &m5));
        // M7: Set Chunk Size 256.
        s.extend_from_slice(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 1, 0]);
        want.push(msg(2, 0, 1, 0, &[0, 0, 1, 0]));
        // M8: csid 71, extended timestamp 0x0200_0000, 300 bytes; the continuation does
        // NOT repeat the extended timestamp (older encoders).
        let m8 = pattern(300, 8);
        s.extend_from_slice(&[0x00, 7, 0xFF, 0xFF, 0xFF, 0, 1, 44, 9, 1, 0, 0, 0]);
        s.extend_from_slice(&[2, 0, 0, 0]);
        s.extend_from_slice(&m8[..256]);
        s.extend_from_slice(&[0xC0, 7]);
        s.extend_from_slice(&m8[256..]);
        want.push(msg(71, 0x0200_0000, 9, 1, &m8));
        // M9: fmt 3 new message on csid 70: delta = last timestamp field (0x0100_0000),
        // extended field repeated.
        let m9 = pattern(150, 9);
        s.extend_from_slice(&[0xC0, 6, 1, 0, 0, 0]);
        s.extend_from_slice(&m9);
        want.push(msg(70, 0x0200_0000, 9, 1, &m9));
        // M10: fmt 1 on csid 3 with an extended delta that wraps: 1080 + 0xFFFF_FFF0.
        s.extend_from_slice(&[0x43, 0xFF, 0xFF, 0xFF, 0, 0, 2, 8, 0xFF, 0xFF, 0xFF, 0xF0]);
        s.extend_from_slice(b"zz");
        want.push(msg(3, 1064, 8, 0, b"zz"));
        // M11: a 300-byte message on csid 5 is aborted after its first chunk ...
        s.extend_from_slice(&[0x05, 0, 0, 1, 0, 1, 44, 9, 1, 0, 0, 0]);
        s.extend_from_slice(&pattern(256, 11));
        s.extend_from_slice(&[0x02, 0, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 0, 0, 0, 5]);
        want.push(msg(2, 0, 2, 0, &[0, 0, 0, 5]));
        // ... and a new one follows on the same csid.
        s.extend_from_slice(&[0x05, 0, 0, 2, 0, 0, 2, 9, 1, 0, 0, 0, b'o', b'k']);
        want.push(msg(5, 2, 9, 1, b"ok"));
        // M12: an empty message.
        s.extend_from_slice(&[0x06, 0, 0, 3, 0, 0, 0, 8, 1, 0, 0, 0]);
        want.push(msg(6, 3, 8, 1, b""));
        (s, want)
    }

    fn drain(decoder: &mut ChunkDecoder, buf: &mut BytesMut, out: &mut Vec<Message>) {
        while let Some(m) = decoder.feed(buf).unwrap() {
            out.push(m);
        }
    }

    #[test]
    fn vector_split_at_every_offset() {
        let (stream, want) = vector();
        for split in 0..=stream.len() {
            let mut decoder = ChunkDecoder::new(1 << 20);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            buf.extend_from_slice(&stream[..split]);
            drain(&mut decoder, &mut buf, &mut got);
            buf.extend_from_slice(&stream[split..]);
            drain(&mut decoder, &mut buf, &mut got);
            assert_eq!(got, want, "split at {split}");
            assert!(buf.is_empty());
            assert_eq!(decoder.bytes_consumed(), stream.len() as u64);
            assert_eq!(decoder.chunk_size(), 256);
            assert_eq!(decoder.buffered_capacity(), 0, "aborted message released");
        }
    }

    #[test]
    fn vector_byte_by_byte() {
        let (stream, want) = vector();
        let mut decoder = ChunkDecoder::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in &stream {
            buf.extend_from_slice(&[*b]);
            drain(&mut decoder, &mut buf, &mut got);
        }
        assert_eq!(got, want);
    }

    #[test]
    fn huge_declared_length_allocates_nothing_up_front() {
        // A 16 MiB - 1 message announced, 100 bytes sent, chunk size 128.
        let mut decoder = ChunkDecoder::new(16 << 20);
        let mut buf = BytesMut::from(&[0x04, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0][..]);
        buf.extend_from_slice(&[7; 100]);
        assert_eq!(decoder.feed(&mut buf).unwrap(), None);
        assert_eq!(buf.len(), 112, "incomplete chunk not consumed");
        assert_eq!(decoder.buffered_capacity(), 0);
        // One full chunk and part of the next: only what arrived is held.
        buf.extend_from_slice(&[7; 28]);
        buf.extend_from_slice(&[0xC4, 1, 2, 3]);
        assert_eq!(decoder.feed(&mut buf).unwrap(), None);
        assert!(
            decoder.buffered_capacity() <= 1024,
            "capacity {}",
            decoder.buffered_capacity()
        );
    }

    #[test]
    fn max_chunk_size_is_accepted_and_bounded() {
        let mut decoder = ChunkDecoder::new(16 << 20);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[
            0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF,
        ]);
        let m = decoder.feed(&mut buf).unwrap().unwrap();
        assert_eq!(m.type_id, msg_type::SET_CHUNK_SIZE);
        assert_eq!(decoder.chunk_size(), MAX_CHUNK_SIZE);
        buf.extend_from_slice(&[0x04, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0, 1, 2, 3]);
        assert_eq!(decoder.feed(&mut buf).unwrap(), None);
        assert_eq!(decoder.buffered_capacity(), 0);
        // A message that fits is returned whole from one chunk.
        let mut decoder = ChunkDecoder::new(16 << 20);
        decoder.set_chunk_size(MAX_CHUNK_SIZE).unwrap();
        let mut buf = BytesMut::from(&[0x04, 0, 0, 9, 0, 0x10, 0, 9, 1, 0, 0, 0][..]);
        buf.extend_from_slice(&pattern(4096, 1));
        let m = decoder.feed(&mut buf).unwrap().unwrap();
        assert_eq!((m.timestamp, &m.payload[..]), (9, &pattern(4096, 1)[..]));
    }

    #[test]
    fn bad_set_chunk_sizes_are_refused() {
        for value in [0u32, 0x8000_0000, u32::MAX] {
            let mut decoder = ChunkDecoder::new(1 << 20);
            let mut buf = BytesMut::from(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0][..]);
            buf.extend_from_slice(&value.to_be_bytes());
            assert!(
                matches!(decoder.feed(&mut buf), Err(Error::Chunk { .. })),
                "{value:#x}"
            );
        }
        let mut decoder = ChunkDecoder::new(1 << 20);
        let mut buf = BytesMut::from(&[0x02, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 1][..]);
        assert!(decoder.feed(&mut buf).is_err(), "short set chunk size");
    }

    #[test]
    fn message_over_the_limit_is_refused_from_its_header() {
        let mut decoder = ChunkDecoder::new(1000);
        let mut buf = BytesMut::from(&[0x04, 0, 0, 0, 0, 0x03, 0xE9, 9, 1, 0, 0, 0][..]);
        match decoder.feed(&mut buf) {
            Err(Error::MessageTooLarge { len, max }) => assert_eq!((len, max), (1001, 1000)),
            other => panic!("{other:?}"),
        }
        let mut decoder = ChunkDecoder::new(1000);
        let mut buf = BytesMut::from(&[0x04, 0, 0, 0, 0, 0x03, 0xE8, 9, 1, 0, 0, 0][..]);
        assert_eq!(
            decoder.feed(&mut buf).unwrap(),
            None,
            "1000 bytes is allowed"
        );
    }

    #[test]
    fn chunk_streams_are_capped() {
        let mut decoder = ChunkDecoder::new(1 << 20);
        let mut buf = BytesMut::new();
        for i in 0..=MAX_CHUNK_STREAMS as u32 {
            put_basic_header(&mut buf, 0, 100 + i);
            buf.extend_from_slice(&[0, 0, 0, 0, 0, 1, 8, 1, 0, 0, 0, 0xAA]);
        }
        let mut got = 0;
        let err = loop {
            match decoder.feed(&mut buf) {
                Ok(Some(_)) => got += 1,
                Ok(None) => panic!("no error after {got} chunk streams"),
                Err(e) => break e,
            }
        };
        assert_eq!(got, MAX_CHUNK_STREAMS);
        assert!(matches!(err, Error::Chunk { reason, .. } if reason.contains("too many")));
    }

    #[test]
    fn protocol_violations_are_errors() {
        // Type 3 on a fresh chunk stream.
        let mut d = ChunkDecoder::new(1 << 20);
        assert!(d.feed(&mut BytesMut::from(&[0xC3, 1, 2][..])).is_err());
        // New header while a message is in progress.
        let mut d = ChunkDecoder::new(1 << 20);
        let mut buf = BytesMut::from(&[0x04, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0][..]);
        buf.extend_from_slice(&[0; 128]);
        buf.extend_from_slice(&[0x04, 0, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, 0]);
        assert!(matches!(
            d.feed(&mut buf),
            Err(Error::Chunk { offset: 140, .. })
        ));
    }

    #[test]
    fn encoder_writes_expected_bytes() {
        let mut enc = ChunkEncoder::new();
        let mut out = BytesMut::new();
        enc.write_set_chunk_size(4, &mut out).unwrap();
        assert_eq!(enc.chunk_size(), 4);
        enc.write(&msg(3, 0x0100_0000, 20, 1, b"abcdef"), &mut out)
            .unwrap();
        enc.write(&msg(320, 7, 8, 0, b""), &mut out).unwrap();
        let want: &[u8] = &[
            0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 4, // set chunk size 4
            0x03, 0xFF, 0xFF, 0xFF, 0, 0, 6, 20, 1, 0, 0, 0, 1, 0, 0, 0, b'a', b'b', b'c', b'd',
            0xC3, 1, 0, 0, 0, b'e', b'f', // continuation repeats the extended timestamp
            0x01, 0x00, 0x01, 0, 0, 7, 0, 0, 0, 8, 0, 0, 0, 0, // csid 320: 3-byte form
        ];
        assert_eq!(&out[..], want);
        assert!(enc.write(&msg(1, 0, 8, 0, b""), &mut out).is_err());
        let big = Message {
            payload: Bytes::from(vec![0; 0x100_0000]),
            ..msg(3, 0, 9, 1, b"")
        };
        assert!(matches!(
            enc.write(&big, &mut out),
            Err(Error::MessageTooLarge { .. })
        ));
    }

    /// Splits one message as written by the encoder into its chunks.
    fn split_chunks(
        encoded: &[u8],
        m: &Message,
        chunk_size: usize,
        strip_ext: bool,
    ) -> Vec<Vec<u8>> {
        let basic = match m.csid {
            2..=63 => 1,
            64..=319 => 2,
            _ => 3,
        };
        let ext = if m.timestamp >= EXTENDED_TIMESTAMP {
            4
        } else {
            0
        };
        let mut chunks = Vec::new();
        let mut rest = encoded;
        let mut remaining = m.payload.len();
        let mut first = true;
        loop {
            let take = remaining.min(chunk_size);
            let header = if first { basic + 11 + ext } else { basic + ext };
            let (chunk, tail) = rest.split_at(header + take);
            let mut chunk = chunk.to_vec();
            if !first && strip_ext {
                chunk.drain(basic..basic + ext);
            }
            chunks.push(chunk);
            rest = tail;
            remaining -= take;
            first = false;
            if remaining == 0 {
                break;
            }
        }
        assert!(rest.is_empty());
        chunks
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        (
            prop_oneof![
                Just(3u32),
                Just(4),
                Just(63),
                Just(64),
                Just(319),
                Just(320),
                Just(65_599)
            ],
            prop_oneof![any::<u32>(), 0xFF_FFF0u32..0x100_0010, 0u32..100_000],
            prop_oneof![Just(8u8), Just(9), Just(18), Just(20)],
            0u32..4,
            proptest::collection::vec(any::<u8>(), 0..1500),
        )
            .prop_map(|(csid, timestamp, type_id, stream_id, payload)| Message {
                csid,
                timestamp,
                type_id,
                stream_id,
                payload: payload.into(),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn encoder_decoder_round_trip_interleaved(
            messages in proptest::collection::vec(arb_message(), 1..12),
            chunk_size in prop_oneof![1u32..300, 300u32..5000],
            picks in proptest::collection::vec(any::<u16>(), 64),
            strip_ext in any::<bool>(),
            split in any::<u16>(),
        ) {
            let mut enc = ChunkEncoder::new();
            let mut stream = BytesMut::new();
            enc.write_set_chunk_size(chunk_size, &mut stream).unwrap();
            // Per chunk stream, the queue of chunks of its messages in order.
            let mut queues: Vec<(u32, std::collections::VecDeque<Vec<u8>>)> = Vec::new();
            for m in &messages {
                let mut one = BytesMut::new();
                enc.write(m, &mut one).unwrap();
                let chunks = split_chunks(&one, m, chunk_size as usize, strip_ext);
                match queues.iter_mut().find(|(c, _)| *c == m.csid) {
                    Some((_, q)) => q.extend(chunks),
                    None => queues.push((m.csid, chunks.into())),
                }
            }
            // Interleave: pick a chunk stream at random, send its next chunk.
            let mut pick = 0;
            while queues.iter().any(|(_, q)| !q.is_empty()) {
                let live: Vec<usize> =
                    (0..queues.len()).filter(|&i| !queues[i].1.is_empty()).collect();
                let i = live[usize::from(picks[pick % picks.len()]) % live.len()];
                pick += 1;
                stream.extend_from_slice(&queues[i].1.pop_front().unwrap());
            }
            // A trailing message so that a heuristic waiting for 4 bytes gets them.
            enc.write(&msg(2, 0, msg_type::ACKNOWLEDGEMENT, 0, &[0, 0, 0, 1]), &mut stream).unwrap();

            let split = usize::from(split) % (stream.len() + 1);
            let mut decoder = ChunkDecoder::new(1 << 20);
            let mut buf = BytesMut::from(&stream[..split]);
            let mut got = Vec::new();
            while let Some(m) = decoder.feed(&mut buf).unwrap() { got.push(m); }
            buf.extend_from_slice(&stream[split..]);
            while let Some(m) = decoder.feed(&mut buf).unwrap() { got.push(m); }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(decoder.chunk_size(), chunk_size);
            for (csid, _) in &queues {
                let sent: Vec<&Message> = messages.iter().filter(|m| m.csid == *csid).collect();
                let received: Vec<&Message> = got.iter().filter(|m| m.csid == *csid).collect();
                prop_assert_eq!(sent, received);
            }
            prop_assert_eq!(got.len(), messages.len() + 2);
        }

        #[test]
        fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut decoder = ChunkDecoder::new(4096);
            let mut buf = BytesMut::from(&data[..]);
            while let Ok(Some(_)) = decoder.feed(&mut buf) {}
            prop_assert!(decoder.buffered_capacity() <= 2 * 4096 + 4096);
        }
    }
}
