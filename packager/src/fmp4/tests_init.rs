//! Init segments decoded with `mp4-atom` in strict mode (unknown or malformed boxes are
//! errors) and checked field by field against the input records, which are parsed with
//! `media`'s own parsers or compared byte for byte.
use bytes::Bytes;
use media::{Codec, TrackInfo};
use mp4_atom::{Codec as Entry, Decode, Ftyp, Header, Moov, Trak};

use super::*;
use crate::Error;

const H264_HIGH: &[u8] = include_bytes!("../../testdata/h264_high_1080p2997.avcc");
const H264_BASELINE: &[u8] = include_bytes!("../../testdata/h264_baseline_720p30.avcc");
const H264_SAR: &[u8] = include_bytes!("../../testdata/h264_main_480x360_sar4x3.avcc");
const HEVC_MAIN10: &[u8] = include_bytes!("../../testdata/hevc_main10_720p50_sl.hvcc");
const AV1_MAIN10: &[u8] = include_bytes!("../../testdata/av1_main10_642x362.av1c");
const AAC_48K_MONO: &[u8] = include_bytes!("../../testdata/aac_lc_48000_mono.asc");
const AAC_22K_STEREO: &[u8] = include_bytes!("../../testdata/aac_lc_22050_stereo.asc");

fn track(codec: Codec, timescale: u32) -> TrackInfo {
    TrackInfo {
        id: 7,
        codec,
        timescale,
    }
}

/// Decodes `ftyp` then `moov` and checks nothing follows.
fn decode(init: &Bytes) -> (Ftyp, Moov) {
    let mut buf = init.clone();
    let ftyp = Ftyp::decode(&mut buf).expect("ftyp decodes");
    let moov = Moov::decode(&mut buf).expect("moov decodes (strict)");
    assert!(buf.is_empty(), "{} bytes after moov", buf.len());
    (ftyp, moov)
}

/// The child box types of a container body, in order.
fn children(mut body: &[u8]) -> Vec<String> {
    let mut kinds = Vec::new();
    while !body.is_empty() {
        let header = Header::decode(&mut body).expect("box header");
        let size = header.size.expect("sized box");
        kinds.push(header.kind.to_string());
        body = &body[size..];
    }
    kinds
}

/// The body of the first box of type `kind` on the path `path` from the top level.
fn body<'a>(mut data: &'a [u8], path: &[&[u8; 4]]) -> &'a [u8] {
    for kind in path {
        loop {
            let mut rest = data;
            let header = Header::decode(&mut rest).expect("box header");
            let size = header.size.expect("sized box");
            if header.kind == mp4_atom::FourCC::new(kind) {
                data = &rest[..size];
                break;
            }
            data = &rest[size..];
        }
    }
    data
}

/// The body of the box whose type is `kind`, found by scanning (for boxes inside
/// sample entries).
fn scan<'a>(data: &'a [u8], kind: &[u8; 4]) -> &'a [u8] {
    let at = data
        .windows(4)
        .position(|w| w == kind)
        .unwrap_or_else(|| panic!("no {} box", String::from_utf8_lossy(kind)));
    let size = u32::from_be_bytes(data[at - 4..at].try_into().unwrap()) as usize;
    &data[at + 4..at - 4 + size]
}

fn only_trak(moov: &Moov) -> &Trak {
    assert_eq!(moov.trak.len(), 1);
    &moov.trak[0]
}

/// Checks what every init segment shares: brands, one track with ID 1 in `timescale`,
/// empty sample tables, `trex`, and the box order of ISO/IEC 14496-12 §6.2.3.
fn check_common(init: &Bytes, timescale: u32, handler: &[u8; 4]) -> (Ftyp, Moov) {
    let (ftyp, moov) = decode(init);
    assert_eq!(ftyp.major_brand, mp4_atom::FourCC::new(b"iso6"));
    assert_eq!(ftyp.minor_version, 0);
    let brands: Vec<String> = ftyp
        .compatible_brands
        .iter()
        .map(|b| b.to_string())
        .collect();
    assert_eq!(brands, ["iso6", "cmfc", "cmf2"]);

    assert_eq!(moov.mvhd.timescale, timescale);
    assert_eq!(moov.mvhd.next_track_id, 2);
    assert_eq!(moov.mvhd.duration, 0);
    let trak = only_trak(&moov);
    assert_eq!(trak.tkhd.track_id, 1);
    assert!(trak.tkhd.enabled && trak.tkhd.in_movie);
    assert!(trak.edts.is_none());
    let mdia = &trak.mdia;
    assert_eq!(mdia.mdhd.timescale, timescale);
    assert_eq!(mdia.mdhd.duration, 0);
    assert_eq!(mdia.mdhd.language, "und");
    assert_eq!(mdia.hdlr.handler, mp4_atom::FourCC::new(handler));
    let minf = &mdia.minf;
    assert_eq!(minf.vmhd.is_some(), handler == b"vide");
    assert_eq!(minf.smhd.is_some(), handler == b"soun");
    assert_eq!(minf.dinf.dref.entries.len(), 1);
    let stbl = &minf.stbl;
    assert_eq!(stbl.stsd.codecs.len(), 1);
    assert!(stbl.stts.entries.is_empty());
    assert!(stbl.stsc.entries.is_empty());
    assert_eq!(
        stbl.stsz.samples,
        mp4_atom::StszSamples::Different { sizes: vec![] }
    );
    assert_eq!(stbl.stco.as_ref().map(|s| s.entries.len()), Some(0));
    assert!(stbl.ctts.is_none() && stbl.stss.is_none());

    let mvex = moov.mvex.as_ref().expect("mvex");
    assert!(
        mvex.mehd.is_none(),
        "a live stream has no fragment duration"
    );
    assert_eq!(mvex.trex.len(), 1);
    assert_eq!(mvex.trex[0].track_id, 1);
    assert_eq!(mvex.trex[0].default_sample_description_index, 1);

    // Box order, and the `url ` entry's self-contained flag, from the raw bytes.
    assert_eq!(children(init), ["ftyp", "moov"]);
    assert_eq!(children(body(init, &[b"moov"])), ["mvhd", "trak", "mvex"]);
    assert_eq!(children(body(init, &[b"moov", b"trak"])), ["tkhd", "mdia"]);
    let mdia_body = body(init, &[b"moov", b"trak", b"mdia"]);
    assert_eq!(children(mdia_body), ["mdhd", "hdlr", "minf"]);
    let media_header = if handler == b"vide" { "vmhd" } else { "smhd" };
    let minf_body = body(mdia_body, &[b"minf"]);
    assert_eq!(children(minf_body), [media_header, "dinf", "stbl"]);
    assert_eq!(
        children(body(minf_body, &[b"stbl"])),
        ["stsd", "stts", "stsc", "stsz", "stco"]
    );
    let dref = body(minf_body, &[b"dinf", b"dref"]);
    assert_eq!(
        u32::from_be_bytes(dref[4..8].try_into().unwrap()),
        1,
        "entry count"
    );
    assert_eq!(
        &dref[8..20],
        b"\0\0\0\x0curl \0\0\0\x01",
        "self-contained url"
    );
    (ftyp, moov)
}

fn entry(moov: &Moov) -> &Entry {
    &only_trak(moov).mdia.minf.stbl.stsd.codecs[0]
}

#[test]
fn h264_init_carries_the_avcc_record_and_size() {
    let codec = Codec::h264(Bytes::from_static(H264_HIGH)).unwrap();
    let init = init_segment(&track(codec.clone(), 90_000)).unwrap();
    let (_, moov) = check_common(&init, 90_000, b"vide");
    let tkhd = &only_trak(&moov).tkhd;
    assert_eq!((tkhd.width, tkhd.height), (1920.into(), 1080.into()));
    assert_eq!(tkhd.volume, 0.into());
    let Entry::Avc1(avc1) = entry(&moov) else {
        panic!("not avc1: {:?}", entry(&moov));
    };
    assert_eq!((avc1.visual.width, avc1.visual.height), (1920, 1080));
    assert_eq!(avc1.visual.data_reference_index, 1);
    assert!(avc1.pasp.is_none(), "square pixels");
    let parsed = media::h264::AvcConfig::parse(H264_HIGH).unwrap();
    assert_eq!(avc1.avcc.sequence_parameter_sets, parsed.sps);
    assert_eq!(avc1.avcc.picture_parameter_sets, parsed.pps);
    assert_eq!(avc1.avcc.length_size, 4);
    // The record goes in unchanged (ffmpeg wrote it with 4-byte lengths already).
    assert_eq!(scan(&init, b"avcC"), H264_HIGH);
    // The CODECS string read back from the init segment.
    let from_init = format!(
        "avc1.{:02x}{:02x}{:02x}",
        avc1.avcc.avc_profile_indication,
        avc1.avcc.profile_compatibility,
        avc1.avcc.avc_level_indication
    );
    assert_eq!(from_init, codec.rfc6381());
    assert_eq!(
        from_init, "avc1.640028",
        "media/testdata/codecs.txt (ffmpeg dash)"
    );
}

#[test]
fn h264_init_forces_four_byte_nal_lengths() {
    let mut record = H264_BASELINE.to_vec();
    record[4] = 0xfd; // lengthSizeMinusOne = 1
    let codec = Codec::h264(Bytes::from(record)).unwrap();
    let init = init_segment(&track(codec, 90_000)).unwrap();
    let (_, moov) = decode(&init);
    let Entry::Avc1(avc1) = entry(&moov) else {
        panic!("not avc1");
    };
    assert_eq!(avc1.avcc.length_size, 4);
    assert_eq!(
        scan(&init, b"avcC"),
        H264_BASELINE,
        "only the length byte changed back"
    );
}

#[test]
fn h264_init_with_non_square_pixels_has_pasp_and_display_width() {
    let codec = Codec::h264(Bytes::from_static(H264_SAR)).unwrap();
    let init = init_segment(&track(codec, 90_000)).unwrap();
    let (_, moov) = check_common(&init, 90_000, b"vide");
    let tkhd = &only_trak(&moov).tkhd;
    // ffprobe: 480x360, SAR 4:3, DAR 16:9.
    assert_eq!((tkhd.width, tkhd.height), (640.into(), 360.into()));
    let Entry::Avc1(avc1) = entry(&moov) else {
        panic!("not avc1");
    };
    assert_eq!((avc1.visual.width, avc1.visual.height), (480, 360));
    let pasp = avc1.pasp.as_ref().expect("pasp");
    assert_eq!((pasp.h_spacing, pasp.v_spacing), (4, 3));
}

/// The RFC 6381 / ISO/IEC 14496-15 Annex E string of an `hvcC`, from its decoded fields.
fn hevc_codecs(hvcc: &mp4_atom::Hvcc) -> String {
    let space = ["", "A", "B", "C"][usize::from(hvcc.general_profile_space)];
    let compat = u32::from_be_bytes(hvcc.general_profile_compatibility_flags).reverse_bits();
    let tier = if hvcc.general_tier_flag { 'H' } else { 'L' };
    let mut constraints = hvcc.general_constraint_indicator_flags.to_vec();
    while constraints.last() == Some(&0) {
        constraints.pop();
    }
    let mut out = format!(
        "hvc1.{space}{}.{compat:X}.{tier}{}",
        hvcc.general_profile_idc, hvcc.general_level_idc
    );
    for byte in constraints {
        out.push_str(&format!(".{byte:02X}"));
    }
    out
}

#[test]
fn h265_init_is_hvc1_with_complete_parameter_set_arrays() {
    let codec = Codec::h265(Bytes::from_static(HEVC_MAIN10)).unwrap();
    let init = init_segment(&track(codec.clone(), 90_000)).unwrap();
    let (_, moov) = check_common(&init, 90_000, b"vide");
    let Entry::Hvc1(hvc1) = entry(&moov) else {
        panic!("not hvc1: {:?}", entry(&moov));
    };
    assert_eq!((hvc1.visual.width, hvc1.visual.height), (1280, 720));
    assert_eq!(hvc1.hvcc.length_size_minus_one, 3);
    let parsed = media::h265::HevcConfig::parse(HEVC_MAIN10).unwrap();
    assert_eq!(hvc1.hvcc.arrays.len(), parsed.arrays.len());
    for (ours, theirs) in hvc1.hvcc.arrays.iter().zip(&parsed.arrays) {
        assert_eq!(ours.nal_unit_type, theirs.nal_type);
        assert_eq!(ours.nalus, theirs.nalus);
        let parameter_set = (32..=34).contains(&ours.nal_unit_type);
        assert_eq!(
            ours.completeness,
            parameter_set || theirs.completeness,
            "array {}",
            ours.nal_unit_type
        );
    }
    assert!(hvc1.hvcc.arrays.iter().any(|a| a.nal_unit_type == 33));
    assert_eq!(hevc_codecs(&hvc1.hvcc), codec.rfc6381());
    // GStreamer's string for this stream, with the hvc1 sample entry name.
    assert_eq!(
        codec.rfc6381(),
        "hvc1.2.4.L120.90",
        "media/testdata/codecs.txt"
    );
}

#[test]
fn av1_init_carries_the_av1c_record() {
    let codec = Codec::av1(Bytes::from_static(AV1_MAIN10)).unwrap();
    let init = init_segment(&track(codec.clone(), 90_000)).unwrap();
    let (_, moov) = check_common(&init, 90_000, b"vide");
    let Entry::Av01(av01) = entry(&moov) else {
        panic!("not av01: {:?}", entry(&moov));
    };
    assert_eq!((av01.visual.width, av01.visual.height), (642, 362));
    assert_eq!(scan(&init, b"av1C"), AV1_MAIN10);
    let c = &av01.av1c;
    let depth = match (c.high_bitdepth, c.twelve_bit) {
        (false, _) => 8,
        (true, false) => 10,
        (true, true) => 12,
    };
    let tier = if c.seq_tier_0 { 'H' } else { 'M' };
    let from_init = format!(
        "av01.{}.{:02}{tier}.{depth:02}",
        c.seq_profile, c.seq_level_idx_0
    );
    assert_eq!(from_init, codec.rfc6381());
    assert_eq!(
        from_init, "av01.0.01M.10",
        "media/testdata/codecs.txt (ffmpeg dash)"
    );
}

#[test]
fn aac_init_has_esds_with_the_audio_specific_config() {
    for (asc, rate, channels) in [(AAC_48K_MONO, 48_000u32, 1u8), (AAC_22K_STEREO, 22_050, 2)] {
        let codec = Codec::aac(Bytes::from_static(asc)).unwrap();
        let init = init_segment(&track(codec.clone(), rate)).unwrap();
        let (_, moov) = check_common(&init, rate, b"soun");
        let tkhd = &only_trak(&moov).tkhd;
        assert_eq!(tkhd.volume, 1.into());
        assert_eq!((tkhd.width, tkhd.height), (0.into(), 0.into()));
        let Entry::Mp4a(mp4a) = entry(&moov) else {
            panic!("not mp4a: {:?}", entry(&moov));
        };
        assert_eq!(mp4a.audio.data_reference_index, 1);
        assert_eq!(mp4a.audio.channel_count, u16::from(channels));
        assert_eq!(mp4a.audio.sample_size, 16);
        assert_eq!(mp4a.audio.sample_rate, (rate as u16).into());
        let es = &mp4a.esds.es_desc;
        assert_eq!(es.es_id, 0);
        let dc = &es.dec_config;
        assert_eq!(dc.object_type_indication, 0x40);
        assert_eq!(dc.stream_type, 5);
        assert_eq!(dc.up_stream, 0);
        assert_eq!(u32::from(dc.buffer_size_db), 768 * u32::from(channels));
        assert_eq!(dc.max_bitrate, 6144 * u32::from(channels) * rate / 1024);
        assert_eq!(dc.avg_bitrate, 0);
        let dsi = dc.dec_specific.as_ref().expect("DecoderSpecificInfo");
        assert_eq!(dsi.raw, asc);
        assert_eq!(format!("mp4a.40.{}", dsi.profile), codec.rfc6381());
        assert_eq!(codec.rfc6381(), "mp4a.40.2");
    }
}

#[test]
fn opus_init_has_dops() {
    for channels in [1, 2] {
        let codec = Codec::Opus {
            sample_rate: 48_000,
            channels,
        };
        let init = init_segment(&track(codec, 48_000)).unwrap();
        let (_, moov) = check_common(&init, 48_000, b"soun");
        let Entry::Opus(opus) = entry(&moov) else {
            panic!("not Opus: {:?}", entry(&moov));
        };
        assert_eq!(opus.audio.channel_count, u16::from(channels));
        assert_eq!(opus.audio.sample_rate, 48_000.into());
        assert_eq!(opus.dops.output_channel_count, channels);
        assert_eq!(opus.dops.input_sample_rate, 48_000);
        assert_eq!(opus.dops.output_gain, 0);
        assert!(opus.dops.channel_mapping.is_none());
    }
}

#[test]
fn init_refuses_what_it_cannot_write() {
    let h264 = Codec::h264(Bytes::from_static(H264_HIGH)).unwrap();
    assert!(matches!(
        init_segment(&track(h264.clone(), 0)),
        Err(Error::OutOfRange {
            field: "timescale",
            ..
        })
    ));
    let Codec::H264 { avcc, .. } = h264 else {
        unreachable!()
    };
    let too_wide = Codec::H264 {
        avcc: avcc.clone(),
        width: 70_000,
        height: 1080,
        fps: None,
    };
    assert!(matches!(
        init_segment(&track(too_wide, 90_000)),
        Err(Error::OutOfRange { .. })
    ));
    let mut bad = avcc.to_vec();
    bad[0] = 2; // configurationVersion
    let bad = Codec::H264 {
        avcc: Bytes::from(bad),
        width: 1920,
        height: 1080,
        fps: None,
    };
    assert!(matches!(
        init_segment(&track(bad, 90_000)),
        Err(Error::Mp4 {
            what: "avcC record",
            ..
        })
    ));
    let surround = Codec::Opus {
        sample_rate: 48_000,
        channels: 6,
    };
    assert!(matches!(
        init_segment(&track(surround, 48_000)),
        Err(Error::OutOfRange {
            field: "channel count",
            ..
        })
    ));
    let no_asc = Codec::Aac {
        asc: Bytes::new(),
        sample_rate: 48_000,
        channels: 2,
    };
    assert!(matches!(
        init_segment(&track(no_asc, 48_000)),
        Err(Error::OutOfRange { .. })
    ));
}
