//! A small sans-IO RTMP publishing client, for tests and benchmarks.
//!
//! [`ClientSession::start`] gives C0 C1; from then on feed every byte the server sends to
//! [`ClientSession::handle_input`] and write every [`ClientEvent::Send`]. The client
//! completes the handshake, then sends Set Chunk Size and `connect`; on the `connect`
//! `_result` it sends `releaseStream`, `FCPublish` and `createStream` (as ffmpeg does), on
//! the `createStream` `_result` it sends `publish`, and `onStatus
//! NetStream.Publish.Start` makes it [`ClientEvent::Publishing`]. A `_error` to `connect`
//! or an `onStatus` of level `error` is [`ClientEvent::Rejected`].
//!
//! Once publishing, [`ClientSession::send_metadata`], [`ClientSession::send_video`] and
//! [`ClientSession::send_audio`] return the bytes of one message each (FLV tag bodies go
//! in as they are), and [`ClientSession::unpublish`] the `FCUnpublish` + `deleteStream`
//! pair. The client does not police its caller: media can be sent in any state, which
//! lets tests play a misbehaving publisher.
use bytes::{Bytes, BytesMut};

use super::amf0::{self, Amf0Value};
use super::chunk::{ChunkDecoder, ChunkEncoder, Message, msg_type, read_u32, user_control};
use super::handshake::{ClientHandshake, HandshakeStep};
use crate::{Error, Result};

/// What the client asks of its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Write these bytes to the server, in order.
    Send(Bytes),
    /// `connect` succeeded.
    Connected,
    /// `NetStream.Publish.Start`: media may flow.
    Publishing,
    /// The server refused `connect` or `publish`.
    Rejected { code: String, description: String },
}

const TXN_CONNECT: f64 = 1.0;
const TXN_CREATE_STREAM: f64 = 4.0;
const TXN_PUBLISH: f64 = 5.0;
const COMMAND_CSID: u32 = 3;
const AUDIO_CSID: u32 = 4;
const VIDEO_CSID: u32 = 6;
const DATA_CSID: u32 = 5;
/// Largest server message the client accepts.
const MAX_SERVER_MESSAGE: u32 = 1 << 20;

/// A publishing RTMP client. See the module docs.
#[derive(Debug)]
pub struct ClientSession {
    app: String,
    tc_url: String,
    stream_key: String,
    chunk_size: u32,
    handshake: ClientHandshake,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    input: BytesMut,
    stream_id: u32,
    publishing: bool,
}

impl ClientSession {
    /// A client that will publish `stream_key` (which may carry a `?query`) to `app`.
    pub fn new(
        app: impl Into<String>,
        tc_url: impl Into<String>,
        stream_key: impl Into<String>,
    ) -> Self {
        ClientSession {
            app: app.into(),
            tc_url: tc_url.into(),
            stream_key: stream_key.into(),
            chunk_size: 4096,
            handshake: ClientHandshake::new(),
            decoder: ChunkDecoder::new(MAX_SERVER_MESSAGE),
            encoder: ChunkEncoder::new(),
            input: BytesMut::new(),
            stream_id: 0,
            publishing: false,
        }
    }

    /// Use `size` as the outbound chunk size (default 4096) instead.
    pub fn with_chunk_size(mut self, size: u32) -> Self {
        self.chunk_size = size;
        self
    }

    /// C0 and C1: the first bytes to write.
    pub fn start(&mut self) -> Result<Bytes> {
        self.handshake.start()
    }

    /// Whether the server accepted the publish.
    pub fn is_publishing(&self) -> bool {
        self.publishing
    }

    /// The message stream id `createStream` returned (0 before).
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// Processes bytes from the server.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<Vec<ClientEvent>> {
        self.input.extend_from_slice(input);
        let mut out = BytesMut::new();
        let mut events = Vec::new();
        if !self.handshake.is_done() {
            match self.handshake.feed(&mut self.input)? {
                None | Some(HandshakeStep::Send(_)) => return Ok(events),
                Some(HandshakeStep::Done(c2)) => {
                    out.extend_from_slice(&c2);
                    self.encoder
                        .write_set_chunk_size(self.chunk_size, &mut out)?;
                    let object = Amf0Value::object([
                        ("app", Amf0Value::from(self.app.as_str())),
                        ("type", "nonprivate".into()),
                        ("flashVer", "FMLE/3.0 (compatible; ferrocast)".into()),
                        ("tcUrl", self.tc_url.as_str().into()),
                    ]);
                    self.command(&mut out, 0, &["connect".into(), TXN_CONNECT.into(), object])?;
                }
            }
        }
        while let Some(m) = self.decoder.feed(&mut self.input)? {
            self.on_message(&m, &mut out, &mut events)?;
        }
        if !out.is_empty() {
            events.insert(0, ClientEvent::Send(out.freeze()));
        }
        Ok(events)
    }

    /// An `@setDataFrame onMetaData` message with `props`.
    pub fn send_metadata(&mut self, props: Vec<(String, Amf0Value)>) -> Result<Bytes> {
        let body = amf0::encode_all(&[
            "@setDataFrame".into(),
            "onMetaData".into(),
            Amf0Value::EcmaArray(props),
        ]);
        self.message(DATA_CSID, msg_type::DATA_AMF0, 0, body.freeze())
    }

    /// One video message (an FLV video tag body).
    pub fn send_video(&mut self, timestamp: u32, data: Bytes) -> Result<Bytes> {
        self.message(VIDEO_CSID, msg_type::VIDEO, timestamp, data)
    }

    /// One audio message (an FLV audio tag body).
    pub fn send_audio(&mut self, timestamp: u32, data: Bytes) -> Result<Bytes> {
        self.message(AUDIO_CSID, msg_type::AUDIO, timestamp, data)
    }

    /// `FCUnpublish` and `deleteStream`, as ffmpeg sends them when it stops.
    pub fn unpublish(&mut self) -> Result<Bytes> {
        let mut out = BytesMut::new();
        let key = self.stream_key.as_str().into();
        self.command(
            &mut out,
            0,
            &["FCUnpublish".into(), 6.0.into(), Amf0Value::Null, key],
        )?;
        let id = f64::from(self.stream_id).into();
        self.command(
            &mut out,
            0,
            &["deleteStream".into(), 7.0.into(), Amf0Value::Null, id],
        )?;
        self.publishing = false;
        Ok(out.freeze())
    }

    fn message(&mut self, csid: u32, type_id: u8, timestamp: u32, payload: Bytes) -> Result<Bytes> {
        let mut out = BytesMut::new();
        self.encoder.write(
            &Message {
                csid,
                timestamp,
                type_id,
                stream_id: self.stream_id,
                payload,
            },
            &mut out,
        )?;
        Ok(out.freeze())
    }

    fn command(&mut self, out: &mut BytesMut, stream_id: u32, values: &[Amf0Value]) -> Result<()> {
        self.encoder.write(
            &Message {
                csid: COMMAND_CSID,
                timestamp: 0,
                type_id: msg_type::COMMAND_AMF0,
                stream_id,
                payload: amf0::encode_all(values).freeze(),
            },
            out,
        )
    }

    fn on_message(
        &mut self,
        m: &Message,
        out: &mut BytesMut,
        events: &mut Vec<ClientEvent>,
    ) -> Result<()> {
        match m.type_id {
            msg_type::USER_CONTROL => {
                let event = m.payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
                if event == Some(user_control::PING_REQUEST) {
                    let value = m.payload.get(2..).and_then(read_u32).unwrap_or(0);
                    let pong = Message::user_control(user_control::PING_RESPONSE, value);
                    self.encoder.write(&pong, out)?;
                }
            }
            msg_type::COMMAND_AMF0 => self.on_command(m, out, events)?,
            _ => {}
        }
        Ok(())
    }

    fn on_command(
        &mut self,
        m: &Message,
        out: &mut BytesMut,
        events: &mut Vec<ClientEvent>,
    ) -> Result<()> {
        let values = amf0::decode_all(&m.payload)?;
        let name = values.first().and_then(Amf0Value::as_str).unwrap_or("");
        let txn = values.get(1).and_then(Amf0Value::as_f64).unwrap_or(0.0);
        let info = values.get(3);
        let field = |key: &str| {
            info.and_then(|i| i.get(key))
                .and_then(Amf0Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        match name {
            "_result" if txn == TXN_CONNECT => {
                events.push(ClientEvent::Connected);
                let key: Amf0Value = self.stream_key.as_str().into();
                for (i, command) in ["releaseStream", "FCPublish"].into_iter().enumerate() {
                    let txn = 2.0 + i as f64;
                    let values = [command.into(), txn.into(), Amf0Value::Null, key.clone()];
                    self.command(out, 0, &values)?;
                }
                let values = [
                    "createStream".into(),
                    TXN_CREATE_STREAM.into(),
                    Amf0Value::Null,
                ];
                self.command(out, 0, &values)?;
            }
            "_result" if txn == TXN_CREATE_STREAM => {
                let id = info
                    .and_then(Amf0Value::as_f64)
                    .filter(|id| *id >= 0.0 && *id <= f64::from(u32::MAX))
                    .ok_or_else(|| Error::Command {
                        command: "createStream".into(),
                        reason: "result without a stream id",
                    })?;
                self.stream_id = id as u32;
                let values = [
                    "publish".into(),
                    TXN_PUBLISH.into(),
                    Amf0Value::Null,
                    self.stream_key.as_str().into(),
                    "live".into(),
                ];
                self.command(out, self.stream_id, &values)?;
            }
            "_error" if txn == TXN_CONNECT => events.push(ClientEvent::Rejected {
                code: field("code"),
                description: field("description"),
            }),
            "onStatus" => {
                if field("level") == "error" {
                    self.publishing = false;
                    events.push(ClientEvent::Rejected {
                        code: field("code"),
                        description: field("description"),
                    });
                } else if field("code") == "NetStream.Publish.Start" {
                    self.publishing = true;
                    events.push(ClientEvent::Publishing);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtmp::session::{Session, SessionConfig, SessionEvent};

    /// Shuttles bytes between a client and a session until both are quiet, delivering
    /// each direction in pieces of at most `piece` bytes. `decide` answers a publish
    /// request. Returns the session's events (without `Send`) and the client's.
    fn pump(
        client: &mut ClientSession,
        session: &mut Session,
        mut to_server: Vec<u8>,
        piece: usize,
        accept: bool,
    ) -> (Vec<SessionEvent>, Vec<ClientEvent>) {
        let mut server_events = Vec::new();
        let mut client_events = Vec::new();
        let mut to_client = Vec::new();
        loop {
            if to_server.is_empty() && to_client.is_empty() {
                break;
            }
            for part in std::mem::take(&mut to_server).chunks(piece) {
                for e in session.handle_input(part).unwrap() {
                    match e {
                        SessionEvent::Send(b) => to_client.extend_from_slice(&b),
                        SessionEvent::PublishRequested { .. } => {
                            server_events.push(e);
                            if accept {
                                to_client.extend_from_slice(&session.accept_publish().unwrap());
                                for e in session.handle_input(&[]).unwrap() {
                                    server_events.push(e);
                                }
                            } else {
                                to_client.extend_from_slice(&session.reject_publish("key unknown"));
                            }
                        }
                        other => server_events.push(other),
                    }
                }
            }
            for part in std::mem::take(&mut to_client).chunks(piece) {
                for e in client.handle_input(part).unwrap() {
                    match e {
                        ClientEvent::Send(b) => to_server.extend_from_slice(&b),
                        other => client_events.push(other),
                    }
                }
            }
        }
        (server_events, client_events)
    }

    fn video(len: usize, seed: u8) -> Bytes {
        (0..len)
            .map(|i| (i as u8) ^ seed)
            .collect::<Vec<u8>>()
            .into()
    }

    #[test]
    fn publish_through_a_session_in_memory() {
        for piece in [1, 3, 100, 1500, usize::MAX] {
            let mut client = ClientSession::new("live", "rtmp://localhost/live", "alice?token=1")
                .with_chunk_size(1000);
            let config = SessionConfig {
                chunk_size: 300,
                window_ack_size: 50_000,
                ..SessionConfig::default()
            };
            let mut session = Session::new(config);
            let c0c1 = client.start().unwrap().to_vec();
            let (server, client_events) = pump(&mut client, &mut session, c0c1, piece, true);
            assert_eq!(
                server,
                vec![
                    SessionEvent::Connect {
                        app: "live".into(),
                        tc_url: Some("rtmp://localhost/live".into())
                    },
                    SessionEvent::PublishRequested {
                        app: "live".into(),
                        key: "alice".into(),
                        query: Some("token=1".into())
                    },
                ],
                "piece {piece}"
            );
            assert_eq!(
                client_events,
                vec![ClientEvent::Connected, ClientEvent::Publishing]
            );
            assert!(client.is_publishing() && session.is_publishing());
            assert_eq!(client.stream_id(), 1);

            // Media, with timestamps around the 24-bit extended boundary and a frame
            // spanning many chunks.
            let props = vec![("width".to_owned(), Amf0Value::Number(1280.0))];
            let mut stream = client.send_metadata(props.clone()).unwrap().to_vec();
            let mut want = vec![SessionEvent::Metadata(props)];
            for (i, ts) in [0u32, 33, 0xFF_FFFE, 0xFF_FFFF, 0x100_0000, u32::MAX]
                .into_iter()
                .enumerate()
            {
                let v = video(100 + i * 20_000, i as u8);
                stream.extend_from_slice(&client.send_video(ts, v.clone()).unwrap());
                want.push(SessionEvent::Video {
                    timestamp: ts,
                    data: v,
                });
                let a = video(7, 0xA0 + i as u8);
                stream
                    .extend_from_slice(&client.send_audio(ts.wrapping_add(1), a.clone()).unwrap());
                want.push(SessionEvent::Audio {
                    timestamp: ts.wrapping_add(1),
                    data: a,
                });
            }
            // Empty media is skipped.
            stream.extend_from_slice(&client.send_audio(5, Bytes::new()).unwrap());
            stream.extend_from_slice(&client.unpublish().unwrap());
            want.push(SessionEvent::Unpublished);
            let (server, client_events) = pump(&mut client, &mut session, stream, piece, true);
            assert_eq!(server, want, "piece {piece}");
            assert!(client_events.is_empty());
            assert!(!session.is_publishing());
        }
    }

    #[test]
    fn rejected_publish_reaches_the_client() {
        let mut client = ClientSession::new("live", "rtmp://h/live", "bad");
        let mut session = Session::new(SessionConfig::default());
        let c0c1 = client.start().unwrap().to_vec();
        let (server, client_events) = pump(&mut client, &mut session, c0c1, usize::MAX, false);
        assert!(
            matches!(server.last(), Some(SessionEvent::PublishRequested { key, .. }) if key == "bad")
        );
        assert_eq!(
            client_events,
            vec![
                ClientEvent::Connected,
                ClientEvent::Rejected {
                    code: "NetStream.Publish.BadName".into(),
                    description: "key unknown".into()
                }
            ]
        );
        assert!(!client.is_publishing() && !session.is_publishing());
        // Media after a rejection is dropped, not an error.
        let v = client.send_video(0, video(10, 1)).unwrap();
        assert_eq!(session.handle_input(&v).unwrap(), vec![]);
    }

    #[test]
    fn media_before_publish_is_a_protocol_error() {
        let mut client = ClientSession::new("live", "rtmp://h/live", "k");
        let mut session = Session::new(SessionConfig::default());
        let mut to_client = BytesMut::new();
        for e in session.handle_input(&client.start().unwrap()).unwrap() {
            if let SessionEvent::Send(b) = e {
                to_client.extend_from_slice(&b);
            }
        }
        // Handshake done, connect sent: the server has not seen publish yet.
        let mut to_server = BytesMut::new();
        for e in client.handle_input(&to_client).unwrap() {
            if let ClientEvent::Send(b) = e {
                to_server.extend_from_slice(&b);
            }
        }
        to_server.extend_from_slice(&client.send_video(0, video(10, 1)).unwrap());
        match session.handle_input(&to_server) {
            Err(Error::UnexpectedMessage { message_type, .. }) => assert_eq!(message_type, 9),
            other => panic!("{other:?}"),
        }
    }
}
