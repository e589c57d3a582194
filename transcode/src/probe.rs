//! The encoder and decoder choice.
//!
//! `auto` does not trust the presence of an element: `nvh264enc` registers on a machine
//! whose GPU has no NVENC (H100, H200) and fails only when a session opens. So the probe
//! runs a tiny real pipeline (`videotestsrc num-buffers=10 ! nvh264enc ! fakesink`, and for
//! decoding `x264enc ! h264parse ! nvh264dec ! cudascale ! cudadownload ! fakesink`) that
//! must reach EOS, and caches the answer per GPU (CUDA device id) for the life of the
//! process. A GPU with NVDEC but no NVENC decodes and scales on the GPU and encodes on
//! the CPU.
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::config::{DecoderChoice, EncoderChoice, TranscodeConfig};

/// The encoder a ladder uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncoderKind {
    /// `x264enc` on the CPU.
    X264,
    /// `nvh264enc` on CUDA device 0.
    Nvenc,
}

/// The decoder (and scaler) a ladder uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecoderKind {
    /// `avdec_h264`/`avdec_h265` and `videoscale` on the CPU.
    Cpu,
    /// `nvh264dec`/`nvh265dec` and `cudascale` on CUDA device 0.
    Nvdec,
}

/// The chosen backends and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub encoder: EncoderKind,
    pub decoder: DecoderKind,
    /// Why this encoder (e.g. "auto: nvh264enc is not available (...)").
    pub encoder_reason: String,
    /// Why this decoder.
    pub decoder_reason: String,
}

/// The CUDA device the probe and the nv elements use.
const GPU: u32 = 0;
/// How long a probe pipeline may take to reach EOS.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

type Cache = Mutex<HashMap<(u32, &'static str), Result<(), String>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

/// Chooses the encoder and decoder for `config` (probing the GPU for `auto`) and logs
/// the choice with its reason. Blocking (a probe runs a pipeline): call it off the
/// async runtime.
pub fn select_backend(config: &TranscodeConfig) -> crate::Result<Backend> {
    gst::init().map_err(|e| crate::Error::Init(e.to_string()))?;
    let (encoder, encoder_reason) = match config.encoder {
        EncoderChoice::X264 => (EncoderKind::X264, "configured: x264".to_owned()),
        EncoderChoice::Nvenc => (EncoderKind::Nvenc, "configured: nvenc".to_owned()),
        EncoderChoice::Auto => match probe(GPU, "nvenc") {
            Ok(()) => (
                EncoderKind::Nvenc,
                format!("auto: an NVENC session opened on GPU {GPU}"),
            ),
            Err(why) => (EncoderKind::X264, format!("auto: x264, because {why}")),
        },
    };
    let (decoder, decoder_reason) = match config.decoder {
        DecoderChoice::Cpu => (DecoderKind::Cpu, "configured: cpu".to_owned()),
        DecoderChoice::Nvdec => (DecoderKind::Nvdec, "configured: nvdec".to_owned()),
        DecoderChoice::Auto => match probe(GPU, "nvdec") {
            Ok(()) => (
                DecoderKind::Nvdec,
                format!("auto: an NVDEC session decoded on GPU {GPU}"),
            ),
            Err(why) => (DecoderKind::Cpu, format!("auto: cpu, because {why}")),
        },
    };
    let b = Backend {
        encoder,
        decoder,
        encoder_reason,
        decoder_reason,
    };
    tracing::info!(
        encoder = ?b.encoder,
        encoder_reason = %b.encoder_reason,
        decoder = ?b.decoder,
        decoder_reason = %b.decoder_reason,
        "transcode backend chosen"
    );
    Ok(b)
}

/// Runs (once per GPU and kind) the probe pipeline of `kind` ("nvenc" or "nvdec").
fn probe(gpu: u32, kind: &'static str) -> Result<(), String> {
    let mut cache = cache().lock().unwrap_or_else(PoisonError::into_inner);
    cache
        .entry((gpu, kind))
        .or_insert_with(|| run_probe(gpu, kind))
        .clone()
}

fn run_probe(gpu: u32, kind: &str) -> Result<(), String> {
    let (needed, launch): (&[&str], String) = match kind {
        "nvenc" => (
            &["nvh264enc"],
            format!(
                "videotestsrc num-buffers=10 ! video/x-raw,format=NV12,width=320,height=240,framerate=30/1 \
                 ! nvh264enc cuda-device-id={gpu} ! fakesink"
            ),
        ),
        _ => (
            &["nvh264dec", "cudascale", "cudadownload"],
            format!(
                "videotestsrc num-buffers=10 ! video/x-raw,width=320,height=240,framerate=30/1 \
                 ! x264enc ! h264parse ! nvh264dec cuda-device-id={gpu} ! cudascale \
                 ! video/x-raw(memory:CUDAMemory),width=160,height=120 ! cudadownload ! fakesink"
            ),
        ),
    };
    for name in needed {
        if gst::ElementFactory::find(name).is_none() {
            return Err(format!(
                "the GStreamer element {name} is not available (no nvcodec plugin, NVIDIA \
                 driver or CUDA device)"
            ));
        }
    }
    let pipeline = gst::parse::launch(&launch).map_err(|e| format!("probe pipeline: {e}"))?;
    let result = run_to_eos(&pipeline);
    let _ = pipeline.set_state(gst::State::Null);
    result.map_err(|e| format!("the {kind} probe on GPU {gpu} failed: {e}"))
}

fn run_to_eos(pipeline: &gst::Element) -> Result<(), String> {
    let bus = pipeline.bus().ok_or("no bus")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("state change refused: {e}"))?;
    let timeout = gst::ClockTime::from_mseconds(PROBE_TIMEOUT.as_millis() as u64);
    match bus.timed_pop_filtered(timeout, &[gst::MessageType::Eos, gst::MessageType::Error]) {
        Some(msg) => match msg.view() {
            gst::MessageView::Eos(_) => Ok(()),
            gst::MessageView::Error(e) => Err(format!(
                "{}: {}",
                msg.src()
                    .map(|s| s.path_string().to_string())
                    .unwrap_or_default(),
                e.error()
            )),
            _ => Err("unexpected message".into()),
        },
        None => Err(format!("no EOS within {PROBE_TIMEOUT:?}")),
    }
}
