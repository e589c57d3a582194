//! Real GStreamer sources for the ladder tests, and a reader of rung streams.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use media::hub::{Hub, HubConfig, Publisher, PublisherInfo, rung_stream_name};
use media::{Codec, Frame, StreamEvent, TrackInfo};

/// A source encoded by x264 through GStreamer: its video track and frames (decode order).
pub struct Source {
    pub track: TrackInfo,
    pub frames: Vec<Frame>,
}

/// Encodes `seconds` of `videotestsrc pattern` at `width`x`height`@`fps`, with a
/// keyframe every `gop` frames and `bframes` B-frames, into hub frames.
#[allow(clippy::too_many_arguments)] // a test source is all of these knobs
pub fn encode_source(
    pattern: &str,
    width: u32,
    height: u32,
    fps: u32,
    seconds: u32,
    gop: u32,
    bframes: u32,
    kbps: u32,
) -> Source {
    gst::init().unwrap();
    let launch = format!(
        "videotestsrc pattern={pattern} num-buffers={n} ! \
         video/x-raw,width={width},height={height},framerate={fps}/1,format=I420 ! \
         x264enc speed-preset=ultrafast key-int-max={gop} bframes={bframes} bitrate={kbps} \
         option-string=scenecut=0 ! h264parse ! \
         video/x-h264,stream-format=avc,alignment=au ! appsink name=out sync=false",
        n = fps * seconds
    );
    let pipeline = gst::parse::launch(&launch)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = pipeline
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = Vec::new();
    let mut codec = None;
    let start = SystemTime::now();
    while let Ok(sample) = sink.pull_sample() {
        if codec.is_none() {
            let cd = sample
                .caps()
                .unwrap()
                .structure(0)
                .unwrap()
                .get::<gst::Buffer>("codec_data")
                .unwrap();
            let bytes = Bytes::copy_from_slice(cd.map_readable().unwrap().as_slice());
            codec = Some(Codec::h264(bytes).unwrap());
        }
        let b = sample.buffer().unwrap();
        let ticks = |t: gst::ClockTime| (t.nseconds() as i128 * 90_000 / 1_000_000_000) as i64;
        let pts = ticks(b.pts().unwrap());
        let dts = b.dts().map(ticks).unwrap_or(pts);
        frames.push(Frame {
            track: 0,
            pts,
            dts,
            keyframe: !b.flags().contains(gst::BufferFlags::DELTA_UNIT),
            data: Bytes::copy_from_slice(b.map_readable().unwrap().as_slice()),
            // Distinct per frame, so a rung frame's `received` names its source frame.
            received: start + Duration::from_millis(frames.len() as u64),
        });
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(
        frames.len() as u32,
        fps * seconds,
        "source encoder lost frames"
    );
    Source {
        track: TrackInfo {
            id: 0,
            codec: codec.unwrap(),
            timescale: 90_000,
        },
        frames,
    }
}

/// A hub whose queues never drop in these tests (the source is pushed at full speed).
pub fn hub() -> Hub {
    Hub::new(HubConfig {
        subscriber_queue_frames: 1 << 20,
        gop_cache_max_frames: 1 << 20,
        gop_cache_max_bytes: 1 << 30,
        ..HubConfig::default()
    })
}

pub fn publish(hub: &Hub, name: &str) -> Publisher {
    hub.publish(
        name,
        PublisherInfo {
            protocol: "test",
            peer: SocketAddr::from((Ipv4Addr::LOCALHOST, 1)),
        },
    )
    .unwrap()
}

/// Polls (bounded) until `cond` holds.
pub async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Everything a rung stream carried until its End (or `timeout`).
pub async fn read_until_end(
    hub: &Hub,
    source: &str,
    rung: &str,
    timeout: Duration,
) -> Vec<StreamEvent> {
    let name = rung_stream_name(source, rung);
    let mut sub = hub.subscribe(&name).expect("rung stream published");
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, sub.recv()).await {
            Ok(Some(StreamEvent::End)) | Ok(None) => {
                out.push(StreamEvent::End);
                return out;
            }
            Ok(Some(ev)) => out.push(ev),
            Err(_) => panic!("{name}: no End within {timeout:?} ({} events)", out.len()),
        }
    }
}

pub fn frames(events: &[StreamEvent]) -> Vec<&Frame> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Frame(f) => Some(f),
            _ => None,
        })
        .collect()
}

/// The codecs of the Tracks events, in order.
pub fn codecs(events: &[StreamEvent]) -> Vec<Codec> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Tracks(t) => {
                assert_eq!(t.len(), 1, "a rung has one video track");
                assert_eq!(t[0].id, 0);
                assert_eq!(t[0].timescale, 90_000);
                Some(t[0].codec.clone())
            }
            _ => None,
        })
        .collect()
}

/// The decoded size of a rung's frames, from the SPS inside its avcC.
pub fn sps_size(codec: &Codec) -> (u32, u32) {
    let Codec::H264 { avcc, .. } = codec else {
        panic!("rung codec is not H.264: {codec:?}")
    };
    let sps = media::h264::AvcConfig::parse(avcc)
        .unwrap()
        .first_sps()
        .unwrap();
    (sps.width, sps.height)
}

/// Source pts -> received, to check a rung frame names its source picture.
pub fn received_by_pts(src: &Source) -> HashMap<i64, SystemTime> {
    src.frames.iter().map(|f| (f.pts, f.received)).collect()
}
