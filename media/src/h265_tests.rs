//! Tests of [`crate::h265`], against vectors from `testdata/` (see `gen.sh` there).

use super::*;
use crate::bits::{BitWriter, escape_rbsp};
use crate::nal::split_annexb;

/// Expected values are what ffprobe reports for the file each vector came from
/// (`testdata/ffprobe.txt`, written by gen.sh with `ffprobe -show_entries
/// stream=profile,level,width,height,coded_width,coded_height,r_frame_rate,pix_fmt`);
/// codec strings are GStreamer's (`testdata/codecs.txt`, from
/// `gst_codec_utils_caps_get_mime_codec`) with ffmpeg's `hev1` sample entry as `hvc1`.
struct Vector {
    name: &'static str,
    annexb: &'static [u8],
    hvcc: Option<&'static [u8]>,
    profile_idc: u8,
    level_idc: u8,
    chroma: u8,
    bit_depth: u8,
    size: (u32, u32),
    coded: (u32, u32),
    fps: (u32, u32),
    codec: &'static str,
}

macro_rules! td {
    ($name:literal, $ext:literal) => {
        include_bytes!(concat!("../testdata/", $name, ".", $ext))
    };
}

const VECTORS: &[Vector] = &[
    Vector {
        name: "hevc_main_1080p2997",
        annexb: td!("hevc_main_1080p2997", "h265"),
        hvcc: Some(td!("hevc_main_1080p2997", "hvcc")),
        profile_idc: 1,
        level_idc: 120,
        chroma: 1,
        bit_depth: 8,
        size: (1920, 1080),
        coded: (1920, 1088),
        fps: (30000, 1001),
        codec: "hvc1.1.6.L120.90",
    },
    Vector {
        name: "hevc_main10_720p50_sl",
        annexb: td!("hevc_main10_720p50_sl", "h265"),
        hvcc: Some(td!("hevc_main10_720p50_sl", "hvcc")),
        profile_idc: 2,
        level_idc: 120,
        chroma: 1,
        bit_depth: 10,
        size: (1280, 720),
        coded: (1280, 720),
        fps: (50, 1),
        codec: "hvc1.2.4.L120.90",
    },
    Vector {
        name: "hevc_rext444_642x362",
        annexb: td!("hevc_rext444_642x362", "h265"),
        hvcc: Some(td!("hevc_rext444_642x362", "hvcc")),
        profile_idc: 4,
        level_idc: 63,
        chroma: 3,
        bit_depth: 8,
        size: (642, 362),
        coded: (656, 368),
        fps: (24, 1),
        codec: "hvc1.4.10.L63.9E.08",
    },
    Vector {
        name: "hevc_main_422_10_320x240",
        annexb: td!("hevc_main_422_10_320x240", "h265"),
        hvcc: Some(td!("hevc_main_422_10_320x240", "hvcc")),
        profile_idc: 4,
        level_idc: 60,
        chroma: 2,
        bit_depth: 10,
        size: (320, 240),
        coded: (320, 240),
        fps: (25, 1),
        codec: "hvc1.4.10.L60.9D.08",
    },
    Vector {
        name: "hevc_scaling_list_416x240",
        annexb: td!("hevc_scaling_list_416x240", "h265"),
        hvcc: Some(td!("hevc_scaling_list_416x240", "hvcc")),
        profile_idc: 1,
        level_idc: 60,
        chroma: 1,
        bit_depth: 8,
        size: (416, 240),
        coded: (416, 240),
        fps: (24000, 1001),
        codec: "hvc1.1.6.L60.90",
    },
    Vector {
        name: "hevc_rps_1080p2997",
        annexb: td!("hevc_rps_1080p2997", "h265"),
        hvcc: None,
        profile_idc: 1,
        level_idc: 120,
        chroma: 1,
        bit_depth: 8,
        size: (1920, 1080),
        coded: (1920, 1088),
        fps: (30000, 1001),
        codec: "hvc1.1.6.L120.90",
    },
];

fn parameter_sets(annexb: &[u8]) -> (Vec<Bytes>, Vec<Bytes>, Vec<Bytes>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for nal in split_annexb(annexb) {
        let b = Bytes::copy_from_slice(nal);
        match nal_type(nal) {
            Some(NAL_VPS) => out.0.push(b),
            Some(NAL_SPS) => out.1.push(b),
            Some(NAL_PPS) => out.2.push(b),
            t => panic!("unexpected NAL type {t:?}"),
        }
    }
    out
}

#[test]
fn real_sps_vectors() {
    for v in VECTORS {
        let (vps, sps_units, pps) = parameter_sets(v.annexb);
        assert_eq!(
            (vps.len(), sps_units.len(), pps.len()),
            (1, 1, 1),
            "{}",
            v.name
        );
        let sps = Sps::parse(&sps_units[0]).unwrap();
        assert!(sps.vui_reached, "{}", v.name);
        assert_eq!(sps.general.profile_idc, v.profile_idc, "{}", v.name);
        assert_eq!(sps.general.level_idc, v.level_idc, "{}", v.name);
        assert_eq!(sps.chroma_format_idc, v.chroma, "{}", v.name);
        assert_eq!(sps.bit_depth_luma, v.bit_depth, "{}", v.name);
        assert_eq!(sps.bit_depth_chroma, v.bit_depth, "{}", v.name);
        assert_eq!((sps.width, sps.height), v.size, "{}", v.name);
        assert_eq!((sps.coded_width, sps.coded_height), v.coded, "{}", v.name);
        let fps = sps.fps.unwrap();
        assert_eq!((fps.num, fps.den), v.fps, "{}", v.name);
        assert_eq!(sps.rfc6381(), v.codec, "{}", v.name);

        let built = HevcConfig::from_parameter_sets(&vps, &sps_units, &pps).unwrap();
        assert_eq!(built.rfc6381(), v.codec);
        assert_eq!(HevcConfig::parse(&built.to_bytes()).unwrap(), built);
        assert_eq!(built.first_sps().unwrap(), sps);
        let Some(hvcc) = v.hvcc else { continue };
        let cfg = HevcConfig::parse(hvcc).unwrap();
        assert_eq!(&cfg.to_bytes()[..], hvcc, "{}", v.name);
        assert_eq!(cfg.nalus(NAL_VPS).cloned().collect::<Vec<_>>(), vps);
        assert_eq!(cfg.nalus(NAL_SPS).cloned().collect::<Vec<_>>(), sps_units);
        assert_eq!(cfg.nalus(NAL_PPS).cloned().collect::<Vec<_>>(), pps);
        assert_eq!(cfg.nal_length_size, 4);
        assert_eq!(cfg.rfc6381(), v.codec, "{}", v.name);
        // What ffmpeg derived for its record, we derive from the same parameter sets.
        assert_eq!(built.general, cfg.general, "{}", v.name);
        assert_eq!(
            (
                built.chroma_format_idc,
                built.bit_depth_luma,
                built.bit_depth_chroma
            ),
            (
                cfg.chroma_format_idc,
                cfg.bit_depth_luma,
                cfg.bit_depth_chroma
            )
        );
        assert_eq!(built.num_temporal_layers, cfg.num_temporal_layers);
        assert_eq!(built.temporal_id_nested, cfg.temporal_id_nested);
    }
}

#[test]
fn vector_details() {
    let sps = |i: usize| Sps::parse(&parameter_sets(VECTORS[i].annexb).1[0]).unwrap();
    let main = sps(0);
    assert_eq!(main.general.constraint_flags, 0x9000_0000_0000);
    assert_eq!(main.general.profile_compatibility_flags, 0x6000_0000);
    assert!(!main.general.tier);
    assert_eq!(main.num_short_term_ref_pic_sets, 0);
    assert_eq!(main.timing.unwrap().time_scale, 30000);
    assert!(sps(1).scaling_list_enabled);
    assert!(sps(4).scaling_list_enabled);
    let rps = sps(5);
    assert_eq!(rps.num_short_term_ref_pic_sets, 5);
    assert!(rps.long_term_ref_pics_present);
}

#[test]
fn truncated_inputs_are_err() {
    for v in VECTORS {
        let (_, sps_units, _) = parameter_sets(v.annexb);
        let nal = &sps_units[0];
        let full = Sps::parse(nal).unwrap();
        for n in 0..nal.len() {
            // Fields after the VUI timing info are not read: a cut there parses the
            // same; any other cut is an error.
            match Sps::parse(&nal[..n]) {
                Err(Error::Truncated { what: WHAT_SPS, .. }) => {}
                Ok(s) => assert_eq!(s, full, "{} cut at {n}", v.name),
                Err(e) => panic!("{} cut at {n}: {e}", v.name),
            }
        }
        if let Some(hvcc) = v.hvcc {
            for n in 0..hvcc.len() {
                let r = HevcConfig::parse(&hvcc[..n]);
                assert!(
                    matches!(r, Err(Error::Truncated { .. })),
                    "{} cut at {n}: {r:?}",
                    v.name
                );
            }
        }
    }
}

/// An SPS with 3 sub-layers (sub-layer profile and level present), ordering info for
/// each, explicit scaling lists, PCM, two short-term sets (the second predicted from the
/// first), a conformance window and VUI with timing and default display window.
fn synthetic_sps(nal_header: [u8; 2], num_negative_pics: u32) -> Vec<u8> {
    let mut w = BitWriter::new();
    w.write_bits(4, 0); // vps id
    w.write_bits(3, 2); // max_sub_layers_minus1
    w.write_bit(false);
    // general profile_tier_level: space 1, high tier, profile 2
    w.write_bits(2, 1);
    w.write_bit(true);
    w.write_bits(5, 2);
    w.write_bits(32, 0x2000_0000);
    w.write_bits(48, 0);
    w.write_bits(8, 153);
    w.write_bits(4, 0b1110); // sub-layer 0: profile+level, sub-layer 1: profile only
    w.write_bits(12, 0); // reserved_zero_2bits x 6
    w.write_bits(88, 0x0123_4567_89ab_cdef_u64);
    w.write_bits(8, 90);
    w.write_bits(88, 0);
    w.write_ue(0); // sps id
    w.write_ue(1); // 4:2:0
    w.write_ue(3840);
    w.write_ue(2176);
    w.write_bit(true); // conformance window
    w.write_ue(0);
    w.write_ue(0);
    w.write_ue(0);
    w.write_ue(8); // 16 luma rows at the bottom
    w.write_ue(2); // bit depths 10
    w.write_ue(2);
    w.write_ue(4); // log2_max_pic_order_cnt_lsb_minus4
    w.write_bit(true); // ordering info for all sub-layers
    for _ in 0..3 {
        w.write_ue(4);
        w.write_ue(2);
        w.write_ue(0);
    }
    for v in [0, 3, 0, 3, 2, 2] {
        w.write_ue(v);
    }
    w.write_bit(true); // scaling_list_enabled_flag
    w.write_bit(true); // sps_scaling_list_data_present_flag
    for size_id in 0..4u32 {
        let step = if size_id == 3 { 3 } else { 1 };
        for matrix_id in (0..6).step_by(step) {
            let explicit = (matrix_id + size_id as usize).is_multiple_of(2);
            w.write_bit(explicit);
            if explicit {
                if size_id > 1 {
                    w.write_se(-3);
                }
                for i in 0..64.min(1 << (4 + (size_id << 1))) {
                    w.write_se(if i % 3 == 0 { 5 } else { -2 });
                }
            } else {
                w.write_ue(u32::from(matrix_id > 0));
            }
        }
    }
    w.write_bits(2, 0b11); // amp, sao
    w.write_bit(true); // pcm
    w.write_bits(8, 0x77);
    w.write_ue(0);
    w.write_ue(1);
    w.write_bit(false);
    w.write_ue(2); // num_short_term_ref_pic_sets
    w.write_ue(num_negative_pics);
    w.write_ue(0);
    for i in 0..num_negative_pics {
        w.write_ue(i % 2);
        w.write_bit(true);
    }
    w.write_bit(true); // inter_ref_pic_set_prediction_flag
    w.write_bit(false);
    w.write_ue(0);
    for j in 0..=num_negative_pics {
        // alternate used, (not used, use_delta 1), (not used, use_delta 0)
        match j % 3 {
            0 => w.write_bit(true),
            1 => w.write_bits(2, 0b01),
            _ => w.write_bits(2, 0b00),
        }
    }
    w.write_bit(false); // long_term_ref_pics_present_flag
    w.write_bits(2, 0b11);
    w.write_bit(true); // vui
    w.write_bit(true); // aspect_ratio_info_present_flag
    w.write_bits(8, 2); // 12:11
    w.write_bit(false);
    w.write_bit(true); // video_signal_type_present_flag
    w.write_bits(3, 5);
    w.write_bit(false);
    w.write_bit(true);
    w.write_bits(24, 0x09_10_09);
    w.write_bit(false);
    w.write_bits(3, 0);
    w.write_bit(true); // default_display_window_flag
    for _ in 0..4 {
        w.write_ue(7);
    }
    w.write_bit(true); // timing
    w.write_bits(32, 1001);
    w.write_bits(32, 60000);
    w.write_bit(true);
    w.write_ue(0);
    w.write_bit(false); // hrd
    w.write_trailing_bits();
    let mut nal = nal_header.to_vec();
    nal.extend(escape_rbsp(&w.into_bytes()));
    nal
}

#[test]
fn synthetic_sps_reaches_vui() {
    let sps = Sps::parse(&synthetic_sps([0x42, 0x01], 4)).unwrap();
    assert_eq!(sps.max_sub_layers, 3);
    assert_eq!(sps.general.profile_space, 1);
    assert!(sps.general.tier);
    assert_eq!(sps.general.level_idc, 153);
    assert_eq!((sps.width, sps.height), (3840, 2160));
    assert_eq!(sps.bit_depth_luma, 10);
    assert_eq!(sps.num_short_term_ref_pic_sets, 2);
    assert!(sps.vui_reached);
    assert_eq!(sps.sar, Some((12, 11)));
    assert_eq!(sps.colour.unwrap().transfer_characteristics, 16);
    assert_eq!(
        sps.fps,
        Some(FrameRate {
            num: 60000,
            den: 1001
        })
    );
    assert_eq!(sps.rfc6381(), "hvc1.A2.4.H153");
    for n in 0..20 {
        let nal = synthetic_sps([0x42, 0x01], n);
        let r = Sps::parse(&nal).unwrap();
        if n <= 16 {
            assert_eq!(
                r.fps,
                Some(FrameRate {
                    num: 60000,
                    den: 1001
                }),
                "{n}"
            );
        } else {
            // Out of range past the bit depths: size kept, no frame rate.
            assert!(!r.vui_reached && r.fps.is_none(), "{n}");
            assert_eq!((r.width, r.height), (3840, 2160));
        }
    }
}

#[test]
fn sps_rejects() {
    assert!(matches!(
        Sps::parse(&synthetic_sps([0x42, 0x09], 1)),
        Err(Error::Unsupported { .. })
    ));
    assert!(matches!(
        Sps::parse(&synthetic_sps([0x40, 0x01], 1)),
        Err(Error::Invalid {
            field: "nal_unit_type",
            ..
        })
    ));
    assert!(Sps::parse(&[0x42]).is_err());
    // A record whose first SPS belongs to layer 1: the base-layer one is used.
    let (vps, sps, pps) = parameter_sets(VECTORS[0].annexb);
    let mut cfg = HevcConfig::from_parameter_sets(&vps, &sps, &pps).unwrap();
    let layer1 = Bytes::from(synthetic_sps([0x42, 0x09], 1));
    cfg.arrays[1].nalus.insert(0, layer1.clone());
    assert_eq!(cfg.first_sps().unwrap().width, 1920);
    cfg.arrays[1].nalus = vec![layer1];
    assert!(cfg.first_sps().is_err());
}

#[test]
fn codec_strings() {
    let mut ptl = ProfileTierLevel {
        profile_space: 0,
        tier: false,
        profile_idc: 1,
        profile_compatibility_flags: 0x6000_0000,
        constraint_flags: 0xb000_0000_0000,
        level_idc: 93,
    };
    assert_eq!(ptl.rfc6381("hvc1"), "hvc1.1.6.L93.B0");
    ptl.constraint_flags = 0x0000_0000_0001;
    assert_eq!(ptl.rfc6381("hev1"), "hev1.1.6.L93.00.00.00.00.00.01");
    ptl.constraint_flags = 0;
    ptl.profile_space = 3;
    ptl.tier = true;
    ptl.profile_compatibility_flags = 0xffff_fffe;
    assert_eq!(ptl.rfc6381("hvc1"), "hvc1.C1.7FFFFFFF.H93");
}

#[test]
fn hvcc_errors() {
    let mut hvcc = VECTORS[0].hvcc.unwrap().to_vec();
    hvcc[0] = 2;
    assert!(matches!(
        HevcConfig::parse(&hvcc),
        Err(Error::Invalid {
            field: "configurationVersion",
            ..
        })
    ));
    hvcc[0] = 1;
    hvcc[21] = (hvcc[21] & !3) | 2;
    assert!(HevcConfig::parse(&hvcc).is_err());
    let (vps, sps, pps) = parameter_sets(VECTORS[0].annexb);
    assert!(HevcConfig::from_parameter_sets(&vps, &[], &pps).is_err());
    assert!(HevcConfig::from_parameter_sets(&sps, &sps, &pps).is_err());
}

#[test]
fn nal_helpers() {
    // IDR_N_LP, CRA, TRAIL_R, VPS
    assert!(is_irap(&[20 << 1, 1]) && is_idr(&[20 << 1, 1]));
    assert!(is_irap(&[21 << 1, 1]) && !is_idr(&[21 << 1, 1]));
    assert!(!is_irap(&[1 << 1, 1]) && is_vcl(&[1 << 1, 1]));
    assert!(!is_vcl(&[32 << 1, 1]) && !is_vcl(&[]));
    assert!(contains_irap(&[0, 0, 0, 2, 0x02, 1, 0, 0, 0, 2, 0x28, 1]));
    assert!(!contains_irap(&[0, 0, 0, 2, 0x02, 1, 0, 0, 0, 9, 0x28, 1]));
}
