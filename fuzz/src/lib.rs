//! Bodies of the fuzz targets, as ordinary functions: `fuzz_targets/*.rs` wrap them for
//! libFuzzer, and the tests below run them on seeds with a stable toolchain.
#![forbid(unsafe_code, clippy::print_stdout, clippy::print_stderr)]

use ingest::mpegts::{EsFrames, TsDemuxer, TsEvent};
use ingest::rtmp::amf0;
use ingest::rtmp::chunk::ChunkDecoder;
use ingest::rtmp::flv::{AudioTag, VideoTag};
use ingest::rtmp::handshake::HANDSHAKE_SIZE;
use ingest::rtmp::session::{Session, SessionConfig, SessionEvent};

/// Largest message the fuzzed decoders accept: small, so that the allocation bound is
/// checked often.
const MAX_MESSAGE: u32 = 64 * 1024;

/// Arbitrary bytes as a chunk stream: through a bare [`ChunkDecoder`], and through a
/// server [`Session`] after a well-formed handshake, both split at a point the input
/// chooses.
pub fn rtmp_chunk(data: &[u8]) {
    let split = data
        .first()
        .map_or(0, |&b| usize::from(b) * data.len() / 256);
    let (a, b) = data.split_at(split);

    let mut decoder = ChunkDecoder::new(MAX_MESSAGE);
    let mut buf = bytes::BytesMut::new();
    'feed: for part in [a, b] {
        buf.extend_from_slice(part);
        loop {
            match decoder.feed(&mut buf) {
                Ok(Some(m)) => assert!(m.payload.len() <= MAX_MESSAGE as usize),
                Ok(None) => break,
                Err(_) => break 'feed,
            }
            assert!(decoder.buffered_capacity() <= 4 * MAX_MESSAGE as usize);
        }
    }

    session_media(a, b);
}

/// Runs `a` then `b` through a server session after a handshake, accepting every
/// publish; returns how many audio and video messages came out before the end or an
/// error.
fn session_media(a: &[u8], b: &[u8]) -> usize {
    let config = SessionConfig {
        max_message_size: MAX_MESSAGE,
        ..SessionConfig::default()
    };
    let mut session = Session::new(config);
    let mut handshake = vec![3u8];
    handshake.resize(1 + 2 * HANDSHAKE_SIZE, 0);
    let mut media = 0;
    for part in [&handshake[..], a, b] {
        match feed_session(&mut session, part) {
            Ok(n) => media += n,
            Err(_) => break,
        }
    }
    media
}

/// Feeds a session, accepting every publish request; counts media events.
fn feed_session(session: &mut Session, input: &[u8]) -> ingest::Result<usize> {
    let mut media = 0;
    let mut events = session.handle_input(input)?;
    while !events.is_empty() {
        let mut again = false;
        for event in events {
            match event {
                SessionEvent::PublishRequested { .. } => {
                    session.accept_publish()?;
                    again = true;
                }
                SessionEvent::Audio { .. } | SessionEvent::Video { .. } => media += 1,
                _ => {}
            }
        }
        events = if again {
            session.handle_input(&[])?
        } else {
            Vec::new()
        };
    }
    Ok(media)
}

/// Arbitrary bytes as AMF0; what decodes must re-encode to bytes that decode to the
/// same encoding.
pub fn amf0(data: &[u8]) {
    let Ok(values) = amf0::decode_all(data) else {
        return;
    };
    let first = amf0::encode_all(&values);
    let again = amf0::decode_all(&first).expect("our own encoding decodes");
    assert_eq!(amf0::encode_all(&again), first);
}

/// Arbitrary bytes as FLV video and audio tag bodies.
pub fn flv_tag(data: &[u8]) {
    let _ = VideoTag::parse(data);
    let _ = AudioTag::parse(data);
}

/// Arbitrary bytes as an MPEG-TS byte stream, fed in pieces whose sizes the input's
/// first byte chooses, through the demuxer and the elementary-streams stage. Seeds
/// that are real transport streams (the first byte taken as 0x47) exercise PES
/// reassembly and the H.264/AAC paths; anything else the resync.
pub fn ts_demux(data: &[u8]) {
    let step = data.first().map_or(1, |&b| usize::from(b).max(1));
    let mut demux = TsDemuxer::new();
    let mut es = EsFrames::new();
    // Each piece arrives 100 ms after the previous one, so the wall-clock startup wait
    // is exercised as well.
    let mut now = std::time::SystemTime::UNIX_EPOCH;
    let mut events = Vec::new();
    for piece in data.chunks(step) {
        events.extend(demux.push(piece));
        now += std::time::Duration::from_millis(100);
        for ev in events.drain(..) {
            check_ts_event(&ev);
            check_stream_events(&es.push(ev, now));
        }
    }
    for ev in demux.flush() {
        check_ts_event(&ev);
        check_stream_events(&es.push(ev, now));
    }
    check_stream_events(&es.finish());
}

fn check_ts_event(ev: &TsEvent) {
    if let TsEvent::Pes { data, .. } = ev {
        assert!(data.len() <= ingest::mpegts::demux::MAX_PES_SIZE);
    }
}

/// Frames are well-formed: video is 4-byte length-prefixed NAL units.
fn check_stream_events(events: &[media::StreamEvent]) {
    for e in events {
        if let media::StreamEvent::Frame(f) = e
            && f.track == 0
        {
            for nal in media::nal::iter_length_prefixed(&f.data, 4) {
                assert!(nal.is_ok(), "video frame framing");
            }
        }
    }
}

/// Arbitrary bytes as an SRT stream id (what a caller sends in its handshake; srt-tokio
/// hands it over as UTF-8). A parsed target never has an empty app or key.
pub fn srt_streamid(data: &[u8]) {
    let Ok(id) = std::str::from_utf8(data) else {
        return;
    };
    match ingest::srt::streamid::parse(id) {
        Ok(target) => {
            assert!(!target.app.is_empty() && !target.key.is_empty(), "{target:?}");
            assert!(!target.app.contains('/'), "{target:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chunk stream of a real ffmpeg publish (after its handshake).
    fn ffmpeg_chunks() -> &'static [u8] {
        &include_bytes!("../../ingest/testdata/ffmpeg_publish.bin")[1 + 2 * HANDSHAKE_SIZE..]
    }

    #[test]
    fn targets_run_on_seeds() {
        let capture = ffmpeg_chunks();
        for seed in [&[][..], &[0xFF; 64], &capture[..4096], capture] {
            rtmp_chunk(seed);
            amf0(seed);
            flv_tag(seed);
        }
        // The capture, split anywhere, goes through the session whole: an AVC
        // sequence header, 50 frames and an end of sequence.
        for split in [0, 1, 1000, capture.len() / 2, capture.len()] {
            let (a, b) = capture.split_at(split);
            assert_eq!(session_media(a, b), 52, "split {split}");
        }
        // A real transport stream through the TS target, whole and with a small step.
        let ts: &[u8] = include_bytes!("../../ingest/testdata/h264_aac.ts");
        ts_demux(ts);
        let mut stepped = vec![7u8];
        stepped.extend_from_slice(&ts[1..]);
        ts_demux(&stepped);
        ts_demux(&capture[..4096]);
        let mut with_split = vec![0x80];
        with_split.extend_from_slice(capture);
        rtmp_chunk(&with_split);
        for len in 0..64.min(capture.len()) {
            amf0(&capture[12..12 + len]);
            flv_tag(&capture[..len]);
        }
        for id in ["#!::r=live/a,m=publish", "publish:live/a", "live/a", "#!::", "\u{0}"] {
            srt_streamid(id.as_bytes());
        }
        srt_streamid(capture);
    }
}
