//! One ladder's GStreamer pipeline: built from typed settings, fed source frames,
//! drained, torn down. The graph is in the crate docs.
//!
//! Timestamps: a source frame's pts/dts (90 kHz) go into appsrc as buffer timestamps in
//! nanoseconds, relative to the first frame of the build plus [`OFFSET`] (so a reordered
//! B-frame before the first keyframe's pts never goes negative). The decoder, scalers and
//! encoders keep buffer pts, so a rung frame's pts names the source picture it was made
//! from: [`Shared::lookup`] maps it back to the source pts and `received`.
//!
//! Keyframes: the ladder thread marks the pts of every source picture that must be a
//! keyframe in every rung (the source's keyframes, and one per keyframe interval when
//! the source GOP is longer). A buffer probe on each encoder's sink pad sends a
//! force-key-unit event just before the first buffer at or past a marked pts, and x264
//! (or NVENC) codes that picture as an IDR. x264's own keyframe placement is turned off
//! (no scene cut, a long `key-int-max`), so the rungs' keyframes are exactly the marks.
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use media::hub::Publisher;
use media::{Codec, Frame, StreamEvent, TrackInfo};

use crate::config::Rung;
use crate::metrics::TranscodeMetrics;
use crate::probe::{Backend, DecoderKind, EncoderKind};
use crate::{Error, Result};

/// Added to every buffer timestamp (see the module docs).
const OFFSET: u64 = 10_000_000_000;
/// Source pictures remembered for the pts lookup (about 68 s at 60 fps).
const PTS_MEMORY: usize = 4096;
/// How long a drain may take to reach EOS before the pipeline is torn down anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Consecutive decode errors a decoder tolerates before it fails the pipeline.
const DECODER_MAX_ERRORS: i32 = 2;
/// Source frames appsrc queues before a push blocks the ladder thread: small, so a
/// slow ladder backs up into the hub queue (which drops to a keyframe) and a drain has
/// little to flush.
const APPSRC_FRAMES: u64 = 8;
/// A pipeline that takes no frame from appsrc for this long has failed.
const STALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Window of the realtime-ratio gauge.
const RATIO_WINDOW: Duration = Duration::from_secs(2);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The source video a ladder is built for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SourceVideo {
    pub track: media::TrackId,
    pub codec: Codec,
}

/// A rung's publisher and what it has sent, kept across pipeline rebuilds.
pub(crate) struct RungOutput {
    pub rung: Rung,
    pub width: u32,
    pub publisher: Arc<Publisher>,
    /// The codec of the last Tracks sent (a rebuild resends Tracks only on a change).
    last_codec: Mutex<Option<Codec>>,
    /// (wall time, pts) at the start of the realtime-ratio window.
    window: Mutex<Option<(Instant, i64)>>,
}

impl RungOutput {
    pub fn new(rung: Rung, width: u32, publisher: Arc<Publisher>) -> RungOutput {
        RungOutput {
            rung,
            width,
            publisher,
            last_codec: Mutex::new(None),
            window: Mutex::new(None),
        }
    }

    /// Forgets the sent codec, so the next output resends Tracks (after a
    /// codec-change discontinuity).
    pub fn reset_tracks(&self) {
        *lock(&self.last_codec) = None;
        *lock(&self.window) = None;
    }
}

/// What a source picture was, by its buffer pts.
#[derive(Clone, Copy)]
struct SourcePicture {
    pts: i64,
    received: SystemTime,
    pushed: Instant,
}

/// State shared by the ladder thread and the streaming threads of one build.
struct Shared {
    stream: String,
    base: i64,
    pictures: Mutex<BTreeMap<u64, SourcePicture>>,
    /// Buffer pts (ns) that every rung must code as a keyframe.
    force: Mutex<BTreeSet<u64>>,
    /// Per rung, the buffer pts (ns) of its latest output (0: none yet).
    latest_out: Vec<AtomicU64>,
    metrics: Option<TranscodeMetrics>,
}

impl Shared {
    fn to_ns(&self, ts: i64) -> Option<u64> {
        let rel = i128::from(ts - self.base) * 1_000_000_000 / 90_000 + i128::from(OFFSET);
        u64::try_from(rel).ok()
    }

    fn to_ticks(&self, ns: u64) -> i64 {
        let rel = (i128::from(ns) - i128::from(OFFSET)) * 90_000;
        let rounded = if rel >= 0 {
            (rel + 500_000_000) / 1_000_000_000
        } else {
            (rel - 500_000_000) / 1_000_000_000
        };
        self.base + rounded as i64
    }

    /// The source picture of rung buffer pts `ns`: the same pts, or (when a frame-rate cap
    /// retimed it) the latest picture before it.
    fn lookup(&self, ns: u64) -> Option<SourcePicture> {
        let pictures = lock(&self.pictures);
        pictures
            .get(&ns)
            .or_else(|| pictures.range(..=ns).next_back().map(|(_, p)| p))
            .copied()
    }
}

/// A built, running pipeline.
pub(crate) struct Running {
    pipeline: gst::Pipeline,
    appsrc: gst_app::AppSrc,
    bus: gst::Bus,
    shared: Arc<Shared>,
}

/// Settings of one build.
pub(crate) struct BuildSpec<'a> {
    pub stream: &'a str,
    pub source: &'a SourceVideo,
    pub outputs: &'a [Arc<RungOutput>],
    pub backend: &'a Backend,
    pub x264_preset: &'a str,
    /// Source pts of the first frame (the keyframe the build starts at).
    pub base: i64,
    pub metrics: Option<TranscodeMetrics>,
}

fn make(factory: &str, name: &str, stream: &str) -> Result<gst::Element> {
    gst::ElementFactory::make(factory)
        .name(name)
        .build()
        .map_err(|e| Error::Build {
            stream: stream.to_owned(),
            what: format!("element {factory}"),
            message: e.to_string(),
        })
}

fn caps_filter(name: &str, caps: gst::Caps, stream: &str) -> Result<gst::Element> {
    let f = make("capsfilter", name, stream)?;
    f.set_property("caps", &caps);
    Ok(f)
}

/// Sets a property from its string form when the element has it (encoder properties
/// differ between GStreamer versions); logs the ones it skips.
fn set_str(el: &gst::Element, name: &str, value: &str) {
    if el.find_property(name).is_some() {
        el.set_property_from_str(name, value);
    } else {
        tracing::debug!(element = %el.name(), property = name, "property not supported, skipped");
    }
}

fn link(stream: &str, elements: &[&gst::Element]) -> Result<()> {
    gst::Element::link_many(elements).map_err(|e| Error::Build {
        stream: stream.to_owned(),
        what: format!(
            "linking {}",
            elements
                .iter()
                .map(|e| e.name().to_string())
                .collect::<Vec<_>>()
                .join(" ! ")
        ),
        message: e.to_string(),
    })
}

/// The raw-video caps of a rung (CUDA memory on the NVDEC path).
fn raw_caps(cuda: bool, width: u32, height: u32) -> gst::Caps {
    let b = gst::Caps::builder("video/x-raw")
        .field("width", width as i32)
        .field("height", height as i32)
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1));
    if cuda {
        b.features(["memory:CUDAMemory"]).build()
    } else {
        b.build()
    }
}

fn encoder(spec: &BuildSpec<'_>, out: &RungOutput, i: usize) -> Result<gst::Element> {
    let r = &out.rung;
    let kbps = r.video_bitrate_kbps;
    match spec.backend.encoder {
        EncoderKind::X264 => {
            let e = make("x264enc", &format!("enc{i}"), spec.stream)?;
            e.set_property_from_str("speed-preset", spec.x264_preset);
            e.set_property_from_str("tune", "zerolatency");
            e.set_property_from_str("pass", "cbr");
            e.set_property("bitrate", kbps);
            e.set_property("vbv-buf-capacity", 1000u32);
            e.set_property("bframes", 0u32);
            e.set_property("b-adapt", false);
            e.set_property("rc-lookahead", 0i32);
            // Keyframes only where the ladder forces them (see the module docs).
            e.set_property("key-int-max", 100_000u32);
            e.set_property("option-string", "scenecut=0");
            Ok(e)
        }
        EncoderKind::Nvenc => {
            let e = make("nvh264enc", &format!("enc{i}"), spec.stream)?;
            set_str(&e, "cuda-device-id", "0");
            set_str(&e, "preset", "low-latency-hq");
            set_str(&e, "rc-mode", "cbr");
            set_str(&e, "bitrate", &kbps.to_string());
            set_str(&e, "vbv-buffer-size", &kbps.to_string());
            set_str(&e, "gop-size", "-1");
            set_str(&e, "bframes", "0");
            set_str(&e, "zerolatency", "true");
            set_str(&e, "rc-lookahead", "0");
            Ok(e)
        }
    }
}

/// The downstream force-key-unit event (`gst_video_event_new_downstream_force_key_unit`
/// with every time unset: "the next picture"), built without gstreamer-video.
fn force_key_unit() -> gst::Event {
    gst::event::CustomDownstream::new(
        gst::Structure::builder("GstForceKeyUnit")
            .field("all-headers", true)
            .field("count", 0u32)
            .build(),
    )
}

impl Running {
    /// Builds the pipeline of `spec` and sets it playing.
    pub fn build(spec: &BuildSpec<'_>) -> Result<Running> {
        let stream = spec.stream;
        let build_err = |what: &str, message: String| Error::Build {
            stream: stream.to_owned(),
            what: what.to_owned(),
            message,
        };
        let pipeline = gst::Pipeline::with_name(&format!("ladder:{stream}"));
        let (caps, parser, cpu_dec, nv_dec) = match &spec.source.codec {
            Codec::H264 { avcc, .. } => (
                gst::Caps::builder("video/x-h264")
                    .field("stream-format", "avc")
                    .field("alignment", "au")
                    .field("codec_data", gst::Buffer::from_slice(avcc.clone()))
                    .build(),
                "h264parse",
                "avdec_h264",
                "nvh264dec",
            ),
            Codec::H265 { hvcc, .. } => (
                gst::Caps::builder("video/x-h265")
                    .field("stream-format", "hvc1")
                    .field("alignment", "au")
                    .field("codec_data", gst::Buffer::from_slice(hvcc.clone()))
                    .build(),
                "h265parse",
                "avdec_h265",
                "nvh265dec",
            ),
            other => {
                return Err(build_err(
                    "source",
                    format!("codec {} is not decoded", other.name()),
                ));
            }
        };
        let cuda = spec.backend.decoder == DecoderKind::Nvdec
            && gst::ElementFactory::find(nv_dec).is_some();
        let appsrc = gst_app::AppSrc::builder()
            .name("src")
            .caps(&caps)
            .format(gst::Format::Time)
            .is_live(false)
            .block(false)
            .max_bytes(32 << 20)
            .build();
        // GStreamer >= 1.20 (the binding's setter needs the v1_20 feature).
        appsrc.set_property("max-buffers", APPSRC_FRAMES);
        let parse = make(parser, "parse", stream)?;
        let dec = make(if cuda { nv_dec } else { cpu_dec }, "dec", stream)?;
        if cuda {
            set_str(&dec, "cuda-device-id", "0");
        } else {
            dec.set_property("max-errors", DECODER_MAX_ERRORS);
            dec.set_property("output-corrupt", false);
        }
        let tee0 = make("tee", "decoded", stream)?;
        pipeline
            .add_many([appsrc.upcast_ref(), &parse, &dec, &tee0])
            .map_err(|e| build_err("adding elements", e.to_string()))?;
        if cuda {
            let f = caps_filter(
                "deccaps",
                gst::Caps::builder("video/x-raw")
                    .features(["memory:CUDAMemory"])
                    .build(),
                stream,
            )?;
            pipeline
                .add(&f)
                .map_err(|e| build_err("adding elements", e.to_string()))?;
            link(stream, &[appsrc.upcast_ref(), &parse, &dec, &f, &tee0])?;
        } else {
            link(stream, &[appsrc.upcast_ref(), &parse, &dec, &tee0])?;
        }

        let shared = Arc::new(Shared {
            stream: stream.to_owned(),
            base: spec.base,
            pictures: Mutex::new(BTreeMap::new()),
            force: Mutex::new(BTreeSet::new()),
            latest_out: spec.outputs.iter().map(|_| AtomicU64::new(0)).collect(),
            metrics: spec.metrics.clone(),
        });
        let mut upstream = tee0;
        for (i, out) in spec.outputs.iter().enumerate() {
            // Scale stage: from the previous (next larger) rung's picture.
            let q = make("queue", &format!("scaleq{i}"), stream)?;
            let scale = make(
                if cuda { "cudascale" } else { "videoscale" },
                &format!("scale{i}"),
                stream,
            )?;
            let f = caps_filter(
                &format!("size{i}"),
                raw_caps(cuda, out.width, out.rung.height),
                stream,
            )?;
            let tee = make("tee", &format!("rung{i}"), stream)?;
            let chain = vec![q, scale, f, tee.clone()];
            pipeline
                .add_many(&chain)
                .map_err(|e| build_err("adding elements", e.to_string()))?;
            let mut refs: Vec<&gst::Element> = vec![&upstream];
            refs.extend(chain.iter());
            link(stream, &refs)?;

            // Encode stage.
            let mut enc_chain = vec![make("queue", &format!("encq{i}"), stream)?];
            if spec.backend.encoder == EncoderKind::X264 {
                if cuda {
                    enc_chain.push(make("cudadownload", &format!("download{i}"), stream)?);
                }
                enc_chain.push(make("videoconvert", &format!("convert{i}"), stream)?);
            } else if !cuda {
                enc_chain.push(make("videoconvert", &format!("convert{i}"), stream)?);
            }
            let enc = encoder(spec, out, i)?;
            enc_chain.push(enc.clone());
            enc_chain.push(caps_filter(
                &format!("profile{i}"),
                gst::Caps::builder("video/x-h264")
                    .field("profile", out.rung.profile.caps_name())
                    .build(),
                stream,
            )?);
            enc_chain.push(make("h264parse", &format!("encparse{i}"), stream)?);
            let sink = gst_app::AppSink::builder()
                .name(format!("sink{i}"))
                .caps(
                    &gst::Caps::builder("video/x-h264")
                        .field("stream-format", "avc")
                        .field("alignment", "au")
                        .build(),
                )
                .sync(false)
                .build();
            enc_chain.push(sink.clone().upcast());
            pipeline
                .add_many(&enc_chain)
                .map_err(|e| build_err("adding elements", e.to_string()))?;
            let mut refs: Vec<&gst::Element> = vec![&tee];
            refs.extend(enc_chain.iter());
            link(stream, &refs)?;

            install_fps_cap(&enc_chain[0], out.rung.max_fps, &shared, stream)?;
            install_force_probe(&enc, &shared, stream)?;
            let (shared_cb, out_cb) = (shared.clone(), out.clone());
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        on_sample(&shared_cb, &out_cb, i, &sample);
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
            upstream = tee;
        }
        let bus = pipeline
            .bus()
            .ok_or_else(|| build_err("bus", "pipeline has no bus".into()))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| build_err("set_state(Playing)", e.to_string()))?;
        Ok(Running {
            pipeline,
            appsrc,
            bus,
            shared,
        })
    }

    /// Pushes one source frame (waiting while appsrc is full); `force`: every rung codes
    /// this picture as a keyframe. Returns the pipeline's error, if it reported one.
    pub fn push(&self, f: &Frame, force: bool) -> Result<()> {
        let (Some(pts), Some(dts)) = (self.shared.to_ns(f.pts), self.shared.to_ns(f.dts)) else {
            // Before the build's first frame by more than OFFSET: nothing to do with it.
            return self.check();
        };
        {
            let mut pictures = lock(&self.shared.pictures);
            pictures.insert(
                pts,
                SourcePicture {
                    pts: f.pts,
                    received: f.received,
                    pushed: Instant::now(),
                },
            );
            while pictures.len() > PTS_MEMORY {
                pictures.pop_first();
            }
        }
        if force {
            let mut set = lock(&self.shared.force);
            set.insert(pts);
            while set.len() > PTS_MEMORY {
                set.pop_first();
            }
        }
        let mut buffer = gst::Buffer::from_slice(f.data.clone());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(pts));
            b.set_dts(gst::ClockTime::from_nseconds(dts));
            if !f.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        self.wait_for_room()?;
        // A flow error here means the pipeline failed: the bus says why.
        let _ = self.appsrc.push_buffer(buffer);
        self.check()
    }

    /// Waits while appsrc holds [`APPSRC_FRAMES`] frames, watching the bus: a pipeline
    /// that failed (its streaming thread stopped) or made no progress for
    /// [`STALL_TIMEOUT`] is an error, never a hang (appsrc's own `block` would wait
    /// forever on a failed pipeline).
    fn wait_for_room(&self) -> Result<()> {
        let mut level: u64 = self.appsrc.property("current-level-buffers");
        let mut since = Instant::now();
        while level >= APPSRC_FRAMES {
            if let Some(msg) = self
                .bus
                .timed_pop_filtered(gst::ClockTime::from_mseconds(2), &[gst::MessageType::Error])
            {
                return Err(self.error_of(&msg));
            }
            let now: u64 = self.appsrc.property("current-level-buffers");
            if now < level {
                since = Instant::now();
            } else if since.elapsed() > STALL_TIMEOUT {
                return Err(Error::Pipeline {
                    stream: self.shared.stream.clone(),
                    element: "pipeline".into(),
                    message: format!("no progress for {STALL_TIMEOUT:?}"),
                });
            }
            level = now;
        }
        Ok(())
    }

    /// The first error the pipeline posted, if any.
    pub fn check(&self) -> Result<()> {
        match self.bus.pop_filtered(&[gst::MessageType::Error]) {
            Some(msg) => Err(self.error_of(&msg)),
            None => Ok(()),
        }
    }

    fn error_of(&self, msg: &gst::Message) -> Error {
        let element = msg
            .src()
            .map(|s| s.path_string().to_string())
            .unwrap_or_else(|| "?".into());
        let message = match msg.view() {
            gst::MessageView::Error(e) => match e.debug() {
                Some(d) => format!("{} ({d})", e.error()),
                None => e.error().to_string(),
            },
            _ => "unexpected message".into(),
        };
        Error::Pipeline {
            stream: self.shared.stream.clone(),
            element,
            message,
        }
    }

    /// Sends EOS and waits (bounded) until every rung has produced its last frame, then
    /// tears the pipeline down.
    pub fn drain(self) -> Result<()> {
        let _ = self.appsrc.end_of_stream();
        let timeout = gst::ClockTime::from_mseconds(DRAIN_TIMEOUT.as_millis() as u64);
        let result = match self
            .bus
            .timed_pop_filtered(timeout, &[gst::MessageType::Eos, gst::MessageType::Error])
        {
            Some(msg) if msg.type_() == gst::MessageType::Eos => Ok(()),
            Some(msg) => Err(self.error_of(&msg)),
            None => Err(Error::Pipeline {
                stream: self.shared.stream.clone(),
                element: "pipeline".into(),
                message: format!("no EOS within {DRAIN_TIMEOUT:?} of draining"),
            }),
        };
        // Drop tears down.
        result
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Caps a rung's frame rate at `max_fps` without retiming: a picture closer than 0.9
/// frame interval (at `max_fps`) to the last one kept is dropped, unless it is marked as
/// a keyframe; the caps' framerate is lowered to `max_fps` when above it, so the
/// encoder's rate control and VUI see the real rate. (`videorate` would put the kept
/// pictures on a perfect grid, and a rung frame would no longer carry its source pts.)
fn install_fps_cap(
    first: &gst::Element,
    max_fps: u32,
    shared: &Arc<Shared>,
    stream: &str,
) -> Result<()> {
    let pad = first.static_pad("sink").ok_or_else(|| Error::Build {
        stream: stream.to_owned(),
        what: "encoder queue sink pad".into(),
        message: "missing".into(),
    })?;
    let shared = shared.clone();
    let min_gap = 900_000_000 / u64::from(max_fps.max(1));
    let last = AtomicU64::new(u64::MAX);
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            if let Some(gst::PadProbeData::Event(ev)) = &info.data {
                if let gst::EventView::Caps(c) = ev.view() {
                    let caps = c.caps();
                    let fps = caps
                        .structure(0)
                        .and_then(|s| s.get::<gst::Fraction>("framerate").ok());
                    if fps.is_some_and(|f| {
                        i64::from(f.numer()) > i64::from(max_fps) * i64::from(f.denom())
                    }) {
                        let mut capped = caps.to_owned();
                        capped
                            .make_mut()
                            .set("framerate", gst::Fraction::new(max_fps as i32, 1));
                        info.data = Some(gst::PadProbeData::Event(gst::event::Caps::new(&capped)));
                    }
                } else if let gst::EventView::FlushStop(_) | gst::EventView::StreamStart(_) =
                    ev.view()
                {
                    last.store(u64::MAX, Ordering::Relaxed);
                }
                return gst::PadProbeReturn::Ok;
            }
            let Some(p) = info.buffer().and_then(|b| b.pts()).map(|t| t.nseconds()) else {
                return gst::PadProbeReturn::Ok;
            };
            let prev = last.load(Ordering::Relaxed);
            let marked = lock(&shared.force).contains(&p);
            if prev != u64::MAX && p > prev && p - prev < min_gap && !marked {
                return gst::PadProbeReturn::Drop;
            }
            last.store(p, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        },
    );
    Ok(())
}

/// Forces a keyframe on the encoder before the first buffer at or past a marked pts.
fn install_force_probe(enc: &gst::Element, shared: &Arc<Shared>, stream: &str) -> Result<()> {
    let pad = enc.static_pad("sink").ok_or_else(|| Error::Build {
        stream: stream.to_owned(),
        what: "encoder sink pad".into(),
        message: "missing".into(),
    })?;
    let shared = shared.clone();
    let last = AtomicU64::new(u64::MAX);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(pts) = info.buffer().and_then(|b| b.pts()) else {
            return gst::PadProbeReturn::Ok;
        };
        let p = pts.nseconds();
        let prev = last.swap(p, Ordering::Relaxed);
        // The first picture of a build is a keyframe anyway.
        let hit = prev != u64::MAX
            && p > prev
            && lock(&shared.force)
                .range((Bound::Excluded(prev), Bound::Included(p)))
                .next()
                .is_some();
        if hit {
            pad.send_event(force_key_unit());
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

/// Publishes one rung output sample: Tracks first (and again when the encoder's
/// configuration changes), then the frame on the source timeline.
fn on_sample(shared: &Shared, out: &RungOutput, i: usize, sample: &gst::Sample) {
    let Some(buffer) = sample.buffer() else {
        return;
    };
    let codec_data = sample
        .caps()
        .and_then(|c| c.structure(0))
        .and_then(|s| s.get::<gst::Buffer>("codec_data").ok());
    {
        let mut last = lock(&out.last_codec);
        if let Some(cd) = codec_data {
            let same = matches!(&*last, Some(Codec::H264 { avcc, .. }) if cd.map_readable().is_ok_and(|m| m.as_slice() == avcc.as_ref()));
            if !same {
                let bytes = match cd.map_readable() {
                    Ok(m) => Bytes::copy_from_slice(m.as_slice()),
                    Err(_) => return,
                };
                match Codec::h264(bytes) {
                    Ok(codec) => {
                        out.publisher.send(StreamEvent::Tracks(vec![TrackInfo {
                            id: 0,
                            codec: codec.clone(),
                            timescale: 90_000,
                        }]));
                        *last = Some(codec);
                    }
                    Err(e) => {
                        tracing::warn!(stream = %shared.stream, rung = %out.rung.name, error = %e, "encoder configuration unreadable, frame dropped");
                        return;
                    }
                }
            }
        }
        if last.is_none() {
            return;
        }
    }
    // Running time, not the raw pts: an encoder may shift its output timestamps and
    // segment together (x264enc's 1000 h minimum pts), the running time stays the input's.
    let Some(ns) = buffer.pts().and_then(|pts| {
        let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
        segment.to_running_time(pts).map(|t| t.nseconds())
    }) else {
        return;
    };
    let Ok(map) = buffer.map_readable() else {
        return;
    };
    let data = Bytes::copy_from_slice(map.as_slice());
    drop(map);
    let picture = shared.lookup(ns);
    let pts = picture.map_or_else(|| shared.to_ticks(ns), |p| p.pts);
    let keyframe = media::h264::contains_idr(&data);
    out.publisher.send(StreamEvent::Frame(Frame {
        track: 0,
        pts,
        dts: pts,
        keyframe,
        data,
        received: picture.map_or_else(SystemTime::now, |p| p.received),
    }));
    shared.latest_out[i].fetch_max(ns, Ordering::Relaxed);
    let Some(m) = &shared.metrics else {
        return;
    };
    if let Some(p) = picture {
        m.encode_latency
            .with_label_values(&[out.rung.name.as_str()])
            .observe(p.pushed.elapsed().as_secs_f64());
    }
    // Pictures pushed after the slowest rung's latest output (a frame-rate cap drops
    // some of them; they count until a later picture comes out).
    let slowest = shared
        .latest_out
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .min()
        .unwrap_or(ns);
    let in_flight = lock(&shared.pictures)
        .range((Bound::Excluded(slowest), Bound::Unbounded))
        .count();
    m.frames_in_flight
        .with_label_values(&[shared.stream.as_str()])
        .set(in_flight as i64);
    let mut window = lock(&out.window);
    match *window {
        Some((start, start_pts)) if start.elapsed() >= RATIO_WINDOW => {
            let media = (pts - start_pts) as f64 / 90_000.0;
            m.realtime_ratio
                .with_label_values(&[shared.stream.as_str(), out.rung.name.as_str()])
                .set(media / start.elapsed().as_secs_f64());
            *window = Some((Instant::now(), pts));
        }
        Some(_) => {}
        None => *window = Some((Instant::now(), pts)),
    }
}
