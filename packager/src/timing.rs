//! Choosing PART-TARGET so that every rendition's frame grid meets the part rules.
//!
//! RFC 8216bis [S §4.4.4.9] requires every EXT-X-PART DURATION to be `<= PART-TARGET`
//! (no rounding), and every part that is neither INDEPENDENT=YES nor the last part of
//! its segment to be `>= 0.85 x PART-TARGET`. A part holds whole frames, so with 30 fps
//! video (33.3 ms frames) and 48 kHz AAC (21.3 ms frames) a part target of exactly 200 ms
//! cannot be met by both grids at once. Like other serious packagers we fit the target
//! to the frame grids instead of the other way round:
//!
//! 1. Video parts are a whole number of frames, `n_v = floor or ceil(nominal / frame)`.
//! 2. Audio parts are a whole number of codec frames (1024 samples for AAC), `n_a` chosen
//!    near the video part duration (or near the nominal target for audio-only streams).
//! 3. `PART-TARGET = ceil_ms(max(video part, audio part)) + margin`, a whole number of
//!    milliseconds (so a renderer printing it with three decimals prints it exactly).
//! 4. The pair is valid when `min(video part, audio part) - margin >= 0.85 x PART-TARGET`.
//!
//! # Timestamp jitter
//!
//! A part's duration is measured from the timestamps of its first frame and of the frame
//! after it, and those are not on the nominal grid: RTMP rounds them to whole
//! milliseconds (30 fps arrives as 33/34 ms steps), and publishers' capture clocks add a
//! few milliseconds of jitter on top. A regular part of `n` frames therefore measures
//! `n x frame ± e`, where `e` is the error of its two end timestamps. The margin is what
//! absorbs `e` on both sides: the longest regular part plus `margin` still fits
//! PART-TARGET, and the shortest regular part less `margin` still reaches 85 % of it. For
//! each candidate the margin is the largest one up to [`MAX_MARGIN_MS`] that keeps the
//! pair valid, and candidates whose margin covers [`JITTER_MS`] (1 ms of rounding plus
//! 4 ms of capture jitter) are preferred, even a little further from the nominal target
//! (which only happens for targets far below 200 ms); among those the one whose regular
//! part is nearest to the nominal target wins, then the larger margin. With the default 200 ms
//! target every common frame rate and AAC rate gets a margin of 8 ms (PART-TARGET
//! 208 ms for 25 or 30 fps), a few percent of the part.
//!
//! The segmenter cuts parts by time (see [`TrackPlan::close_ticks`]): a part closes once
//! it reaches its fitted duration less half a frame, so while the timestamp error stays
//! under half a frame it closes after exactly `frames_per_part` frames, as a frame
//! counter would; unlike a counter it also closes parts of the right length after
//! dropped frames or on a grid faster than planned. A sample that would take a part past
//! PART-TARGET starts a new part instead: `<= PART-TARGET` holds whatever the jitter,
//! and `>= 85 %` holds while the error stays within the margin.
//!
//! An unsignalled frame rate is measured from the first second of decode timestamps
//! ([`estimate_frame`]), whose end-to-end error (a few ms) spread over the span keeps
//! the plan within about 1 ms per part of the real grid.
use std::time::Duration;

use media::{Codec, FrameRate};

/// An exact duration in seconds, `num / den`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seconds {
    pub num: u64,
    pub den: u64,
}

impl Seconds {
    pub const fn new(num: u64, den: u64) -> Seconds {
        Seconds { num, den }
    }

    /// One frame at `rate` frames per second.
    pub fn frame_of(rate: FrameRate) -> Seconds {
        Seconds::new(u64::from(rate.den.max(1)), u64::from(rate.num.max(1)))
    }

    /// `n` times this duration.
    pub fn times(self, n: u64) -> Seconds {
        Seconds::new(self.num.saturating_mul(n), self.den)
    }

    /// This duration in ticks of `timescale`, rounded down.
    pub fn ticks_floor(self, timescale: u32) -> u64 {
        mul_div_floor(self.num, u64::from(timescale), self.den.max(1))
    }

    /// Whole milliseconds, rounded up.
    fn ms_ceil(self) -> u64 {
        let den = u128::from(self.den.max(1));
        (u128::from(self.num) * 1000).div_ceil(den) as u64
    }

    /// Compares `self` with `other` exactly.
    fn cmp_exact(self, other: Seconds) -> std::cmp::Ordering {
        (u128::from(self.num) * u128::from(other.den.max(1)))
            .cmp(&(u128::from(other.num) * u128::from(self.den.max(1))))
    }

    pub fn as_duration(self) -> Duration {
        let nanos = u128::from(self.num) * 1_000_000_000 / u128::from(self.den.max(1));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn as_f64(self) -> f64 {
        self.num as f64 / self.den.max(1) as f64
    }
}

/// `a * b / c` rounded down, without overflow for any `u64` inputs (saturating).
pub(crate) fn mul_div_floor(a: u64, b: u64, c: u64) -> u64 {
    let q = u128::from(a) * u128::from(b) / u128::from(c.max(1));
    u64::try_from(q).unwrap_or(u64::MAX)
}

/// The timestamp error (ms) a regular part's measured duration is fitted to absorb:
/// less than 1 ms of millisecond rounding of its two end timestamps plus 4 ms of
/// capture-clock jitter.
pub const JITTER_MS: u64 = 5;

/// The most PART-TARGET is set above the longest regular part (ms): the margin for
/// timestamp jitter when the frame grids leave room for it.
pub const MAX_MARGIN_MS: u64 = 8;

/// The fitted part timing of one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartFit {
    /// EXT-X-PART-INF:PART-TARGET, whole milliseconds; fixed for the stream.
    pub part_target: Duration,
    /// How far a regular part's measured duration may stray from the nominal one (timestamp
    /// jitter) and still meet both part rules: PART-TARGET less the longest regular part,
    /// and never more than the shortest regular part's distance above 85 % of it.
    pub margin: Duration,
    pub video: Option<TrackPlan>,
    pub audio: Option<TrackPlan>,
}

/// How one track's frames make parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackPlan {
    /// Duration of one frame (nominal).
    pub frame: Seconds,
    /// Frames in a regular part.
    pub frames_per_part: u32,
}

impl TrackPlan {
    /// Duration of a regular part.
    pub fn part(&self) -> Seconds {
        self.frame.times(u64::from(self.frames_per_part))
    }

    /// A part closes once its duration reaches this many ticks: the regular part less
    /// half a frame, so jittered timestamps still close after `frames_per_part` frames.
    pub fn close_ticks(&self, timescale: u32) -> u64 {
        let halves = 2 * u64::from(self.frames_per_part.max(1)) - 1;
        Seconds::new(
            self.frame.num.saturating_mul(halves),
            self.frame.den.saturating_mul(2),
        )
        .ticks_floor(timescale)
        .max(1)
    }
}

/// Fits the part target for a stream with the given video and audio frame durations
/// (either may be absent: audio-only and video-only streams). `nominal` is the
/// configured part target. With neither track, the nominal target is used as is.
pub fn fit(nominal: Duration, video: Option<Seconds>, audio: Option<Seconds>) -> PartFit {
    fit_with_margin(nominal, video, audio, MAX_MARGIN_MS)
}

/// [`fit`] with an explicit largest jitter margin in milliseconds (at least 1: the
/// millisecond rounding of RTMP timestamps).
pub fn fit_with_margin(
    nominal: Duration,
    video: Option<Seconds>,
    audio: Option<Seconds>,
    max_margin_ms: u64,
) -> PartFit {
    let max_margin_ms = max_margin_ms.max(1);
    let nominal = Seconds::new(nominal.as_millis().max(1) as u64, 1000);
    let mut best: Option<(Candidate, PartFit)> = None;
    let mut consider = |v: Option<TrackPlan>, a: Option<TrackPlan>| {
        let parts: Vec<Seconds> = [v, a].iter().flatten().map(TrackPlan::part).collect();
        let (Some(longest), Some(shortest)) = (
            parts.iter().copied().max_by(|x, y| x.cmp_exact(*y)),
            parts.iter().copied().min_by(|x, y| x.cmp_exact(*y)),
        ) else {
            return;
        };
        let part_ms = longest.ms_ceil();
        // The largest margin m <= max with shortest - m >= 0.85 x (part_ms + m).
        let margin = (1..=max_margin_ms)
            .rev()
            .find(|&m| meets_floor(shortest, part_ms + m, m));
        let margin_ms = margin.unwrap_or(1);
        let pt_ms = part_ms + margin_ms;
        let candidate = Candidate {
            valid: margin.is_some(),
            covers_jitter: margin_ms >= JITTER_MS.min(max_margin_ms),
            distance: part_ms.abs_diff(nominal.ms_ceil()),
            margin_ms,
            pt_ms,
        };
        let fit = PartFit {
            part_target: Duration::from_millis(pt_ms),
            margin: Duration::from_millis(margin_ms),
            video: v,
            audio: a,
        };
        if best.as_ref().is_none_or(|(b, _)| candidate.better_than(b)) {
            best = Some((candidate, fit));
        }
    };
    match (video, audio) {
        (Some(vf), _) => {
            for nv in counts_near(nominal, vf) {
                let v = TrackPlan {
                    frame: vf,
                    frames_per_part: nv,
                };
                match audio {
                    Some(af) => {
                        for na in counts_near(v.part(), af) {
                            let a = TrackPlan {
                                frame: af,
                                frames_per_part: na,
                            };
                            consider(Some(v), Some(a));
                        }
                    }
                    None => consider(Some(v), None),
                }
            }
        }
        (None, Some(af)) => {
            for na in counts_near(nominal, af) {
                let a = TrackPlan {
                    frame: af,
                    frames_per_part: na,
                };
                consider(None, Some(a));
            }
        }
        (None, None) => {}
    }
    match best {
        Some((_, fit)) => fit,
        None => PartFit {
            part_target: nominal.as_duration(),
            margin: Duration::ZERO,
            video: None,
            audio: None,
        },
    }
}

/// `shortest - margin_ms >= 0.85 x pt_ms`, exactly (in units of 1/(1000 x den) s, times 100).
fn meets_floor(shortest: Seconds, pt_ms: u64, margin_ms: u64) -> bool {
    let den = u128::from(shortest.den.max(1));
    let lhs = 100 * (u128::from(shortest.num) * 1000).saturating_sub(u128::from(margin_ms) * den);
    lhs >= 85 * u128::from(pt_ms) * den
}

/// Plans a track against a part target that is already fixed (a track that appears
/// after the target was chosen, or a codec change): the most whole frames that fit in
/// the target, at least one. Without the margin: a regular part then always fits with
/// exact timestamps, and only a jittered one is cut a frame short by the hard limit
/// (rather than every part being a frame short).
pub fn plan_for(part_target: Duration, frame: Seconds) -> TrackPlan {
    let pt_ms = part_target.as_millis() as u64;
    let room = Seconds::new(pt_ms.max(1), 1000);
    // floor(room / frame)
    let n = (u128::from(room.num) * u128::from(frame.den.max(1)))
        / (u128::from(room.den) * u128::from(frame.num.max(1)));
    TrackPlan {
        frame,
        frames_per_part: u32::try_from(n).unwrap_or(u32::MAX).max(1),
    }
}

#[derive(Clone, Copy, Debug)]
struct Candidate {
    valid: bool,
    /// Its margin absorbs [`JITTER_MS`].
    covers_jitter: bool,
    /// Of the regular part from the nominal target, ms.
    distance: u64,
    margin_ms: u64,
    pt_ms: u64,
}

impl Candidate {
    fn key(&self) -> (bool, bool, u64, std::cmp::Reverse<u64>, u64) {
        (
            !self.valid,
            !self.covers_jitter,
            self.distance,
            std::cmp::Reverse(self.margin_ms),
            self.pt_ms,
        )
    }

    fn better_than(&self, other: &Candidate) -> bool {
        self.key() < other.key()
    }
}

/// Frame counts whose total is near `target`: floor and ceil of `target / frame`, and
/// one either side, all at least 1.
fn counts_near(target: Seconds, frame: Seconds) -> Vec<u32> {
    let num = u128::from(target.num) * u128::from(frame.den.max(1));
    let den = u128::from(target.den.max(1)) * u128::from(frame.num.max(1));
    let floor = u32::try_from(num / den).unwrap_or(u32::MAX);
    let mut counts: Vec<u32> = [
        floor.saturating_sub(1),
        floor,
        floor.saturating_add(1),
        floor.saturating_add(2),
    ]
    .into_iter()
    .filter(|&n| n >= 1)
    .collect();
    counts.dedup();
    counts
}

/// The nominal duration of one frame of an audio codec, in seconds: 1024 (or 960)
/// samples per AAC access unit, doubled with signalled SBR, at the output rate; 20 ms
/// for Opus (its most common packet).
pub fn audio_frame(codec: &Codec) -> Option<Seconds> {
    match codec {
        Codec::Aac {
            asc, sample_rate, ..
        } => {
            let (samples, rate) = match media::aac::AudioSpecificConfig::parse(asc) {
                Ok(cfg) => (cfg.samples_per_frame(), cfg.output_sample_rate()),
                Err(_) => (1024, *sample_rate),
            };
            Some(Seconds::new(u64::from(samples), u64::from(rate.max(1))))
        }
        Codec::Opus { .. } => Some(Seconds::new(20, 1000)),
        _ => None,
    }
}

/// Frame rates that sources commonly use; a measured rate within 1 % of one snaps to it.
const COMMON_RATES: [FrameRate; 10] = [
    FrameRate {
        num: 24000,
        den: 1001,
    },
    FrameRate { num: 24, den: 1 },
    FrameRate { num: 25, den: 1 },
    FrameRate {
        num: 30000,
        den: 1001,
    },
    FrameRate { num: 30, den: 1 },
    FrameRate { num: 48, den: 1 },
    FrameRate { num: 50, den: 1 },
    FrameRate {
        num: 60000,
        den: 1001,
    },
    FrameRate { num: 60, den: 1 },
    FrameRate { num: 120, den: 1 },
];

/// The frame rates a signalled value is trusted within (frames per second).
const SANE_FPS: std::ops::RangeInclusive<f64> = 1.0..=240.0;

/// A video frame duration from the bitstream's frame rate, when it signals a sane one.
pub fn video_frame(codec: &Codec) -> Option<Seconds> {
    codec
        .fps()
        .filter(|r| r.num > 0 && r.den > 0 && SANE_FPS.contains(&r.as_f64()))
        .map(Seconds::frame_of)
}

/// Estimates a video frame duration from decode timestamps (in `timescale` ticks) of
/// consecutive frames: the mean step, snapped to a common rate within 1 %. None with
/// fewer than two timestamps or no forward progress.
pub fn estimate_frame(dts: &[i64], timescale: u32) -> Option<Seconds> {
    let (first, last) = (*dts.first()?, *dts.last()?);
    let steps = u64::try_from(dts.len().checked_sub(1)?).ok()?;
    let span = u64::try_from(last.checked_sub(first)?).ok()?;
    if steps == 0 || span == 0 || timescale == 0 {
        return None;
    }
    let measured = Seconds::new(span, steps * u64::from(timescale));
    let fps = 1.0 / measured.as_f64();
    let nearest = COMMON_RATES.into_iter().min_by(|a, b| {
        let ea = (fps - a.as_f64()).abs() / a.as_f64();
        let eb = (fps - b.as_f64()).abs() / b.as_f64();
        ea.total_cmp(&eb)
    });
    if let Some(rate) = nearest
        && (fps - rate.as_f64()).abs() <= rate.as_f64() * 0.01
    {
        return Some(Seconds::frame_of(rate));
    }
    SANE_FPS.contains(&fps).then_some(measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FPS: [(u32, u32); 6] = [
        (25, 1),
        (30000, 1001),
        (30, 1),
        (50, 1),
        (60000, 1001),
        (60, 1),
    ];
    const RATES: [u64; 2] = [44_100, 48_000];

    fn aac(rate: u64) -> Seconds {
        Seconds::new(1024, rate)
    }

    fn fps(num: u32, den: u32) -> Seconds {
        Seconds::frame_of(FrameRate { num, den })
    }

    fn ms(s: Seconds) -> f64 {
        s.as_f64() * 1000.0
    }

    /// The part rules for regular parts, with the fitted margin as jitter; the margin
    /// covers [`JITTER_MS`] at the default 200 ms target.
    fn check_rules(fit: &PartFit, label: &str) {
        let pt = fit.part_target.as_secs_f64() * 1000.0;
        assert_eq!(
            fit.part_target.subsec_nanos() % 1_000_000,
            0,
            "{label}: target is whole ms"
        );
        let margin = fit.margin.as_secs_f64() * 1000.0;
        assert!(
            margin >= JITTER_MS as f64 && margin <= MAX_MARGIN_MS as f64,
            "{label}: margin {margin} ms"
        );
        for plan in [fit.video, fit.audio].into_iter().flatten() {
            let part = ms(plan.part());
            assert!(
                part + margin <= pt + 1e-9,
                "{label}: part {part} + margin > PT {pt}"
            );
            assert!(
                part - margin >= 0.85 * pt,
                "{label}: part {part} - margin < 0.85 x PT {pt}"
            );
        }
        assert!(
            (150.0..=260.0).contains(&pt),
            "{label}: PT {pt} far from the 200 ms nominal"
        );
    }

    #[test]
    fn every_frame_rate_with_every_audio_rate() {
        for (num, den) in FPS {
            for rate in RATES {
                let fit = fit(
                    Duration::from_millis(200),
                    Some(fps(num, den)),
                    Some(aac(rate)),
                );
                let label = format!("{num}/{den} fps + {rate} Hz");
                check_rules(&fit, &label);
                assert!(fit.video.is_some() && fit.audio.is_some(), "{label}");
                assert_eq!(fit.margin, Duration::from_millis(MAX_MARGIN_MS), "{label}");
            }
        }
    }

    /// Every integer frame rate from 20 to 60 fps and its NTSC variant (x 1000/1001),
    /// alone and with either AAC rate: the margin absorbs [`JITTER_MS`], and the time rule
    /// closes a part after exactly `frames_per_part` frames under that much jitter
    /// (`n - 1` frames plus the error stay under the threshold, `n` frames less the error
    /// reach it).
    #[test]
    fn any_frame_rate_absorbs_the_jitter() {
        for fps_int in 20..=60u32 {
            for (num, den) in [(fps_int, 1), (fps_int * 1000, 1001)] {
                for audio in [None, Some(44_100), Some(48_000)] {
                    let label = format!("{num}/{den} fps, audio {audio:?}");
                    let fit = fit(
                        Duration::from_millis(200),
                        Some(fps(num, den)),
                        audio.map(aac),
                    );
                    check_rules(&fit, &label);
                    let plan = fit.video.expect("video plan");
                    let threshold = plan.close_ticks(90_000) as f64 / 90.0;
                    let n = f64::from(plan.frames_per_part);
                    let frame = ms(plan.frame);
                    let e = JITTER_MS as f64;
                    assert!((n - 1.0) * frame + e < threshold, "{label}");
                    assert!(n * frame - e >= threshold, "{label}");
                }
            }
        }
    }

    #[test]
    fn known_fits() {
        // (fps, audio rate) -> (video frames, audio frames, PT ms), worked by hand:
        // 25 fps: 5 x 40 = 200 ms; 48 kHz: 9 x 21.33 = 192 ms; PT = 200 + 8, and
        // 192 - 8 = 184 >= 0.85 x 208 = 176.8.
        type Case = ((u32, u32), u64, (u32, u32, u64));
        let cases: [Case; 6] = [
            ((25, 1), 48_000, (5, 9, 208)),
            // 8 x 23.22 = 185.8 ms: 185.8 - 8 = 177.8 >= 176.8.
            ((25, 1), 44_100, (5, 8, 208)),
            ((30, 1), 48_000, (6, 9, 208)),
            // 6 x 33.367 = 200.2 ms -> 201 + 8; 185.8 - 8 >= 0.85 x 209 = 177.65.
            ((30000, 1001), 44_100, (6, 8, 209)),
            ((60000, 1001), 48_000, (12, 9, 209)),
            ((50, 1), 44_100, (10, 8, 208)),
        ];
        for ((num, den), rate, (nv, na, pt)) in cases {
            let fit = fit(
                Duration::from_millis(200),
                Some(fps(num, den)),
                Some(aac(rate)),
            );
            assert_eq!(
                fit.video.map(|p| p.frames_per_part),
                Some(nv),
                "{num}/{den} {rate}"
            );
            assert_eq!(
                fit.audio.map(|p| p.frames_per_part),
                Some(na),
                "{num}/{den} {rate}"
            );
            assert_eq!(
                fit.part_target,
                Duration::from_millis(pt),
                "{num}/{den} {rate}"
            );
            assert_eq!(fit.margin, Duration::from_millis(8), "{num}/{den} {rate}");
        }
    }

    #[test]
    fn the_margin_shrinks_to_what_the_grids_allow() {
        // A 50 ms target at 60 fps. 3 frames (50 ms): 50 - m >= 0.85 x (50 + m) holds up
        // to m = 4, short of the jitter; 4 frames (66.7 ms, PT 67 + m) hold m = 5, so
        // they win although further from the target.
        let fit = fit(Duration::from_millis(50), Some(fps(60, 1)), None);
        assert_eq!(fit.video.map(|p| p.frames_per_part), Some(4));
        assert_eq!(fit.margin, Duration::from_millis(5));
        assert_eq!(fit.part_target, Duration::from_millis(72));
        // Asking for no more than 4 ms: the nearest grid, with all the margin it allows.
        let fit = fit_with_margin(Duration::from_millis(50), Some(fps(60, 1)), None, 4);
        assert_eq!(fit.video.map(|p| p.frames_per_part), Some(3));
        assert_eq!(fit.margin, Duration::from_millis(4));
        assert_eq!(fit.part_target, Duration::from_millis(54));
        // With a 1 ms margin (the rounding only), the tight fits.
        let fit = fit_with_margin(
            Duration::from_millis(200),
            Some(fps(25, 1)),
            Some(aac(48_000)),
            1,
        );
        assert_eq!(fit.part_target, Duration::from_millis(201));
        assert_eq!(fit.margin, Duration::from_millis(1));
    }

    #[test]
    fn video_only_and_audio_only() {
        for (num, den) in FPS {
            let fit = fit(Duration::from_millis(200), Some(fps(num, den)), None);
            check_rules(&fit, &format!("{num}/{den} video only"));
            assert!(fit.audio.is_none());
        }
        for rate in RATES {
            let fit = fit(Duration::from_millis(200), None, Some(aac(rate)));
            check_rules(&fit, &format!("{rate} audio only"));
            assert!(fit.video.is_none());
        }
        let fit = fit(Duration::from_millis(200), None, Some(aac(48_000)));
        assert_eq!(fit.audio.map(|p| p.frames_per_part), Some(9));
        assert_eq!(fit.part_target, Duration::from_millis(200));
    }

    #[test]
    fn other_nominal_targets_still_meet_the_rules() {
        for nominal in [100, 150, 250, 333, 500, 1000] {
            for (num, den) in FPS {
                for rate in RATES {
                    let fit = fit(
                        Duration::from_millis(nominal),
                        Some(fps(num, den)),
                        Some(aac(rate)),
                    );
                    let pt = fit.part_target.as_secs_f64() * 1000.0;
                    let margin = fit.margin.as_secs_f64() * 1000.0;
                    assert!(margin >= 1.0, "{nominal} {num}/{den} {rate}: no margin");
                    for plan in [fit.video, fit.audio].into_iter().flatten() {
                        let part = ms(plan.part());
                        assert!(part + margin <= pt + 1e-9, "{nominal} {num}/{den} {rate}");
                        assert!(
                            part - margin >= 0.85 * pt,
                            "{nominal} {num}/{den} {rate}: {part} vs {pt}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn low_frame_rates_take_one_frame_per_part() {
        let fit = fit(Duration::from_millis(200), Some(fps(2, 1)), None);
        assert_eq!(fit.video.map(|p| p.frames_per_part), Some(1));
        assert_eq!(fit.part_target, Duration::from_millis(508));
    }

    #[test]
    fn plan_for_a_fixed_target() {
        let plan = plan_for(Duration::from_millis(201), aac(48_000));
        assert_eq!(plan.frames_per_part, 9);
        let plan = plan_for(Duration::from_millis(202), fps(30000, 1001));
        assert_eq!(plan.frames_per_part, 6);
        // 6 x 33.367 ms = 200.2 ms fits a 201 ms target fitted for 30 fps.
        let plan = plan_for(Duration::from_millis(201), fps(30000, 1001));
        assert_eq!(plan.frames_per_part, 6);
        let plan = plan_for(Duration::from_millis(200), fps(30000, 1001));
        assert_eq!(plan.frames_per_part, 5);
        let plan = plan_for(Duration::from_millis(100), fps(5, 1));
        assert_eq!(plan.frames_per_part, 1);
    }

    #[test]
    fn close_ticks_sit_half_a_frame_before_the_part_end() {
        let plan = TrackPlan {
            frame: fps(30, 1),
            frames_per_part: 6,
        };
        assert_eq!(plan.close_ticks(90_000), 16_500);
        let plan = TrackPlan {
            frame: aac(48_000),
            frames_per_part: 9,
        };
        assert_eq!(plan.close_ticks(48_000), 8_704);
    }

    #[test]
    fn frame_estimates_snap_to_common_rates() {
        // 30 fps over RTMP: 33/34 ms steps in 90 kHz ticks.
        let dts: Vec<i64> = (0..10).map(|i| (i * 1000 / 30) * 90).collect();
        assert_eq!(estimate_frame(&dts, 90_000), Some(fps(30, 1)));
        let dts: Vec<i64> = (0..10).map(|i| i * 3003).collect();
        assert_eq!(estimate_frame(&dts, 90_000), Some(fps(30000, 1001)));
        // An odd rate stays measured.
        let dts: Vec<i64> = (0..5).map(|i| i * 7000).collect();
        assert_eq!(
            estimate_frame(&dts, 90_000),
            Some(Seconds::new(28_000, 360_000))
        );
        assert_eq!(estimate_frame(&[5], 90_000), None);
        assert_eq!(estimate_frame(&[5, 5], 90_000), None);
        assert_eq!(estimate_frame(&[9, 5], 90_000), None);
    }

    #[test]
    fn audio_frames_from_the_codec() {
        // AAC LC 48 kHz stereo: object type 2, index 3, channels 2.
        let codec = Codec::aac(bytes::Bytes::from_static(&[0x11, 0x90])).expect("asc");
        assert_eq!(audio_frame(&codec), Some(Seconds::new(1024, 48_000)));
        let opus = Codec::Opus {
            sample_rate: 48_000,
            channels: 2,
        };
        assert_eq!(audio_frame(&opus), Some(Seconds::new(20, 1000)));
    }
}
