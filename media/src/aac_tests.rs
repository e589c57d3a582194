//! Tests of [`crate::aac`]. Real vectors come from ffmpeg's AAC encoder (see
//! `testdata/gen.sh`); the expected rates and channel counts are what ffprobe reports
//! for the same files (`testdata/ffprobe.txt`, `ffprobe -show_entries
//! stream=profile,sample_rate,channels`).

use super::*;
use crate::bits::BitWriter;

#[test]
fn real_ascs() {
    // From MP4 esds boxes: LC 48 kHz mono and LC 22.05 kHz stereo. ffmpeg appends the
    // sync extension saying "no SBR".
    for (asc, rate, channels) in [
        (
            &include_bytes!("../testdata/aac_lc_48000_mono.asc")[..],
            48000,
            1,
        ),
        (
            &include_bytes!("../testdata/aac_lc_22050_stereo.asc")[..],
            22050,
            2,
        ),
    ] {
        let c = AudioSpecificConfig::parse(asc).unwrap();
        assert_eq!(c.object_type, AOT_AAC_LC);
        assert_eq!(c.sample_rate, rate);
        assert_eq!(c.output_sample_rate(), rate);
        assert_eq!(c.channels(), channels);
        assert_eq!(c.sbr, Some(false));
        assert_eq!(c.samples_per_frame(), 1024);
        assert_eq!(c.rfc6381(), "mp4a.40.2");
        assert_eq!(&c.to_bytes()[..], asc);
        for n in 0..asc.len() {
            // A cut before the end of the core config is an error; the sync extension
            // is optional, so a cut before it parses as "not signalled".
            match AudioSpecificConfig::parse(&asc[..n]) {
                Ok(p) => {
                    assert!(n >= 2);
                    assert_eq!((p.sample_rate, p.channels(), p.sbr), (rate, channels, None));
                }
                Err(e) => assert!(matches!(e, Error::Truncated { .. }), "{n}: {e}"),
            }
        }
    }
}

/// Frames of an ADTS stream, fed in two pieces split at `split`, the way a socket
/// delivers them.
fn frames_split(data: &[u8], split: usize) -> Vec<(AdtsHeader, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for piece in [&data[..split], &data[split..]] {
        buf.extend_from_slice(piece);
        while let Some((h, payload, used)) = AdtsHeader::parse_frame(&buf).unwrap() {
            out.push((h, payload.to_vec()));
            buf.drain(..used);
        }
    }
    assert!(buf.is_empty());
    out
}

#[test]
fn real_adts_streams() {
    for (data, rate, channels, asc) in [
        (
            &include_bytes!("../testdata/aac_lc_44100_stereo.adts")[..],
            44100,
            2,
            [0x12, 0x10],
        ),
        (
            &include_bytes!("../testdata/aac_lc_48000_51.adts")[..],
            48000,
            6,
            [0x11, 0xb0],
        ),
    ] {
        let frames = frames_split(data, data.len());
        assert!(frames.len() > 3);
        let total: usize = frames
            .iter()
            .map(|(h, _)| usize::from(h.frame_length))
            .sum();
        assert_eq!(total, data.len());
        for (h, payload) in &frames {
            assert_eq!(h.object_type, AOT_AAC_LC);
            assert_eq!(h.sample_rate(), rate);
            assert_eq!(h.channel_configuration, channels);
            assert!(h.protection_absent && !h.mpeg2);
            assert_eq!(payload.len(), h.payload_len());
            assert_eq!(AdtsHeader::parse(&h.to_bytes()).unwrap(), Some(*h));
        }
        let from_adts = frames[0].0.to_asc().unwrap();
        assert_eq!(&from_adts.to_bytes()[..], &asc);
        assert_eq!(from_adts.channels(), channels);
        let rebuilt = AdtsHeader::for_payload(&from_adts, frames[0].1.len()).unwrap();
        assert_eq!(rebuilt.frame_length, frames[0].0.frame_length);
        // Every split point yields the same frames.
        for split in 0..=data.len() {
            assert_eq!(frames_split(data, split), frames, "split at {split}");
        }
        // Every prefix of a header is "need more", never an error.
        for n in 0..7 {
            assert_eq!(AdtsHeader::parse(&data[..n]), Ok(None));
        }
    }
}

#[test]
fn adts_errors() {
    assert!(AdtsHeader::parse(&[0xfe]).is_err());
    assert!(AdtsHeader::parse(&[0xff, 0xe1]).is_err());
    // layer 1
    assert!(AdtsHeader::parse(&[0xff, 0xf3, 0x50, 0x80, 0x2b, 0x3f, 0xfc]).is_err());
    // sampling frequency index 13
    assert!(AdtsHeader::parse(&[0xff, 0xf1, 0x74, 0x80, 0x2b, 0x3f, 0xfc]).is_err());
    // frame length 5 < 7
    assert!(AdtsHeader::parse(&[0xff, 0xf1, 0x50, 0x80, 0x00, 0xbf, 0xfc]).is_err());
    // With a CRC the header is 9 bytes.
    let crc = [0xff, 0xf0, 0x50, 0x80, 0x2b, 0x3f, 0xfc, 0x12, 0x34];
    assert_eq!(AdtsHeader::parse(&crc[..8]), Ok(None));
    assert_eq!(AdtsHeader::parse(&crc).unwrap().unwrap().header_len(), 9);
    let pce_adts = AdtsHeader {
        channel_configuration: 0,
        ..AdtsHeader::parse(&crc).unwrap().unwrap()
    };
    assert!(pce_adts.to_asc().is_err());
}

#[test]
fn he_aac_hierarchical() {
    // HE-AAC: AOT 5, core 22.05 kHz stereo, SBR at 44.1 kHz, core AOT 2.
    let he = AudioSpecificConfig::parse(&[0x2b, 0x92, 0x08, 0x00]).unwrap();
    assert_eq!((he.object_type, he.core_object_type), (5, 2));
    assert_eq!((he.sample_rate, he.output_sample_rate()), (22050, 44100));
    assert_eq!((he.sbr, he.ps, he.channels()), (Some(true), None, 2));
    assert_eq!(he.samples_per_frame(), 2048);
    assert_eq!(he.rfc6381(), "mp4a.40.5");
    assert_eq!(&he.to_bytes()[..], &[0x2b, 0x92, 0x08, 0x00]);
    // HE-AAC v2: AOT 29, core 24 kHz mono, SBR 48 kHz; PS makes it stereo.
    let v2 = AudioSpecificConfig::parse(&[0xeb, 0x09, 0x88, 0x00]).unwrap();
    assert_eq!((v2.object_type, v2.core_object_type), (29, 2));
    assert_eq!((v2.output_sample_rate(), v2.channels()), (48000, 2));
    assert_eq!(v2.ps, Some(true));
    assert_eq!(v2.rfc6381(), "mp4a.40.29");
    assert_eq!(AudioSpecificConfig::parse(&v2.to_bytes()).unwrap(), v2);
    for n in 0..3 {
        assert!(AudioSpecificConfig::parse(&[0xeb, 0x09, 0x88][..n]).is_err());
    }
}

#[test]
fn he_aac_backward_compatible() {
    // LC 24 kHz mono, then sync extension 0x2b7: SBR present at 48 kHz, then 0x548: PS.
    let mut w = BitWriter::new();
    w.write_bits(5, 2);
    w.write_bits(4, 6);
    w.write_bits(4, 1);
    w.write_bits(3, 0);
    w.write_bits(11, 0x2b7);
    w.write_bits(5, 5);
    w.write_bit(true);
    w.write_bits(4, 3);
    w.write_bits(11, 0x548);
    w.write_bit(true);
    let bytes = w.into_bytes();
    let c = AudioSpecificConfig::parse(&bytes).unwrap();
    assert_eq!((c.object_type, c.sample_rate), (2, 24000));
    assert_eq!((c.sbr, c.ps), (Some(true), Some(true)));
    assert_eq!((c.output_sample_rate(), c.channels()), (48000, 2));
    assert_eq!(c.rfc6381(), "mp4a.40.2");
    assert_eq!(&c.to_bytes()[..], &bytes[..]);
}

#[test]
fn escape_object_type_and_explicit_rate() {
    // AOT 42 (USAC) via the escape, explicit 50 kHz, stereo: header only.
    let mut w = BitWriter::new();
    w.write_bits(5, 31);
    w.write_bits(6, 10);
    w.write_bits(4, 0xf);
    w.write_bits(24, 50_000);
    w.write_bits(4, 2);
    let bytes = w.into_bytes();
    let c = AudioSpecificConfig::parse(&bytes).unwrap();
    assert_eq!(
        (c.object_type, c.sample_rate, c.channels()),
        (42, 50_000, 2)
    );
    assert_eq!(c.rfc6381(), "mp4a.40.42");
    assert_eq!(&c.to_bytes()[..], &bytes[..]);
    assert!(AudioSpecificConfig::parse(&bytes[..4]).is_err());
    // Explicit rate of 0 and reserved index 13 are invalid.
    assert!(AudioSpecificConfig::parse(&[0x17, 0x80, 0x00, 0x00, 0x10]).is_err());
    assert!(AudioSpecificConfig::parse(&[0x16, 0x90]).is_err());
    // Reserved channel configuration 8.
    assert!(AudioSpecificConfig::parse(&[0x11, 0xc0]).is_err());
    assert!(AudioSpecificConfig::parse(&[0x01, 0x90]).is_err());
}

#[test]
fn program_config_element() {
    let pce = ProgramConfig {
        element_instance_tag: 0,
        object_type: 1,
        sampling_frequency_index: 3,
        front: vec![(false, 0), (true, 0)],
        side: vec![],
        back: vec![(true, 1)],
        lfe: vec![0],
        assoc_data: vec![],
        cc: vec![],
        mono_mixdown: None,
        stereo_mixdown: Some(2),
        matrix_mixdown: Some((1, true)),
        comment: b"5.1".to_vec(),
    };
    assert_eq!(pce.channels(), 6);
    let asc = AudioSpecificConfig {
        channel_configuration: 0,
        program_config: Some(pce),
        ..AudioSpecificConfig::new(2, 48000, 2).unwrap()
    };
    let bytes = asc.to_bytes();
    let parsed = AudioSpecificConfig::parse(&bytes).unwrap();
    assert_eq!(parsed, asc);
    assert_eq!(parsed.channels(), 6);
    for n in 0..bytes.len() {
        assert!(AudioSpecificConfig::parse(&bytes[..n]).is_err(), "{n}");
    }
}

#[test]
fn build_from_parts() {
    let c = AudioSpecificConfig::new(2, 44100, 2).unwrap();
    assert_eq!(&c.to_bytes()[..], &[0x12, 0x10]);
    let c = AudioSpecificConfig::new(2, 48000, 8).unwrap();
    assert_eq!((c.channel_configuration, c.channels()), (7, 8));
    assert_eq!(AudioSpecificConfig::parse(&c.to_bytes()).unwrap(), c);
    assert!(AudioSpecificConfig::new(2, 48000, 7).is_err());
    assert!(AudioSpecificConfig::new(0, 48000, 2).is_err());
    assert!(AudioSpecificConfig::new(2, 0, 2).is_err());
    // A non-table rate is written explicitly.
    let c = AudioSpecificConfig::new(2, 50_000, 1).unwrap();
    assert_eq!(AudioSpecificConfig::parse(&c.to_bytes()).unwrap(), c);
}
