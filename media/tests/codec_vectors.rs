//! `Codec` constructors and RFC 6381 strings against real decoder configuration records
//! (see `testdata/gen.sh`). Sizes and frame rates are what ffprobe reports for the files
//! the records came from (`testdata/ffprobe.txt`); codec strings are what ffmpeg's DASH
//! muxer writes for H.264 and AV1 and GStreamer's `gst_codec_utils_caps_get_mime_codec`
//! for H.265 (`testdata/codecs.txt`; ffmpeg labels its H.265 sample entry `hev1`).

use bytes::Bytes;
use media::{Codec, FrameRate};
use proptest::prelude::*;

macro_rules! td {
    ($file:literal) => {
        Bytes::from_static(include_bytes!(concat!("../testdata/", $file)))
    };
}

fn fps(num: u32, den: u32) -> Option<FrameRate> {
    Some(FrameRate { num, den })
}

type Ctor = fn(Bytes) -> media::Result<Codec>;

struct Case {
    record: Bytes,
    ctor: Ctor,
    size: (u32, u32),
    fps: Option<FrameRate>,
    codec: &'static str,
}

fn cases() -> Vec<Case> {
    let c = |record, ctor: Ctor, size, fps, codec| Case {
        record,
        ctor,
        size,
        fps,
        codec,
    };
    vec![
        c(
            td!("h264_high_1080p2997.avcc"),
            Codec::h264,
            (1920, 1080),
            fps(30000, 1001),
            "avc1.640028",
        ),
        c(
            td!("h264_baseline_720p30.avcc"),
            Codec::h264,
            (1280, 720),
            fps(30, 1),
            "avc1.42c01f",
        ),
        c(
            td!("h264_interlaced_1080i.avcc"),
            Codec::h264,
            (1920, 1080),
            fps(30000, 1001),
            "avc1.640028",
        ),
        c(
            td!("h264_444_cqm_642x362.avcc"),
            Codec::h264,
            (642, 362),
            fps(25, 1),
            "avc1.f4001e",
        ),
        c(
            td!("h264_422_642x362.avcc"),
            Codec::h264,
            (642, 362),
            fps(24000, 1001),
            "avc1.7a001e",
        ),
        c(
            td!("h264_high10_cqm_360p60.avcc"),
            Codec::h264,
            (640, 360),
            fps(60, 1),
            "avc1.6e001f",
        ),
        c(
            td!("hevc_main_1080p2997.hvcc"),
            Codec::h265,
            (1920, 1080),
            fps(30000, 1001),
            "hvc1.1.6.L120.90",
        ),
        c(
            td!("hevc_main10_720p50_sl.hvcc"),
            Codec::h265,
            (1280, 720),
            fps(50, 1),
            "hvc1.2.4.L120.90",
        ),
        c(
            td!("hevc_rext444_642x362.hvcc"),
            Codec::h265,
            (642, 362),
            fps(24, 1),
            "hvc1.4.10.L63.9E.08",
        ),
        c(
            td!("hevc_main_422_10_320x240.hvcc"),
            Codec::h265,
            (320, 240),
            fps(25, 1),
            "hvc1.4.10.L60.9D.08",
        ),
        c(
            td!("hevc_scaling_list_416x240.hvcc"),
            Codec::h265,
            (416, 240),
            fps(24000, 1001),
            "hvc1.1.6.L60.90",
        ),
        // The encoders write no timing info in the AV1 sequence header.
        c(
            td!("av1_main_720p30.av1c"),
            Codec::av1,
            (1280, 720),
            None,
            "av01.0.05M.08",
        ),
        c(
            td!("av1_main10_642x362.av1c"),
            Codec::av1,
            (642, 362),
            None,
            "av01.0.01M.10",
        ),
        c(
            td!("av1_high444_320x240.av1c"),
            Codec::av1,
            (320, 240),
            None,
            "av01.1.00M.08",
        ),
    ]
}

#[test]
fn video_records() {
    for case in cases() {
        let codec = (case.ctor)(case.record.clone()).unwrap();
        assert_eq!(codec.dimensions(), Some(case.size), "{}", case.codec);
        assert_eq!(codec.fps(), case.fps, "{}", case.codec);
        assert_eq!(codec.rfc6381(), case.codec);
    }
}

#[test]
fn audio_records() {
    let aac = Codec::aac(td!("aac_lc_48000_mono.asc")).unwrap();
    assert_eq!(aac.audio(), Some((48000, 1)));
    assert_eq!(aac.rfc6381(), "mp4a.40.2");
    let aac = Codec::aac(td!("aac_lc_22050_stereo.asc")).unwrap();
    assert_eq!(aac.audio(), Some((22050, 2)));
    // HE-AAC v2 (hierarchical): output rate and channels after SBR and PS.
    let he = Codec::aac(Bytes::from_static(&[0xeb, 0x09, 0x88, 0x00])).unwrap();
    assert_eq!(he.audio(), Some((48000, 2)));
    assert_eq!(he.rfc6381(), "mp4a.40.29");
    let opus = Codec::Opus {
        sample_rate: 48000,
        channels: 2,
    };
    assert_eq!(opus.rfc6381(), "opus");
    // Channel configuration 0 without a usable layout.
    assert!(Codec::aac(Bytes::from_static(&[0x11, 0x80, 0x00, 0x00, 0x00, 0x00])).is_err());
}

#[test]
fn truncated_records_are_err() {
    for case in cases() {
        let full = (case.ctor)(case.record.clone()).unwrap();
        for n in 0..case.record.len() {
            // An avcC cut right before its optional high-profile extension is still a
            // whole record; anything else short is an error.
            if let Ok(c) = (case.ctor)(case.record.slice(..n)) {
                assert_eq!(c.dimensions(), full.dimensions(), "{} at {n}", case.codec);
                assert_eq!(c.fps(), full.fps(), "{} at {n}", case.codec);
                assert!(case.codec.starts_with("avc1"), "{} at {n}", case.codec);
            }
        }
    }
    for asc in [&[0x11u8, 0x88][..], &[]] {
        for n in 0..asc.len() {
            assert!(Codec::aac(Bytes::copy_from_slice(&asc[..n])).is_err());
        }
    }
}

#[test]
fn corrupted_records_never_panic() {
    // Every byte of every record, flipped a few ways: an error or a value, no panic.
    for case in cases() {
        for i in 0..case.record.len() {
            for x in [0x01u8, 0x10, 0x80, 0xff] {
                let mut v = case.record.to_vec();
                v[i] ^= x;
                let _ = (case.ctor)(Bytes::from(v)).map(|c| c.rfc6381());
            }
        }
    }
}

#[test]
fn hand_built_values_do_not_panic() {
    // The enum's fields are public: rfc6381 copes with records it cannot parse.
    let bad = Bytes::from_static(&[0xff]);
    let v = [
        Codec::H264 {
            avcc: bad.clone(),
            width: 1,
            height: 1,
            fps: None,
        },
        Codec::H265 {
            hvcc: bad.clone(),
            width: 1,
            height: 1,
            fps: None,
        },
        Codec::Av1 {
            av1c: bad.clone(),
            width: 1,
            height: 1,
            fps: None,
        },
        Codec::Aac {
            asc: bad,
            sample_rate: 1,
            channels: 1,
        },
    ];
    let names: Vec<String> = v.iter().map(Codec::rfc6381).collect();
    assert_eq!(names, ["avc1", "hvc1", "av01", "mp4a.40.2"]);
}

proptest! {
    #[test]
    fn random_records_never_panic(data in proptest::collection::vec(any::<u8>(), 0..96), prefix in 0usize..4) {
        // Start some inputs with a valid version byte to get past the first check.
        let mut v = data;
        if let Some(b) = v.first_mut() {
            *b = [*b, 0x01, 0x81, 0x12][prefix];
        }
        let b = Bytes::from(v);
        for ctor in [Codec::h264 as Ctor, Codec::h265, Codec::av1, Codec::aac] {
            let _ = ctor(b.clone()).map(|c| c.rfc6381());
        }
        let _ = media::h264::Sps::parse(&b);
        let _ = media::h265::Sps::parse(&b);
        let _ = media::aac::AdtsHeader::parse(&b);
        let _ = media::av1::SequenceHeader::parse(&b);
    }

    #[test]
    fn random_sps_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut h264 = vec![0x67];
        h264.extend_from_slice(&body);
        let _ = media::h264::Sps::parse(&h264);
        let mut h265 = vec![0x42, 0x01];
        h265.extend_from_slice(&body);
        let _ = media::h265::Sps::parse(&h265);
    }
}
