//! The `[transcode]` config section: the ladder, the encoder/decoder choice and
//! per-stream overrides.
//!
//! The default ladder is the usual 16:9 one (2160p down to 360p). A rung is produced only
//! when its height is at most the source height (never upscale); its width follows the
//! source aspect ratio (see [`rung_width`]). [`TranscodeConfig::for_stream`] applies the
//! per-stream overrides once, so the ladder code never looks at names.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Which video encoder a ladder uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EncoderChoice {
    /// NVENC when a real encode session opens at start-up, x264 otherwise.
    Auto,
    /// CPU x264 (`x264enc`).
    X264,
    /// NVIDIA NVENC (`nvh264enc`); a ladder fails to build where it does not work.
    Nvenc,
}

/// Which video decoder a ladder uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderChoice {
    /// NVDEC when a real decode session works at start-up, libav otherwise.
    Auto,
    /// CPU decoding (`avdec_h264` / `avdec_h265`).
    Cpu,
    /// NVIDIA NVDEC (`nvh264dec` / `nvh265dec`) with CUDA scaling.
    Nvdec,
}

/// H.264 profile of a rung.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Baseline,
    Main,
    High,
}

impl Profile {
    /// The caps value (`video/x-h264,profile=...`).
    pub fn caps_name(self) -> &'static str {
        match self {
            Profile::Baseline => "constrained-baseline",
            Profile::Main => "main",
            Profile::High => "high",
        }
    }
}

/// One rung of the ladder.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rung {
    /// Rendition name (`720p`): the rung's hub stream is `<source>@<name>`.
    pub name: String,
    /// Output height in pixels (even); the width follows the source aspect ratio.
    pub height: u32,
    /// Target video bitrate (CBR with a VBV of one second).
    pub video_bitrate_kbps: u32,
    /// Frames above this rate are dropped (a 60 fps source gives 30 fps on a rung with 30).
    pub max_fps: u32,
    /// H.264 profile.
    pub profile: Profile,
}

impl Rung {
    fn new(name: &str, height: u32, kbps: u32, max_fps: u32, profile: Profile) -> Rung {
        Rung {
            name: name.to_owned(),
            height,
            video_bitrate_kbps: kbps,
            max_fps,
            profile,
        }
    }
}

/// Per-stream override (`[transcode.streams."live/alice"]`); unset keys keep the
/// section's value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamOverride {
    /// Transcode this stream (or not).
    pub enabled: Option<bool>,
    /// The rung names (from `rungs`) this stream gets.
    pub rungs: Option<Vec<String>>,
    /// Keep the passthrough `source` rendition.
    pub source: Option<bool>,
}

/// `[transcode]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TranscodeConfig {
    /// Transcode published streams at all.
    pub enabled: bool,
    /// `auto`, `x264` or `nvenc`.
    pub encoder: EncoderChoice,
    /// `auto`, `cpu` or `nvdec`.
    pub decoder: DecoderChoice,
    /// x264 `speed-preset` (ultrafast ... placebo).
    pub x264_preset: String,
    /// Keep the passthrough `source` rendition beside the rungs.
    pub source: bool,
    /// Longest time between two rung keyframes when the source GOP is longer (set it to
    /// the packager's `segment_target_ms`, so every segment starts on a keyframe).
    pub keyframe_interval_ms: u64,
    /// The ladder, largest first.
    pub rungs: Vec<Rung>,
    /// Per-stream overrides, by stream name.
    pub streams: BTreeMap<String, StreamOverride>,
}

impl Default for TranscodeConfig {
    fn default() -> Self {
        TranscodeConfig {
            enabled: true,
            encoder: EncoderChoice::Auto,
            decoder: DecoderChoice::Auto,
            x264_preset: "veryfast".to_owned(),
            source: true,
            keyframe_interval_ms: 2000,
            rungs: default_rungs(),
            streams: BTreeMap::new(),
        }
    }
}

/// The default ladder: 2160p 14 Mb/s down to 360p 800 kb/s.
pub fn default_rungs() -> Vec<Rung> {
    vec![
        Rung::new("2160p", 2160, 14_000, 60, Profile::High),
        Rung::new("1440p", 1440, 8_000, 60, Profile::High),
        Rung::new("1080p", 1080, 5_000, 60, Profile::High),
        Rung::new("720p", 720, 2_800, 60, Profile::High),
        Rung::new("480p", 480, 1_400, 30, Profile::Main),
        Rung::new("360p", 360, 800, 30, Profile::Main),
    ]
}

/// x264 speed presets (`x264enc speed-preset`).
pub const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// The ladder of one stream after its overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamLadder {
    /// Transcode this stream.
    pub enabled: bool,
    /// Its rungs, largest first (before the source-height cut, see [`plan_rungs`]).
    pub rungs: Vec<Rung>,
    /// Keep the passthrough `source` rendition.
    pub source: bool,
}

impl TranscodeConfig {
    /// The ladder of stream `name`: the section's rungs and flags with the stream's
    /// override applied.
    pub fn for_stream(&self, name: &str) -> StreamLadder {
        let o = self.streams.get(name);
        let rungs = match o.and_then(|o| o.rungs.as_ref()) {
            Some(names) => self
                .rungs
                .iter()
                .filter(|r| names.contains(&r.name))
                .cloned()
                .collect(),
            None => self.rungs.clone(),
        };
        StreamLadder {
            enabled: self.enabled && o.and_then(|o| o.enabled).unwrap_or(true),
            rungs,
            source: o.and_then(|o| o.source).unwrap_or(self.source),
        }
    }

    /// Checks every key; the error names the first bad one (`rungs[2].height`).
    pub fn validate(&self) -> Result<()> {
        let bad = |key: String, problem: String| Err(Error::Config { key, problem });
        if !X264_PRESETS.contains(&self.x264_preset.as_str()) {
            return bad(
                "x264_preset".into(),
                format!(
                    "must be one of {}, got {:?}",
                    X264_PRESETS.join(", "),
                    self.x264_preset
                ),
            );
        }
        if !(500..=30_000).contains(&self.keyframe_interval_ms) {
            return bad(
                "keyframe_interval_ms".into(),
                format!(
                    "must be between 500 and 30000, got {}",
                    self.keyframe_interval_ms
                ),
            );
        }
        for (i, r) in self.rungs.iter().enumerate() {
            let key = |k: &str| format!("rungs[{i}].{k}");
            let name_ok = !r.name.is_empty()
                && r.name != "source"
                && r.name != "audio"
                && r.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !name_ok {
                return bad(
                    key("name"),
                    format!(
                        "must be letters, digits, '_' or '-' and not source/audio, got {:?}",
                        r.name
                    ),
                );
            }
            if self.rungs[..i].iter().any(|o| o.name == r.name) {
                return bad(key("name"), format!("{:?} is used twice", r.name));
            }
            if !(64..=4320).contains(&r.height) || r.height % 2 != 0 {
                return bad(
                    key("height"),
                    format!("must be even and between 64 and 4320, got {}", r.height),
                );
            }
            if !(50..=100_000).contains(&r.video_bitrate_kbps) {
                return bad(
                    key("video_bitrate_kbps"),
                    format!(
                        "must be between 50 and 100000, got {}",
                        r.video_bitrate_kbps
                    ),
                );
            }
            if !(1..=240).contains(&r.max_fps) {
                return bad(
                    key("max_fps"),
                    format!("must be between 1 and 240, got {}", r.max_fps),
                );
            }
        }
        for (stream, o) in &self.streams {
            for name in o.rungs.iter().flatten() {
                if !self.rungs.iter().any(|r| &r.name == name) {
                    return bad(
                        format!("streams.\"{stream}\".rungs"),
                        format!("no rung named {name:?} in rungs"),
                    );
                }
            }
        }
        Ok(())
    }
}

/// The width of a rung of height `height` for a `src_w` x `src_h` source: the source
/// aspect ratio, rounded to an even number of pixels.
pub fn rung_width(src_w: u32, src_h: u32, height: u32) -> u32 {
    let w =
        (u64::from(src_w) * u64::from(height) + u64::from(src_h)) / (2 * u64::from(src_h).max(1));
    (w.max(1) * 2) as u32
}

/// The rungs produced for a source of height `src_h`: those not above it (never
/// upscale), largest first.
pub fn plan_rungs(rungs: &[Rung], src_h: u32) -> Vec<Rung> {
    let mut out: Vec<Rung> = rungs
        .iter()
        .filter(|r| r.height <= src_h)
        .cloned()
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(r.height));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_round_trip_through_toml() {
        let c = TranscodeConfig::default();
        c.validate().unwrap();
        let text = toml::to_string(&c).unwrap();
        let back: TranscodeConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn overrides_apply_per_stream() {
        let c: TranscodeConfig = toml::from_str(
            r#"
            source = false
            [streams."live/alice"]
            rungs = ["720p", "360p"]
            source = true
            [streams."live/bob"]
            enabled = false
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        let a = c.for_stream("live/alice");
        assert!(a.enabled && a.source);
        let names: Vec<_> = a.rungs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["720p", "360p"]);
        assert!(!c.for_stream("live/bob").enabled);
        let other = c.for_stream("live/carol");
        assert!(other.enabled && !other.source);
        assert_eq!(other.rungs.len(), 6);
    }

    #[test]
    fn invalid_configs_name_the_key() {
        let cases = [
            (r#"x264_preset = "turbo""#, "x264_preset"),
            ("keyframe_interval_ms = 10", "keyframe_interval_ms"),
            (
                r#"rungs = [{name = "a", height = 721, video_bitrate_kbps = 800, max_fps = 30, profile = "main"}]"#,
                "rungs[0].height",
            ),
            (
                r#"rungs = [{name = "source", height = 720, video_bitrate_kbps = 800, max_fps = 30, profile = "main"}]"#,
                "rungs[0].name",
            ),
            (
                r#"rungs = [{name = "a", height = 720, video_bitrate_kbps = 800, max_fps = 30, profile = "main"}, {name = "a", height = 360, video_bitrate_kbps = 800, max_fps = 30, profile = "main"}]"#,
                "rungs[1].name",
            ),
            (
                r#"rungs = [{name = "a", height = 720, video_bitrate_kbps = 0, max_fps = 30, profile = "main"}]"#,
                "rungs[0].video_bitrate_kbps",
            ),
            (
                r#"rungs = [{name = "a", height = 720, video_bitrate_kbps = 800, max_fps = 0, profile = "main"}]"#,
                "rungs[0].max_fps",
            ),
            (
                "[streams.\"live/a\"]\nrungs = [\"999p\"]",
                "streams.\"live/a\".rungs",
            ),
        ];
        for (text, key) in cases {
            let c: TranscodeConfig = toml::from_str(text).unwrap();
            match c.validate() {
                Err(Error::Config { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: expected an error on {key}, got {other:?}"),
            }
        }
        assert!(toml::from_str::<TranscodeConfig>(r#"encoder = "quicksync""#).is_err());
        assert!(toml::from_str::<TranscodeConfig>("bogus = 1").is_err());
    }

    #[test]
    fn rungs_never_upscale_and_keep_the_aspect() {
        let planned = plan_rungs(&default_rungs(), 720);
        let names: Vec<_> = planned.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["720p", "480p", "360p"]);
        assert_eq!(rung_width(1920, 1080, 720), 1280);
        assert_eq!(rung_width(1920, 1080, 360), 640);
        assert_eq!(rung_width(1920, 1080, 480), 854);
        assert_eq!(rung_width(1280, 720, 1080), 1920);
        assert_eq!(rung_width(1080, 1920, 360), 202);
        assert_eq!(rung_width(1, 1080, 360) % 2, 0);
    }
}
