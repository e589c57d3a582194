//! Tests of [`crate::h264`], against vectors from `testdata/` (see `gen.sh` there).
use super::*;
use crate::bits::{BitWriter, escape_rbsp};
use crate::nal::split_annexb;

/// A vector from `testdata/` (see `gen.sh` there) and the values ffprobe reports for
/// the file it came from (`testdata/ffprobe.txt`, written by
/// `ffprobe -show_entries stream=profile,level,width,height,r_frame_rate,pix_fmt,...`),
/// with the codec string GStreamer and ffmpeg's DASH muxer give (`codecs.txt`).
struct Vector {
    name: &'static str,
    annexb: &'static [u8],
    avcc: &'static [u8],
    profile_idc: u8,
    level_idc: u8,
    chroma: u8,
    bit_depth: u8,
    width: u32,
    height: u32,
    fps: (u32, u32),
    frame_mbs_only: bool,
    codec: &'static str,
}

macro_rules! td {
    ($name:literal, $ext:literal) => {
        include_bytes!(concat!("../testdata/", $name, ".", $ext))
    };
}

const VECTORS: &[Vector] = &[
    Vector {
        name: "h264_high_1080p2997",
        annexb: td!("h264_high_1080p2997", "h264"),
        avcc: td!("h264_high_1080p2997", "avcc"),
        profile_idc: 100,
        level_idc: 40,
        chroma: 1,
        bit_depth: 8,
        width: 1920,
        height: 1080,
        fps: (30000, 1001),
        frame_mbs_only: true,
        codec: "avc1.640028",
    },
    Vector {
        name: "h264_baseline_720p30",
        annexb: td!("h264_baseline_720p30", "h264"),
        avcc: td!("h264_baseline_720p30", "avcc"),
        profile_idc: 66,
        level_idc: 31,
        chroma: 1,
        bit_depth: 8,
        width: 1280,
        height: 720,
        fps: (30, 1),
        frame_mbs_only: true,
        codec: "avc1.42c01f",
    },
    Vector {
        name: "h264_interlaced_1080i",
        annexb: td!("h264_interlaced_1080i", "h264"),
        avcc: td!("h264_interlaced_1080i", "avcc"),
        profile_idc: 100,
        level_idc: 40,
        chroma: 1,
        bit_depth: 8,
        width: 1920,
        height: 1080,
        fps: (30000, 1001),
        frame_mbs_only: false,
        codec: "avc1.640028",
    },
    Vector {
        name: "h264_444_cqm_642x362",
        annexb: td!("h264_444_cqm_642x362", "h264"),
        avcc: td!("h264_444_cqm_642x362", "avcc"),
        profile_idc: 244,
        level_idc: 30,
        chroma: 3,
        bit_depth: 8,
        width: 642,
        height: 362,
        fps: (25, 1),
        frame_mbs_only: true,
        codec: "avc1.f4001e",
    },
    Vector {
        name: "h264_422_642x362",
        annexb: td!("h264_422_642x362", "h264"),
        avcc: td!("h264_422_642x362", "avcc"),
        profile_idc: 122,
        level_idc: 30,
        chroma: 2,
        bit_depth: 8,
        width: 642,
        height: 362,
        fps: (24000, 1001),
        frame_mbs_only: true,
        codec: "avc1.7a001e",
    },
    Vector {
        name: "h264_custom_cqm_352x288",
        annexb: td!("h264_custom_cqm_352x288", "h264"),
        avcc: td!("h264_custom_cqm_352x288", "avcc"),
        profile_idc: 100,
        level_idc: 12,
        chroma: 1,
        bit_depth: 8,
        width: 352,
        height: 288,
        fps: (15, 1),
        frame_mbs_only: true,
        codec: "avc1.64000c",
    },
    Vector {
        name: "h264_high10_cqm_360p60",
        annexb: td!("h264_high10_cqm_360p60", "h264"),
        avcc: td!("h264_high10_cqm_360p60", "avcc"),
        profile_idc: 110,
        level_idc: 31,
        chroma: 1,
        bit_depth: 10,
        width: 640,
        height: 360,
        fps: (60, 1),
        frame_mbs_only: true,
        codec: "avc1.6e001f",
    },
];

#[test]
fn real_sps_vectors() {
    for v in VECTORS {
        let nals: Vec<&[u8]> = split_annexb(v.annexb).collect();
        assert_eq!(nals.len(), 2, "{}", v.name);
        assert_eq!(nal_type(nals[0]), Some(NAL_SPS));
        assert_eq!(nal_type(nals[1]), Some(NAL_PPS));
        let sps = Sps::parse(nals[0]).unwrap();
        assert_eq!(sps.profile_idc, v.profile_idc, "{}", v.name);
        assert_eq!(sps.level_idc, v.level_idc, "{}", v.name);
        assert_eq!(sps.chroma_format_idc, v.chroma, "{}", v.name);
        assert_eq!(sps.bit_depth_luma, v.bit_depth, "{}", v.name);
        assert_eq!(sps.bit_depth_chroma, v.bit_depth, "{}", v.name);
        assert_eq!((sps.width, sps.height), (v.width, v.height), "{}", v.name);
        assert_eq!(sps.coded_width, v.width.div_ceil(16) * 16, "{}", v.name);
        let mb_rows = if v.frame_mbs_only { 16 } else { 32 };
        assert_eq!(sps.coded_height, v.height.div_ceil(mb_rows) * mb_rows);
        assert_eq!(sps.frame_mbs_only, v.frame_mbs_only, "{}", v.name);
        let fps = sps.fps.unwrap();
        assert_eq!((fps.num, fps.den), v.fps, "{}", v.name);
        assert_eq!(sps.rfc6381(), v.codec, "{}", v.name);

        let cfg = AvcConfig::parse(v.avcc).unwrap();
        assert_eq!(cfg.sps, vec![Bytes::copy_from_slice(nals[0])], "{}", v.name);
        assert_eq!(cfg.pps, vec![Bytes::copy_from_slice(nals[1])], "{}", v.name);
        assert_eq!(cfg.nal_length_size, 4);
        assert_eq!(
            (cfg.profile_idc, cfg.profile_compat, cfg.level_idc),
            (sps.profile_idc, sps.constraint_flags, sps.level_idc)
        );
        assert_eq!(&cfg.to_bytes()[..], v.avcc, "{}", v.name);
        let built = AvcConfig::from_parameter_sets(&cfg.sps, &cfg.pps).unwrap();
        assert_eq!(&built.to_bytes()[..], v.avcc, "{}", v.name);
        assert_eq!(cfg.first_sps().unwrap(), sps);
    }
}

#[test]
fn vector_details() {
    let sps = Sps::parse(&AvcConfig::parse(VECTORS[0].avcc).unwrap().sps[0]).unwrap();
    assert_eq!((sps.coded_width, sps.coded_height), (1920, 1088));
    assert_eq!(
        sps.timing,
        Some(TimingInfo {
            num_units_in_tick: 1001,
            time_scale: 60000,
            fixed_frame_rate: false
        })
    );
    assert_eq!(sps.sar, Some((1, 1)));
    // x264 sends its matrices (cqm=jvt) in the PPS, not the SPS.
    let cqm = Sps::parse(&AvcConfig::parse(VECTORS[3].avcc).unwrap().sps[0]).unwrap();
    assert!(!cqm.scaling_matrix_present);
    let baseline = AvcConfig::parse(VECTORS[1].avcc).unwrap();
    assert_eq!(baseline.high, None);
    let high = AvcConfig::parse(VECTORS[6].avcc).unwrap().high.unwrap();
    assert_eq!((high.chroma_format, high.bit_depth_luma), (1, 10));
}

#[test]
fn truncated_inputs_are_err() {
    for v in VECTORS {
        let sps_nal = split_annexb(v.annexb).next().unwrap();
        let full = Sps::parse(sps_nal).unwrap();
        for n in 0..sps_nal.len() {
            // Fields after the timing info are not read, so a cut there parses
            // the same; a cut anywhere before must be an error.
            match Sps::parse(&sps_nal[..n]) {
                Err(Error::Truncated { what: WHAT_SPS, .. }) => {}
                Ok(s) => assert_eq!(s, full, "{} cut at {n}", v.name),
                Err(e) => panic!("{} cut at {n}: {e}", v.name),
            }
        }
        let cfg = AvcConfig::parse(v.avcc).unwrap();
        // Without the optional high-profile extension the record is complete.
        let base_len = 7 + cfg
            .sps
            .iter()
            .chain(&cfg.pps)
            .map(|u| u.len() + 2)
            .sum::<usize>();
        for n in 0..v.avcc.len() {
            let r = AvcConfig::parse(&v.avcc[..n]);
            if n == base_len {
                assert_eq!(r.unwrap().high, None);
            } else {
                assert!(
                    matches!(r, Err(Error::Truncated { .. })),
                    "{} cut at {n}: {r:?}",
                    v.name
                );
            }
        }
    }
}

/// Writes an SPS with the given body writer.
fn sps_nal(body: impl FnOnce(&mut BitWriter)) -> Vec<u8> {
    let mut w = BitWriter::new();
    body(&mut w);
    w.write_trailing_bits();
    let mut nal = vec![0x67];
    nal.extend(escape_rbsp(&w.into_bytes()));
    nal
}

#[test]
fn synthetic_scaling_lists_poc1_and_field_cropping() {
    // High 4:4:4 with explicit 4x4 and 8x8 lists (12 lists for 4:4:4), POC type 1,
    // field coding, and a crop: the size read after them proves they were skipped
    // correctly.
    let nal = sps_nal(|w| {
        w.write_bits(8, 244);
        w.write_bits(8, 0);
        w.write_bits(8, 40);
        w.write_ue(0); // sps id
        w.write_ue(3); // chroma_format_idc
        w.write_bit(false); // separate_colour_plane_flag
        w.write_ue(2); // bit_depth_luma_minus8
        w.write_ue(2);
        w.write_bit(false);
        w.write_bit(true); // seq_scaling_matrix_present_flag
        for i in 0..12 {
            let present = i % 3 != 2;
            w.write_bit(present);
            if present {
                let size = if i < 6 { 16 } else { 64 };
                let mut last = 8;
                for j in 0..size {
                    // Deltas that wander, then one that ends list 4 early by
                    // bringing nextScale to 0.
                    if i == 4 && j == 5 {
                        w.write_se(-last);
                        break;
                    }
                    let delta = if j % 2 == 0 { 3 } else { -2 };
                    w.write_se(delta);
                    last += delta;
                }
            }
        }
        w.write_ue(0); // log2_max_frame_num_minus4
        w.write_ue(1); // pic_order_cnt_type
        w.write_bit(false);
        w.write_se(-3);
        w.write_se(1);
        w.write_ue(3);
        for k in 0..3 {
            w.write_se(k * 2 - 1);
        }
        w.write_ue(4); // max_num_ref_frames
        w.write_bit(false);
        w.write_ue(119); // 1920
        w.write_ue(33); // 34 map units = 68 MB rows as fields = 1088
        w.write_bit(false); // frame_mbs_only_flag
        w.write_bit(true); // mb_adaptive_frame_field_flag
        w.write_bit(true);
        w.write_bit(true); // frame_cropping_flag
        w.write_ue(1); // left: CropUnitX = 1 for 4:4:4
        w.write_ue(3);
        w.write_ue(0);
        w.write_ue(4); // bottom: CropUnitY = 2 for fields
        w.write_bit(true); // vui
        w.write_bit(true);
        w.write_bits(8, 255);
        w.write_bits(16, 4);
        w.write_bits(16, 3);
        w.write_bit(false);
        w.write_bit(true); // video_signal_type_present_flag
        w.write_bits(3, 5);
        w.write_bit(true);
        w.write_bit(true);
        w.write_bits(8, 9);
        w.write_bits(8, 16);
        w.write_bits(8, 9);
        w.write_bit(true); // chroma_loc_info_present_flag
        w.write_ue(1);
        w.write_ue(2);
        w.write_bit(true); // timing_info_present_flag
        w.write_bits(32, 1);
        w.write_bits(32, 100);
        w.write_bit(true);
    });
    let sps = Sps::parse(&nal).unwrap();
    assert!(sps.scaling_matrix_present);
    assert_eq!(sps.bit_depth_luma, 10);
    assert_eq!(sps.pic_order_cnt_type, 1);
    assert_eq!(sps.max_num_ref_frames, 4);
    assert_eq!((sps.coded_width, sps.coded_height), (1920, 1088));
    assert_eq!((sps.width, sps.height), (1916, 1080));
    assert_eq!(sps.sar, Some((4, 3)));
    assert!(sps.full_range);
    assert_eq!(
        sps.colour,
        Some(ColourDescription {
            colour_primaries: 9,
            transfer_characteristics: 16,
            matrix_coefficients: 9
        })
    );
    assert_eq!(sps.fps, Some(FrameRate { num: 50, den: 1 }));
}

#[test]
fn invalid_sps_values() {
    assert!(matches!(
        Sps::parse(&[0x68, 0x64, 0, 0x28]),
        Err(Error::Invalid {
            field: "nal_unit_type",
            ..
        })
    ));
    // Cropping more than the picture is invalid, not an underflow.
    let nal = sps_nal(|w| {
        w.write_bits(24, 0x42_c0_1e);
        w.write_ue(0);
        w.write_ue(0);
        w.write_ue(2);
        w.write_ue(1);
        w.write_bit(false);
        w.write_ue(0); // 16 wide
        w.write_ue(0);
        w.write_bit(true);
        w.write_bit(true);
        w.write_bit(true);
        w.write_ue(4); // 8 px left
        w.write_ue(4); // 8 px right
        w.write_ue(0);
        w.write_ue(0);
        w.write_bit(false);
    });
    assert!(matches!(Sps::parse(&nal), Err(Error::Invalid { .. })));
    // No VUI: no fps.
    let nal = sps_nal(|w| {
        w.write_bits(24, 0x42_c0_1e);
        w.write_ue(0);
        w.write_ue(0);
        w.write_ue(2);
        w.write_ue(1);
        w.write_bit(false);
        w.write_ue(39);
        w.write_ue(29);
        w.write_bit(true);
        w.write_bit(true);
        w.write_bit(false);
        w.write_bit(false);
    });
    let sps = Sps::parse(&nal).unwrap();
    assert_eq!((sps.width, sps.height, sps.fps), (640, 480, None));
    assert_eq!(sps.rfc6381(), "avc1.42c01e");
}

#[test]
fn avcc_errors_and_length_sizes() {
    let mut avcc = VECTORS[1].avcc.to_vec();
    avcc[0] = 0;
    assert!(matches!(
        AvcConfig::parse(&avcc),
        Err(Error::Invalid {
            field: "configurationVersion",
            ..
        })
    ));
    avcc[0] = 1;
    for (bits, size) in [(0u8, Some(1u8)), (1, Some(2)), (2, None), (3, Some(4))] {
        avcc[4] = 0xfc | bits;
        let r = AvcConfig::parse(&avcc);
        assert_eq!(r.ok().map(|c| c.nal_length_size), size);
    }
    let sps = Bytes::copy_from_slice(split_annexb(VECTORS[1].annexb).next().unwrap());
    assert!(AvcConfig::from_parameter_sets(&[], &[]).is_err());
    assert!(
        AvcConfig::from_parameter_sets(std::slice::from_ref(&sps), std::slice::from_ref(&sps))
            .is_err()
    );
    assert!(AvcConfig::from_parameter_sets(&[sps], &[]).is_ok());
}

#[test]
fn nal_helpers() {
    assert!(is_idr(&[0x65, 0x88]));
    assert!(!is_idr(&[0x41, 0x9a]));
    assert!(is_vcl(&[0x41]) && !is_vcl(&[0x67]) && !is_vcl(&[]));
    assert_eq!(nal_type(&[]), None);
    let au = crate::nal::annexb_to_length_prefixed(td!("h264_au_160x96", "h264"));
    assert!(contains_idr(&au));
    assert!(!contains_idr(&au[..au.len() - 1]) || au.len() < 5);
    assert!(!contains_idr(&[0, 0, 0, 2, 0x41, 0x9a]));
}

#[test]
fn annexb_matches_mp4_sample() {
    // ffmpeg's h264_mp4toannexb output for a one-frame MP4 whose sample is
    // `.sample`: the same NAL units, with SPS and PPS from the avcC put in front.
    let annexb = td!("h264_au_160x96", "h264");
    let sample = td!("h264_au_160x96", "sample");
    let cfg = AvcConfig::parse(td!("h264_au_160x96", "avcc")).unwrap();
    let lp = crate::nal::annexb_to_length_prefixed(annexb);
    let mut want = BytesMut::new();
    for ps in cfg.sps.iter().chain(&cfg.pps) {
        want.put_u32(ps.len() as u32);
        want.extend_from_slice(ps);
    }
    // ffmpeg inserts the parameter sets before the first VCL unit (after the SEI).
    let units: Vec<&[u8]> = crate::nal::iter_length_prefixed(sample, 4)
        .collect::<Result<_>>()
        .unwrap();
    let mut got_units: Vec<&[u8]> = crate::nal::iter_length_prefixed(&lp, 4)
        .collect::<Result<_>>()
        .unwrap();
    got_units.retain(|u| !matches!(nal_type(u), Some(NAL_SPS | NAL_PPS)));
    assert_eq!(got_units, units);
    assert_eq!(
        crate::nal::split_annexb(annexb)
            .filter(|u| matches!(nal_type(u), Some(NAL_SPS | NAL_PPS)))
            .count(),
        2
    );
    let back = crate::nal::length_prefixed_to_annexb(sample, cfg.nal_length_size).unwrap();
    assert_eq!(
        crate::nal::annexb_to_length_prefixed(&back),
        Bytes::copy_from_slice(sample)
    );
}
