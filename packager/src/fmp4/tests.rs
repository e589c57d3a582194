//! Fragments decoded with `mp4-atom` in strict mode and checked against the samples
//! that went in, plus the raw header fields the decoded structs do not show (box
//! versions and flags).
use bytes::Bytes;
use mp4_atom::{Decode, Header, Moof, TrunEntry};
use proptest::prelude::*;

use super::*;
use crate::Error;

/// A decoded fragment: the `moof`, its size, and the `mdat` payload's offset and size.
struct Decoded {
    moof: Moof,
    moof_len: usize,
    mdat_payload: std::ops::Range<usize>,
}

fn decode(chunk: &Bytes) -> Decoded {
    let mut buf = chunk.clone();
    let moof = Moof::decode(&mut buf).expect("moof decodes (strict)");
    let moof_len = chunk.len() - buf.len();
    let mut rest = &buf[..];
    let header = Header::decode(&mut rest).expect("mdat header");
    assert_eq!(header.kind, mp4_atom::FourCC::new(b"mdat"));
    let start = chunk.len() - rest.len();
    assert_eq!(
        header.size,
        Some(rest.len()),
        "mdat runs to the end, nothing after"
    );
    Decoded {
        moof,
        moof_len,
        mdat_payload: start..chunk.len(),
    }
}

/// Version and flags of the full box `kind` inside the `moof`.
fn version_and_flags(chunk: &[u8], moof_len: usize, kind: &[u8; 4]) -> (u8, u32) {
    let moof = &chunk[..moof_len];
    let at = moof
        .windows(4)
        .position(|w| w == kind)
        .unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(kind)));
    let word = u32::from_be_bytes(moof[at + 4..at + 8].try_into().unwrap());
    ((word >> 24) as u8, word & 0x00ff_ffff)
}

/// Checks every field of `chunk` against the samples it was written from.
fn check(chunk: &Bytes, sequence_number: u32, base: u64, samples: &[Sample]) {
    let d = decode(chunk);
    assert_eq!(d.moof.mfhd.sequence_number, sequence_number);
    assert_eq!(d.moof.traf.len(), 1);
    let traf = &d.moof.traf[0];
    assert_eq!(traf.tfhd.track_id, 1);
    assert!(traf.tfhd.default_base_is_moof);
    assert_eq!(traf.tfhd.base_data_offset, None);
    assert_eq!(traf.tfhd.default_sample_flags, None);
    assert_eq!(
        traf.tfdt.as_ref().map(|t| t.base_media_decode_time),
        Some(base)
    );
    assert_eq!(traf.trun.len(), 1);
    let trun = &traf.trun[0];

    // The data offset points at the first byte of the mdat payload.
    let data_offset = trun.data_offset.expect("data offset") as usize;
    assert_eq!(data_offset, d.mdat_payload.start);
    assert_eq!(data_offset, d.moof_len + 8);
    let with_offsets = samples.iter().any(|s| s.composition_offset != 0);
    let entries: Vec<TrunEntry> = trun.samples.iter().collect();
    assert_eq!(entries.len(), samples.len());
    let mut at = data_offset;
    for (i, (entry, sample)) in entries.iter().zip(samples).enumerate() {
        assert_eq!(entry.duration, Some(sample.duration), "sample {i} duration");
        let size = entry.size.expect("size") as usize;
        assert_eq!(size, sample.data.len(), "sample {i} size");
        let flags = if sample.keyframe {
            0x0200_0000
        } else {
            0x0101_0000
        };
        assert_eq!(entry.flags, Some(flags), "sample {i} flags");
        let cts = with_offsets.then_some(i64::from(sample.composition_offset));
        assert_eq!(entry.cts, cts, "sample {i} composition offset");
        assert_eq!(&chunk[at..at + size], &sample.data[..], "sample {i} bytes");
        at += size;
    }
    assert_eq!(at, chunk.len());

    // Raw header fields: tfdt version 1; tfhd only default-base-is-moof; trun version 1
    // with data offset, duration, size, flags, and composition offsets when present.
    assert_eq!(version_and_flags(chunk, d.moof_len, b"tfdt"), (1, 0));
    assert_eq!(
        version_and_flags(chunk, d.moof_len, b"tfhd"),
        (0, 0x02_0000)
    );
    let (version, flags) = version_and_flags(chunk, d.moof_len, b"trun");
    let cts_flag = if with_offsets { 0x800 } else { 0 };
    // mp4-atom writes a lone sample's flags as first-sample-flags (0x004), the same
    // thing in ISO/IEC 14496-12 §8.8.8; more samples get per-sample flags (0x400).
    let flags_flag = if samples.len() == 1 { 0x004 } else { 0x400 };
    assert_eq!(flags, 0x001 | 0x100 | 0x200 | flags_flag | cts_flag);
    if with_offsets {
        assert_eq!(version, 1, "signed composition offsets");
    }
}

fn sample(duration: u32, composition_offset: i32, keyframe: bool, data: &[u8]) -> Sample {
    Sample {
        duration,
        composition_offset,
        keyframe,
        data: Bytes::copy_from_slice(data),
    }
}

#[test]
fn video_fragment_with_b_frames() {
    // IDR, then P and B frames as x264 orders them, offsets in 90 kHz (30 fps = 3000),
    // shifted so the IDR's offset is 0 and B-frames' are negative.
    let samples = [
        sample(3000, 0, true, b"\0\0\0\x05\x65idr.."),
        sample(3000, 6000, false, b"\0\0\0\x03\x41P1"),
        sample(3000, -3000, false, b"\0\0\0\x03\x01B1"),
        sample(3000, -3000, false, b"\0\0\0\x03\x01B2"),
        sample(3000, 3000, false, b"\0\0\0\x03\x41P2"),
    ];
    let chunk = fragment(42, 1_234_567, &samples).unwrap();
    check(&chunk, 42, 1_234_567, &samples);
}

#[test]
fn fragment_without_composition_offsets_omits_them() {
    let samples = [
        sample(1024, 0, true, &[1; 100]),
        sample(1024, 0, true, &[2; 90]),
        sample(1024, 0, true, &[3; 110]),
    ];
    let chunk = fragment(1, 0, &samples).unwrap();
    check(&chunk, 1, 0, &samples);
    let d = decode(&chunk);
    assert!(
        d.moof.traf[0].trun[0]
            .samples
            .iter()
            .all(|e| e.cts.is_none())
    );
}

#[test]
fn positive_composition_offsets_round_trip() {
    let samples = [
        sample(3000, 3000, true, b"a"),
        sample(3000, 9000, false, b"bb"),
        sample(3000, 0, false, b"ccc"),
    ];
    let chunk = fragment(7, 90_000, &samples).unwrap();
    check(&chunk, 7, 90_000, &samples);
}

#[test]
fn decode_time_past_32_bits() {
    let base = u64::from(u32::MAX) * 3 + 17;
    let samples = [sample(960, 0, true, b"opus")];
    let chunk = fragment(u32::MAX, base, &samples).unwrap();
    check(&chunk, u32::MAX, base, &samples);
}

#[test]
fn empty_fragment_is_refused() {
    assert!(matches!(
        fragment(1, 0, &[]),
        Err(Error::OutOfRange {
            field: "sample count",
            ..
        })
    ));
}

#[test]
fn output_is_sized_exactly() {
    let samples: Vec<Sample> = (0..50)
        .map(|i| {
            sample(
                1000,
                (i % 3) - 1,
                i % 10 == 0,
                &vec![i as u8; 37 * i as usize],
            )
        })
        .collect();
    let chunk = fragment(3, 5, &samples).unwrap();
    check(&chunk, 3, 5, &samples);
    // moof: 8 + mfhd 16 + traf 8 + tfhd 16 + tfdt 20 + trun 20 + 16 per sample.
    let payload: usize = samples.iter().map(|s| s.data.len()).sum();
    assert_eq!(chunk.len(), 88 + 16 * samples.len() + 8 + payload);
}

prop_compose! {
    fn arb_sample()(
        duration in any::<u32>(),
        composition_offset in prop_oneof![Just(0), any::<i32>(), -9000..9000i32],
        keyframe in any::<bool>(),
        data in proptest::collection::vec(any::<u8>(), 0..64),
    ) -> Sample {
        Sample { duration, composition_offset, keyframe, data: Bytes::from(data) }
    }
}

proptest! {
    #[test]
    fn any_fragment_decodes_to_its_samples(
        sequence_number in any::<u32>(),
        base in any::<u64>(),
        samples in proptest::collection::vec(arb_sample(), 1..40),
    ) {
        let chunk = fragment(sequence_number, base, &samples).unwrap();
        check(&chunk, sequence_number, base, &samples);
    }
}
