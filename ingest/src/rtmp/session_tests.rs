//! Tests of [`super`]: the command flow with a raw publisher, and replays of byte
//! streams captured from ffmpeg and GStreamer.
use super::*;
use crate::rtmp::chunk::user_control::{PING_REQUEST, PING_RESPONSE, STREAM_BEGIN};
use crate::rtmp::handshake::HANDSHAKE_SIZE;

/// C0, C1 and C2 of a client (contents are not checked).
fn handshake() -> Vec<u8> {
    let mut v = vec![3u8];
    v.resize(1 + 2 * HANDSHAKE_SIZE, 0x5A);
    v
}

/// A raw publisher: any message, in any order.
struct Raw(ChunkEncoder);

impl Raw {
    fn message(&self, type_id: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
        let m = Message {
            csid: 3,
            timestamp: 0,
            type_id,
            stream_id,
            payload: Bytes::copy_from_slice(payload),
        };
        let mut out = BytesMut::new();
        self.0.write(&m, &mut out).unwrap();
        out.to_vec()
    }

    fn command(&self, stream_id: u32, values: &[Amf0Value]) -> Vec<u8> {
        self.message(msg_type::COMMAND_AMF0, stream_id, &amf0::encode_all(values))
    }
}

fn connect(txn: f64) -> Vec<Amf0Value> {
    let object = Amf0Value::object([
        ("app", Amf0Value::from("live/")),
        ("tcUrl", "rtmp://h/live/".into()),
        ("objectEncoding", 3.0.into()),
    ]);
    vec!["connect".into(), txn.into(), object]
}

/// Everything the session asked to send, decoded as messages (after S0 S1 S2 when
/// `skip_handshake`).
fn sent(events: &[SessionEvent], decoder: &mut ChunkDecoder, skip: bool) -> Vec<Message> {
    let mut bytes = BytesMut::new();
    for e in events {
        if let SessionEvent::Send(b) = e {
            bytes.extend_from_slice(b);
        }
    }
    if skip {
        let _ = bytes.split_to(1 + 2 * HANDSHAKE_SIZE);
    }
    let mut out = Vec::new();
    while let Some(m) = decoder.feed(&mut bytes).unwrap() {
        out.push(m);
    }
    assert!(bytes.is_empty());
    out
}

fn values(m: &Message) -> Vec<Amf0Value> {
    assert_eq!(m.type_id, msg_type::COMMAND_AMF0);
    amf0::decode_all(&m.payload).unwrap()
}

fn connected() -> (Session, Raw, ChunkDecoder) {
    let mut session = Session::new(SessionConfig::default());
    let mut input = handshake();
    let raw = Raw(ChunkEncoder::new());
    input.extend(raw.command(0, &connect(1.0)));
    let events = session.handle_input(&input).unwrap();
    let mut decoder = ChunkDecoder::new(1 << 20);
    sent(&events, &mut decoder, true);
    (session, raw, decoder)
}

#[test]
fn connect_is_answered_like_a_media_server() {
    let mut session = Session::new(SessionConfig::default());
    let raw = Raw(ChunkEncoder::new());
    let mut input = handshake();
    input.extend(raw.command(0, &connect(1.0)));
    let events = session.handle_input(&input).unwrap();
    assert!(events.contains(&SessionEvent::Connect {
        app: "live".into(),
        tc_url: Some("rtmp://h/live/".into())
    }));
    assert_eq!(session.app(), Some("live"));
    let mut decoder = ChunkDecoder::new(1 << 20);
    let m = sent(&events, &mut decoder, true);
    assert_eq!(m.len(), 5);
    assert_eq!(
        (m[0].type_id, read_u32(&m[0].payload)),
        (5, Some(2_500_000))
    );
    assert_eq!(m[1].type_id, msg_type::SET_PEER_BANDWIDTH);
    assert_eq!(&m[1].payload[..], &[0x00, 0x26, 0x25, 0xA0, 2]);
    assert_eq!((m[2].type_id, read_u32(&m[2].payload)), (1, Some(4096)));
    assert_eq!(decoder.chunk_size(), 4096);
    assert_eq!(&m[3].payload[..], &[0, 0, 0, 0, 0, 0]);
    let r = values(&m[4]);
    assert_eq!(r[0].as_str(), Some("_result"));
    assert_eq!(r[1].as_f64(), Some(1.0));
    assert!(r[2].get("fmsVer").and_then(Amf0Value::as_str).is_some());
    assert_eq!(
        r[2].get("capabilities").and_then(Amf0Value::as_f64),
        Some(31.0)
    );
    let code = r[3].get("code").and_then(Amf0Value::as_str);
    assert_eq!(code, Some("NetConnection.Connect.Success"));
    assert_eq!(
        r[3].get("objectEncoding").and_then(Amf0Value::as_f64),
        Some(3.0)
    );
    assert_eq!(session.bytes_received(), input.len() as u64);
    // A second connect is a protocol error.
    assert!(
        session
            .handle_input(&raw.command(0, &connect(2.0)))
            .is_err()
    );
}

#[test]
fn commands_get_their_replies() {
    let (mut session, raw, mut decoder) = connected();
    let null = Amf0Value::Null;
    let mut input = Vec::new();
    for (name, txn) in [
        ("releaseStream", 2.0),
        ("FCPublish", 3.0),
        ("createStream", 4.0),
        ("getStreamLength", 5.0),
        ("_checkbw", 6.0),
        ("noSuchCommand", 7.0),
        ("noSuchCommand", 0.0),
        ("releaseStream", 0.0),
    ] {
        let key = Amf0Value::from("k");
        input.extend(raw.command(0, &[name.into(), txn.into(), null.clone(), key]));
    }
    // An AMF3 command message: a 0 byte, then AMF0.
    let mut amf3 = vec![0u8];
    amf3.extend_from_slice(&amf0::encode_all(&[
        "createStream".into(),
        8.0.into(),
        null,
    ]));
    input.extend(raw.message(msg_type::COMMAND_AMF3, 0, &amf3));
    let events = session.handle_input(&input).unwrap();
    let replies: Vec<Vec<Amf0Value>> = sent(&events, &mut decoder, false)
        .iter()
        .map(values)
        .collect();
    let summary: Vec<(&str, f64)> = replies
        .iter()
        .map(|r| (r[0].as_str().unwrap(), r[1].as_f64().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("_result", 2.0),
            ("_result", 3.0),
            ("_result", 4.0),
            ("_result", 5.0),
            ("_result", 6.0),
            ("_error", 7.0),
            ("_result", 8.0)
        ]
    );
    assert_eq!(replies[2][3], Amf0Value::Number(1.0), "first stream id");
    assert_eq!(replies[6][3], Amf0Value::Number(2.0), "second stream id");
    let code = replies[5][3].get("code").and_then(Amf0Value::as_str);
    assert_eq!(code, Some("NetConnection.Call.Failed"));
}

#[test]
fn publish_waits_for_the_decision_and_buffers_media() {
    let (mut session, raw, mut decoder) = connected();
    let mut input = raw.command(0, &["createStream".into(), 2.0.into(), Amf0Value::Null]);
    let publish = [
        "publish".into(),
        0.0.into(),
        Amf0Value::Null,
        "cam".into(),
        "live".into(),
    ];
    input.extend(raw.command(1, &publish));
    // A pipelining client sends media right behind publish.
    input.extend(raw.message(msg_type::VIDEO, 1, &[0x17, 0, 0, 0, 0]));
    input.extend(raw.message(msg_type::VIDEO, 1, &[]));
    input.extend(raw.command(1, &["closeStream".into(), 0.0.into(), Amf0Value::Null]));
    let events = session.handle_input(&input).unwrap();
    assert!(events.contains(&SessionEvent::PublishRequested {
        app: "live".into(),
        key: "cam".into(),
        query: None
    }));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, SessionEvent::Video { .. }))
    );
    sent(&events, &mut decoder, false);
    let mut accepted = BytesMut::from(&session.accept_publish().unwrap()[..]);
    assert!(session.accept_publish().is_err(), "decided twice");
    let begin = decoder.feed(&mut accepted).unwrap().unwrap();
    assert_eq!(read_u32(&begin.payload[2..]), Some(1));
    assert_eq!(begin.payload[..2], STREAM_BEGIN.to_be_bytes());
    let status = values(&decoder.feed(&mut accepted).unwrap().unwrap());
    assert_eq!(status[0].as_str(), Some("onStatus"));
    let code = status[3].get("code").and_then(Amf0Value::as_str);
    assert_eq!(code, Some("NetStream.Publish.Start"));
    let events = session.handle_input(&[]).unwrap();
    assert_eq!(
        events,
        vec![
            SessionEvent::Video {
                timestamp: 0,
                data: Bytes::from_static(&[0x17, 0, 0, 0, 0])
            },
            SessionEvent::Unpublished
        ]
    );
    // deleteStream of the ended stream does not end it twice.
    let delete = raw.command(
        0,
        &[
            "deleteStream".into(),
            0.0.into(),
            Amf0Value::Null,
            1.0.into(),
        ],
    );
    assert_eq!(session.handle_input(&delete).unwrap(), vec![]);
}

#[test]
fn pings_are_answered_and_bytes_acknowledged() {
    let config = SessionConfig {
        window_ack_size: 10_000,
        ..SessionConfig::default()
    };
    let mut session = Session::new(config);
    let raw = Raw(ChunkEncoder::new());
    let mut input = handshake();
    input.extend(raw.command(0, &connect(1.0)));
    let mut decoder = ChunkDecoder::new(1 << 20);
    sent(&session.handle_input(&input).unwrap(), &mut decoder, true);
    let mut ping = PING_REQUEST.to_be_bytes().to_vec();
    ping.extend_from_slice(&0xDEAD_BEEFu32.to_be_bytes());
    let m = sent(
        &session.handle_input(&raw.message(4, 0, &ping)).unwrap(),
        &mut decoder,
        false,
    );
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].payload[..2], PING_RESPONSE.to_be_bytes());
    assert_eq!(read_u32(&m[0].payload[2..]), Some(0xDEAD_BEEF));
    // Unknown message types (shared objects here) are ignored; their bytes count.
    let mut acks = Vec::new();
    for _ in 0..10 {
        let events = session
            .handle_input(&raw.message(19, 0, &[0; 2000]))
            .unwrap();
        acks.extend(sent(&events, &mut decoder, false));
    }
    assert_eq!(acks.len(), 2, "about 23 kB received, window 10 kB");
    let total = session.bytes_received();
    for a in &acks {
        assert_eq!(a.type_id, msg_type::ACKNOWLEDGEMENT);
        let seq = u64::from(read_u32(&a.payload).unwrap());
        assert!(seq >= 10_000 && seq <= total);
    }
}

#[test]
fn peers_that_skip_steps_are_refused() {
    let mut session = Session::new(SessionConfig::default());
    assert!(matches!(
        session.handle_input(b"GET / HTTP/1.1\r\n"),
        Err(Error::HandshakeVersion { version: b'G' })
    ));
    let raw = Raw(ChunkEncoder::new());
    let mut session = Session::new(SessionConfig::default());
    let mut input = handshake();
    input.extend(raw.command(0, &["createStream".into(), 2.0.into(), Amf0Value::Null]));
    assert!(matches!(
        session.handle_input(&input),
        Err(Error::Command {
            reason: "command before connect",
            ..
        })
    ));
    let (mut session, raw, _) = connected();
    let publish = ["publish".into(), 0.0.into(), Amf0Value::Null];
    assert!(
        session.handle_input(&raw.command(1, &publish)).is_err(),
        "no name"
    );
    let (mut session, raw, _) = connected();
    let audio = raw.message(msg_type::AUDIO, 1, &[0xAF, 1, 2]);
    assert!(matches!(
        session.handle_input(&audio),
        Err(Error::UnexpectedMessage {
            message_type: 8,
            stream_id: 1,
            ..
        })
    ));
    let (mut session, raw, _) = connected();
    assert!(matches!(
        session.handle_input(&raw.message(msg_type::COMMAND_AMF0, 0, &[0x02, 0, 9, b'x'])),
        Err(Error::Amf0 { .. })
    ));
}

/// Replays a captured publisher byte stream through a session, delivered in pieces
/// cut at `cuts`, accepting the publish. Returns every event but `Send`.
fn replay(capture: &[u8], cuts: &[usize]) -> Vec<SessionEvent> {
    let mut session = Session::new(SessionConfig::default());
    let mut events = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&capture.len())) {
        let mut batch = session.handle_input(&capture[start..end]).unwrap();
        start = end;
        while let Some(i) = batch
            .iter()
            .position(|e| matches!(e, SessionEvent::PublishRequested { .. }))
        {
            let rest = batch.split_off(i + 1);
            events.extend(batch);
            session.accept_publish().unwrap();
            batch = session.handle_input(&[]).unwrap();
            batch.extend(rest);
        }
        events.extend(batch);
    }
    events.retain(|e| !matches!(e, SessionEvent::Send(_)));
    events
}

/// Cut points: every offset through the command exchange, then a spread.
fn cut_sets(len: usize) -> Vec<Vec<usize>> {
    let mut sets: Vec<Vec<usize>> = (0..4_000.min(len)).map(|i| vec![i]).collect();
    sets.extend((0..len).step_by(997).map(|i| vec![i]));
    for piece in [1usize, 7, 128, 1460, 4096] {
        sets.push((piece..len).step_by(piece).collect());
    }
    sets
}

fn check_capture(capture: &[u8], key: &str, frames: usize) {
    let events = replay(capture, &[]);
    assert_eq!(
        events[0],
        SessionEvent::Connect {
            app: "live".into(),
            tc_url: Some(format!("rtmp://127.0.0.1:{}/live", tc_port(&events)))
        }
    );
    assert_eq!(
        events[1],
        SessionEvent::PublishRequested {
            app: "live".into(),
            key: key.into(),
            query: None
        }
    );
    let SessionEvent::Metadata(props) = &events[2] else {
        panic!("no metadata: {:?}", events[2]);
    };
    let width = props
        .iter()
        .find(|(k, _)| k == "width")
        .and_then(|(_, v)| v.as_f64());
    assert_eq!(width, Some(320.0));
    let video: Vec<(u32, &Bytes)> = events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Video { timestamp, data } => Some((*timestamp, data)),
            _ => None,
        })
        .collect();
    // An AVC sequence header, one NALU message per encoded frame, and the
    // end-of-sequence message both muxers write when they stop.
    let kinds: Vec<u8> = video.iter().map(|(_, d)| d[1]).collect();
    let mut want = vec![0u8];
    want.extend(std::iter::repeat_n(1, frames));
    want.push(2);
    assert_eq!(kinds, want, "AVC packet types");
    assert_eq!(video[0].1[0], 0x17, "keyframe, AVC");
    assert!(
        video.windows(2).all(|w| w[0].0 <= w[1].0),
        "timestamps ordered"
    );
    assert_eq!(events.last(), Some(&SessionEvent::Unpublished));
    for cuts in cut_sets(capture.len()) {
        assert!(
            replay(capture, &cuts) == events,
            "cuts {:?}",
            &cuts[..cuts.len().min(3)]
        );
    }
}

/// The port the capture was taken on, as the client reported it in tcUrl.
fn tc_port(events: &[SessionEvent]) -> String {
    match &events[0] {
        SessionEvent::Connect {
            tc_url: Some(url), ..
        } => url
            .trim_start_matches("rtmp://127.0.0.1:")
            .trim_end_matches("/live")
            .to_owned(),
        other => panic!("{other:?}"),
    }
}

/// `ffmpeg -re -f lavfi -i testsrc2 -t 2 -c:v libx264 -f flv rtmp://.../live/test`
/// (see `capture_ffmpeg`): 2 s at 25 fps = 50 frames.
#[test]
fn ffmpeg_capture_replays() {
    check_capture(
        include_bytes!("../../testdata/ffmpeg_publish.bin"),
        "test",
        50,
    );
}

/// `gst-launch-1.0 videotestsrc num-buffers=30 ! x264enc ! flvmux streamable=true !
/// rtmp2sink location=rtmp://.../live/gst` (see `capture_gst`): 30 frames.
#[test]
fn gstreamer_capture_replays() {
    check_capture(include_bytes!("../../testdata/gst_publish.bin"), "gst", 30);
}

/// Runs a real publisher against a session on a socket and saves what it sent to
/// `testdata/NAME`. Run with `cargo test -p ingest -- --ignored capture_`.
fn capture(name: &str, command: impl FnOnce(u16) -> std::process::Command) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut child = command(port).spawn().unwrap();
    let (mut socket, _) = listener.accept().unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut session = Session::new(SessionConfig::default());
    let mut captured = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match socket.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        captured.extend_from_slice(&buf[..n]);
        let mut events = session.handle_input(&buf[..n]).unwrap();
        while let Some(e) = (!events.is_empty()).then(|| events.remove(0)) {
            match e {
                SessionEvent::Send(b) => socket.write_all(&b).unwrap(),
                SessionEvent::PublishRequested { .. } => {
                    socket
                        .write_all(&session.accept_publish().unwrap())
                        .unwrap();
                    events.extend(session.handle_input(&[]).unwrap());
                }
                _ => {}
            }
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &captured).unwrap();
}

#[test]
#[ignore = "needs ffmpeg; regenerates testdata/ffmpeg_publish.bin"]
fn capture_ffmpeg() {
    capture("ffmpeg_publish.bin", |port| {
        let mut c = std::process::Command::new("ffmpeg");
        c.args([
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
        ])
        .args(["-t", "2", "-c:v", "libx264", "-b:v", "300k", "-f", "flv"])
        .arg(format!("rtmp://127.0.0.1:{port}/live/test"));
        c
    });
}

#[test]
#[ignore = "needs gst-launch-1.0; regenerates testdata/gst_publish.bin"]
fn capture_gst() {
    capture("gst_publish.bin", |port| {
        let mut c = std::process::Command::new("gst-launch-1.0");
        c.args(["-q", "videotestsrc", "num-buffers=30", "!"])
            .args([
                "video/x-raw,width=320,height=240",
                "!",
                "x264enc",
                "bitrate=300",
                "!",
            ])
            .args(["flvmux", "streamable=true", "!", "rtmp2sink"])
            .arg(format!("location=rtmp://127.0.0.1:{port}/live/gst"));
        c
    });
}
