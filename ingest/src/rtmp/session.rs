//! The server side of one RTMP connection, without I/O: bytes in, [`SessionEvent`]s out.
//!
//! The flow publishers use (OBS through librtmp, ffmpeg's native `rtmpproto.c`,
//! GStreamer's `rtmp2sink`):
//!
//! 1. handshake ([`super::handshake`]);
//! 2. `connect` -> Window Acknowledgement Size, Set Peer Bandwidth, Set Chunk Size,
//!    Stream Begin 0 and `_result` (`NetConnection.Connect.Success`, with `fmsVer`,
//!    `capabilities` and the peer's `objectEncoding` echoed) — [`SessionEvent::Connect`];
//! 3. `releaseStream`, `FCPublish` -> `_result` (ffmpeg ignores these replies and even
//!    their errors; librtmp and GStreamer do not wait for them);
//! 4. `createStream` -> `_result` with the new message stream id (1, 2, ...);
//! 5. `publish` -> [`SessionEvent::PublishRequested`]. The session then stops reading
//!    further messages (they stay buffered) until the caller decides:
//!    [`Session::accept_publish`] (Stream Begin, `onStatus NetStream.Publish.Start`) or
//!    [`Session::reject_publish`] (`onStatus` level `error`,
//!    `NetStream.Publish.BadName`, which ffmpeg, librtmp and GStreamer all treat as a
//!    failure; the caller should then close the connection). After accepting, call
//!    [`Session::handle_input`] again (with an empty slice if nothing new arrived) to
//!    process what was buffered meanwhile;
//! 6. metadata (`@setDataFrame onMetaData`), audio and video messages;
//! 7. `FCUnpublish`, `closeStream` or `deleteStream` of the publishing stream ->
//!    [`SessionEvent::Unpublished`] (once).
//!
//! Also handled: Ping Request -> Ping Response, Acknowledgements sent whenever the bytes
//! received since the last one reach the window we announced, `getStreamLength` and
//! `_checkbw` answered, AMF3 command messages (type 17: a 0 byte then AMF0) and AMF3 data
//! messages (type 15). Unknown commands are logged and ignored, with an `_error` reply
//! when they carry a transaction id. Audio or video before the publish was accepted is a
//! protocol error; empty audio/video messages are skipped; audio/video after an
//! unpublish or a rejection are dropped. Aggregate messages (type 22) are not used by
//! publishers and are ignored.
//!
//! The client's C2 is not validated against our S1 (see [`super::handshake`]), so a
//! captured client byte stream can be replayed against a new session: our random S1 does
//! not matter.
use bytes::{Bytes, BytesMut};
use tracing::{debug, warn};

use super::amf0::{self, Amf0Value};
use super::chunk::{ChunkDecoder, ChunkEncoder, Message, msg_type, read_u32, user_control};
use super::handshake::{HandshakeStep, ServerHandshake};
use crate::{Error, Result};

/// Settings of a server session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our outbound chunk size, announced with Set Chunk Size after `connect`.
    pub chunk_size: u32,
    /// Largest message accepted from the peer.
    pub max_message_size: u32,
    /// Window Acknowledgement Size we announce (and Set Peer Bandwidth we ask for).
    pub window_ack_size: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            chunk_size: 4096,
            max_message_size: 16 * 1024 * 1024,
            window_ack_size: 2_500_000,
        }
    }
}

/// What the session asks of its caller, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// Write these bytes to the peer, in order.
    Send(Bytes),
    Connect {
        app: String,
        tc_url: Option<String>,
    },
    /// A `publish` command: `key` is the publishing name up to `?`, `query` the rest.
    /// Answer with [`Session::accept_publish`] or [`Session::reject_publish`].
    PublishRequested {
        app: String,
        key: String,
        query: Option<String>,
    },
    /// `@setDataFrame onMetaData` (or `onMetaData`) properties.
    Metadata(Vec<(String, Amf0Value)>),
    /// Message type 8, with the absolute 32-bit timestamp of the chunk layer.
    Audio {
        timestamp: u32,
        data: Bytes,
    },
    /// Message type 9.
    Video {
        timestamp: u32,
        data: Bytes,
    },
    /// `FCUnpublish`, `closeStream` or `deleteStream` of the publishing stream.
    Unpublished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PublishState {
    Pending,
    Active,
    Ended,
}

#[derive(Debug)]
struct Publish {
    stream_id: u32,
    name: String,
    state: PublishState,
}

/// Csid of our command messages.
const COMMAND_CSID: u32 = 3;
/// Input buffered while a publish decision is pending, beyond one message.
const PENDING_SLACK: usize = 64 * 1024;

/// The server side of one RTMP connection. See the module docs.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    handshake: ServerHandshake,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    input: BytesMut,
    out: BytesMut,
    bytes_received: u64,
    last_ack: u64,
    window_announced: bool,
    app: Option<String>,
    next_stream_id: u32,
    publish: Option<Publish>,
}

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        Session {
            decoder: ChunkDecoder::new(config.max_message_size),
            config,
            handshake: ServerHandshake::new(),
            encoder: ChunkEncoder::new(),
            input: BytesMut::new(),
            out: BytesMut::new(),
            bytes_received: 0,
            last_ack: 0,
            window_announced: false,
            app: None,
            next_stream_id: 1,
            publish: None,
        }
    }

    /// Bytes received from the peer so far, handshake included.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// The `app` of the `connect` command, once connected.
    pub fn app(&self) -> Option<&str> {
        self.app.as_deref()
    }

    /// Whether a publish was accepted and has not ended.
    pub fn is_publishing(&self) -> bool {
        self.publish
            .as_ref()
            .is_some_and(|p| p.state == PublishState::Active)
    }

    /// Processes bytes from the peer. An error means the connection must be closed.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<Vec<SessionEvent>> {
        self.bytes_received += input.len() as u64;
        self.input.extend_from_slice(input);
        let mut events = Vec::new();
        while !self.handshake.is_done() {
            match self.handshake.feed(&mut self.input)? {
                None => break,
                Some(HandshakeStep::Send(b) | HandshakeStep::Done(b)) => {
                    self.out.extend_from_slice(&b)
                }
            }
        }
        if self.handshake.is_done() {
            loop {
                if self.publish_pending() {
                    let limit = self.config.max_message_size as usize + PENDING_SLACK;
                    if self.input.len() > limit {
                        return Err(Error::Chunk {
                            reason: "too much input while the publish decision is pending",
                            offset: self.decoder.bytes_consumed(),
                        });
                    }
                    break;
                }
                let Some(message) = self.decoder.feed(&mut self.input)? else {
                    break;
                };
                self.on_message(message, &mut events)?;
            }
        }
        self.maybe_acknowledge()?;
        self.flush(&mut events);
        Ok(events)
    }

    /// Accepts the pending publish: the bytes to write (Stream Begin and
    /// `NetStream.Publish.Start`). Then call [`Session::handle_input`] to go on.
    pub fn accept_publish(&mut self) -> Result<Bytes> {
        let Some(publish) = self
            .publish
            .as_mut()
            .filter(|p| p.state == PublishState::Pending)
        else {
            return Err(Error::Command {
                command: "publish".into(),
                reason: "no publish is awaiting a decision",
            });
        };
        publish.state = PublishState::Active;
        let stream_id = publish.stream_id;
        let description = format!("{} is now published", publish.name);
        let details = publish.name.clone();
        self.send(Message {
            csid: super::chunk::CONTROL_CSID,
            ..Message::user_control(user_control::STREAM_BEGIN, stream_id)
        })?;
        self.on_status(
            stream_id,
            "status",
            "NetStream.Publish.Start",
            &description,
            Some(details),
        )?;
        Ok(self.out.split().freeze())
    }

    /// Refuses the pending publish: the `onStatus` error to write before closing.
    pub fn reject_publish(&mut self, description: &str) -> Bytes {
        let stream_id = match self.publish.as_mut() {
            Some(p) => {
                p.state = PublishState::Ended;
                p.stream_id
            }
            None => 1,
        };
        if let Err(e) = self.on_status(
            stream_id,
            "error",
            "NetStream.Publish.BadName",
            description,
            None,
        ) {
            warn!(error = %e, "cannot encode publish rejection");
        }
        self.out.split().freeze()
    }

    fn publish_pending(&self) -> bool {
        self.publish
            .as_ref()
            .is_some_and(|p| p.state == PublishState::Pending)
    }

    fn flush(&mut self, events: &mut Vec<SessionEvent>) {
        if !self.out.is_empty() {
            events.push(SessionEvent::Send(self.out.split().freeze()));
        }
    }

    fn send(&mut self, message: Message) -> Result<()> {
        self.encoder.write(&message, &mut self.out)
    }

    fn send_command(&mut self, stream_id: u32, values: &[Amf0Value]) -> Result<()> {
        self.send(Message {
            csid: COMMAND_CSID,
            timestamp: 0,
            type_id: msg_type::COMMAND_AMF0,
            stream_id,
            payload: amf0::encode_all(values).freeze(),
        })
    }

    fn on_status(
        &mut self,
        stream_id: u32,
        level: &str,
        code: &str,
        description: &str,
        details: Option<String>,
    ) -> Result<()> {
        let mut info = vec![
            ("level".to_owned(), Amf0Value::from(level)),
            ("code".to_owned(), code.into()),
            ("description".to_owned(), description.into()),
        ];
        if let Some(d) = details {
            info.push(("details".to_owned(), d.into()));
        }
        self.send_command(
            stream_id,
            &[
                "onStatus".into(),
                0.0.into(),
                Amf0Value::Null,
                Amf0Value::Object(info),
            ],
        )
    }

    fn maybe_acknowledge(&mut self) -> Result<()> {
        let window = u64::from(self.config.window_ack_size);
        if self.window_announced && window > 0 && self.bytes_received - self.last_ack >= window {
            self.last_ack = self.bytes_received;
            // The sequence number wraps like every 32-bit RTMP counter.
            self.send(Message::acknowledgement(self.bytes_received as u32))?;
        }
        Ok(())
    }

    fn on_message(&mut self, m: Message, events: &mut Vec<SessionEvent>) -> Result<()> {
        match m.type_id {
            msg_type::SET_CHUNK_SIZE | msg_type::ABORT => {
                debug!(type_id = m.type_id, "applied by the chunk decoder");
            }
            msg_type::ACKNOWLEDGEMENT
            | msg_type::WINDOW_ACK_SIZE
            | msg_type::SET_PEER_BANDWIDTH => {}
            msg_type::USER_CONTROL => {
                let event = m.payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
                if event == Some(user_control::PING_REQUEST) {
                    let value = m.payload.get(2..).and_then(read_u32).unwrap_or(0);
                    self.send(Message::user_control(user_control::PING_RESPONSE, value))?;
                }
            }
            msg_type::AUDIO | msg_type::VIDEO => self.on_media(m, events)?,
            msg_type::DATA_AMF0 | msg_type::DATA_AMF3 => self.on_data(&m, events),
            msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3 => self.on_command(&m, events)?,
            other => debug!(type_id = other, "ignored rtmp message"),
        }
        Ok(())
    }

    fn on_media(&mut self, m: Message, events: &mut Vec<SessionEvent>) -> Result<()> {
        match self.publish.as_ref().map(|p| p.state) {
            Some(PublishState::Active) => {}
            Some(PublishState::Ended) => return Ok(()),
            _ => {
                return Err(Error::UnexpectedMessage {
                    message_type: m.type_id,
                    stream_id: m.stream_id,
                    reason: "media before a publish was accepted",
                });
            }
        }
        if m.payload.is_empty() {
            return Ok(());
        }
        self.flush(events);
        events.push(if m.type_id == msg_type::AUDIO {
            SessionEvent::Audio {
                timestamp: m.timestamp,
                data: m.payload,
            }
        } else {
            SessionEvent::Video {
                timestamp: m.timestamp,
                data: m.payload,
            }
        });
        Ok(())
    }

    fn on_data(&mut self, m: &Message, events: &mut Vec<SessionEvent>) {
        let body = amf_body(m);
        let values = match amf0::decode_all(body) {
            Ok(v) => v,
            Err(e) => {
                warn!(error = %e, "undecodable data message ignored");
                return;
            }
        };
        let mut rest = values
            .iter()
            .skip_while(|v| v.as_str() == Some("@setDataFrame"));
        if rest.next().and_then(Amf0Value::as_str) != Some("onMetaData") {
            debug!("data message other than onMetaData ignored");
            return;
        }
        let Some(props) = rest.next().and_then(Amf0Value::properties) else {
            warn!("onMetaData without properties ignored");
            return;
        };
        if !self.is_publishing() {
            debug!("metadata outside a publish ignored");
            return;
        }
        self.flush(events);
        events.push(SessionEvent::Metadata(props.to_vec()));
    }

    fn on_command(&mut self, m: &Message, events: &mut Vec<SessionEvent>) -> Result<()> {
        let values = amf0::decode_all(amf_body(m))?;
        let Some(name) = values.first().and_then(Amf0Value::as_str) else {
            return Err(Error::Command {
                command: String::new(),
                reason: "command message without a name",
            });
        };
        let name = name.to_owned();
        let error = |reason| Error::Command {
            command: name.clone(),
            reason,
        };
        let txn = values.get(1).and_then(Amf0Value::as_f64).unwrap_or(0.0);
        let arg = |i: usize| values.get(i);
        if name != "connect" && self.app.is_none() {
            return Err(error("command before connect"));
        }
        match name.as_str() {
            "connect" => {
                if self.app.is_some() {
                    return Err(error("connect received twice"));
                }
                let obj = arg(2).ok_or_else(|| error("no command object"))?;
                let app = obj
                    .get("app")
                    .and_then(Amf0Value::as_str)
                    .ok_or_else(|| error("no app"))?
                    .trim_end_matches('/')
                    .to_owned();
                let tc_url = obj
                    .get("tcUrl")
                    .and_then(Amf0Value::as_str)
                    .map(str::to_owned);
                let encoding = obj.get("objectEncoding").and_then(Amf0Value::as_f64);
                self.on_connect(txn, encoding.unwrap_or(0.0))?;
                self.app = Some(app.clone());
                self.flush(events);
                events.push(SessionEvent::Connect { app, tc_url });
            }
            "releaseStream" | "FCPublish" | "_checkbw" => self.result(txn, Amf0Value::Undefined)?,
            "getStreamLength" => self.result(txn, Amf0Value::Number(0.0))?,
            "createStream" => {
                let id = self.next_stream_id;
                self.next_stream_id = id.checked_add(1).ok_or_else(|| error("out of ids"))?;
                self.result(txn, Amf0Value::Number(f64::from(id)))?;
            }
            "publish" => {
                if self
                    .publish
                    .as_ref()
                    .is_some_and(|p| p.state != PublishState::Ended)
                {
                    return Err(error("already publishing"));
                }
                let full = arg(3)
                    .and_then(Amf0Value::as_str)
                    .ok_or_else(|| error("no publishing name"))?;
                let (key, query) = match full.split_once('?') {
                    Some((k, q)) => (k.to_owned(), Some(q.to_owned())),
                    None => (full.to_owned(), None),
                };
                self.publish = Some(Publish {
                    stream_id: m.stream_id,
                    name: key.clone(),
                    state: PublishState::Pending,
                });
                let app = self.app.clone().unwrap_or_default();
                self.flush(events);
                events.push(SessionEvent::PublishRequested { app, key, query });
            }
            "FCUnpublish" => {
                self.result(txn, Amf0Value::Undefined)?;
                self.end_publish(None, events);
            }
            "deleteStream" => {
                let id = arg(3).and_then(Amf0Value::as_f64).map(|n| n as u32);
                self.end_publish(Some(id.unwrap_or(m.stream_id)), events);
            }
            "closeStream" => self.end_publish(Some(m.stream_id), events),
            _ => {
                debug!(command = %name, txn, "unknown rtmp command ignored");
                if txn > 0.0 {
                    let info = Amf0Value::object([
                        ("level", Amf0Value::from("error")),
                        ("code", "NetConnection.Call.Failed".into()),
                        ("description", format!("unknown command {name}").into()),
                    ]);
                    self.send_command(0, &["_error".into(), txn.into(), Amf0Value::Null, info])?;
                }
            }
        }
        Ok(())
    }

    /// `_result` for a transaction, if the peer expects one.
    fn result(&mut self, txn: f64, value: Amf0Value) -> Result<()> {
        if txn > 0.0 {
            self.send_command(0, &["_result".into(), txn.into(), Amf0Value::Null, value])?;
        }
        Ok(())
    }

    fn on_connect(&mut self, txn: f64, object_encoding: f64) -> Result<()> {
        let window = self.config.window_ack_size;
        self.send(Message::window_ack_size(window))?;
        self.send(Message::set_peer_bandwidth(window, 2))?;
        self.encoder
            .write_set_chunk_size(self.config.chunk_size, &mut self.out)?;
        self.send(Message::user_control(user_control::STREAM_BEGIN, 0))?;
        self.window_announced = true;
        let properties = Amf0Value::object([
            ("fmsVer", Amf0Value::from("FMS/3,0,1,123")),
            ("capabilities", 31.0.into()),
            ("mode", 1.0.into()),
        ]);
        let information = Amf0Value::object([
            ("level", Amf0Value::from("status")),
            ("code", "NetConnection.Connect.Success".into()),
            ("description", "Connection succeeded.".into()),
            ("objectEncoding", object_encoding.into()),
        ]);
        self.send_command(0, &["_result".into(), txn.into(), properties, information])
    }

    /// Ends the publish on `stream_id` (any stream for `None`), once.
    fn end_publish(&mut self, stream_id: Option<u32>, events: &mut Vec<SessionEvent>) {
        let Some(p) = self.publish.as_mut() else {
            return;
        };
        if p.state != PublishState::Active || stream_id.is_some_and(|id| id != p.stream_id) {
            return;
        }
        p.state = PublishState::Ended;
        self.flush(events);
        events.push(SessionEvent::Unpublished);
    }
}

/// The AMF0 body of a command or data message: AMF3 variants (types 17 and 15) start
/// with a 0 format byte before AMF0 values.
fn amf_body(m: &Message) -> &[u8] {
    let amf3 = matches!(m.type_id, msg_type::COMMAND_AMF3 | msg_type::DATA_AMF3);
    match m.payload.first() {
        Some(0) if amf3 => &m.payload[1..],
        _ => &m.payload,
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
