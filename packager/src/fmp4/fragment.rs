//! CMAF chunks: `moof` + `mdat`.
use bytes::{Bytes, BytesMut};
use mp4_atom::{
    Atom, Encode, Header, Mdat, Mfhd, Moof, Tfdt, Tfhd, Traf, Trun, TrunEntry, TrunSamples,
};

use super::{TRACK_ID, mp4};
use crate::{Error, Result};

/// Sample flags of a sync sample: `sample_depends_on` = 2 (depends on no other sample),
/// `sample_is_non_sync_sample` = 0 (ISO/IEC 14496-12 §8.8.3.1).
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;

/// Sample flags of a non-sync sample: `sample_depends_on` = 1 (depends on others),
/// `sample_is_non_sync_sample` = 1.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// Bytes of `moof` besides the per-sample `trun` fields: moof, mfhd, traf, tfhd, tfdt v1
/// and the trun header with its data offset. Only sizes the output buffer.
const MOOF_FIXED_LEN: usize = 8 + 16 + 8 + 16 + 20 + 20;

/// One sample (access unit) of a fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Decode duration, in the track's timescale.
    pub duration: u32,
    /// Presentation time minus decode time, in the track's timescale.
    pub composition_offset: i32,
    /// A sync sample: an IDR/IRAP/key frame for video; every audio sample is one.
    pub keyframe: bool,
    /// The sample as it goes into `mdat`: 4-byte length-prefixed NAL units for
    /// H.264/H.265, the temporal unit's OBUs for AV1, one raw access unit for audio.
    pub data: Bytes,
}

impl Sample {
    /// The `trun` sample flags: [`SYNC_SAMPLE_FLAGS`] or [`NON_SYNC_SAMPLE_FLAGS`].
    pub fn flags(&self) -> u32 {
        if self.keyframe {
            SYNC_SAMPLE_FLAGS
        } else {
            NON_SYNC_SAMPLE_FLAGS
        }
    }
}

/// Writes one chunk: `moof` (`mfhd` with `sequence_number`; `traf` with `tfhd`
/// track_ID [`super::TRACK_ID`] and default-base-is-moof, `tfdt` version 1 holding
/// `base_decode_time`, one `trun`) followed by one `mdat` with the samples in order.
///
/// The `trun` has the data offset (from the start of the `moof` to the first sample
/// byte) and each sample's duration, size and flags; composition offsets are written
/// when any is non-zero, as a version 1 (signed) `trun`.
///
/// The output is one buffer allocated at its final size; each sample payload is
/// copied into it once.
///
/// Errors: no samples, a sample larger than `u32::MAX` bytes.
pub fn fragment(sequence_number: u32, base_decode_time: u64, samples: &[Sample]) -> Result<Bytes> {
    if samples.is_empty() {
        return Err(Error::OutOfRange {
            what: "fragment",
            field: "sample count",
            value: 0,
        });
    }
    let with_offsets = samples.iter().any(|s| s.composition_offset != 0);
    let mut payload_len = 0usize;
    let mut entries = Vec::with_capacity(samples.len());
    for sample in samples {
        let size = u32::try_from(sample.data.len()).map_err(|_| Error::OutOfRange {
            what: "fragment sample",
            field: "size",
            value: sample.data.len() as i128,
        })?;
        payload_len += sample.data.len();
        entries.push(TrunEntry {
            duration: Some(sample.duration),
            size: Some(size),
            flags: Some(sample.flags()),
            cts: with_offsets.then_some(i64::from(sample.composition_offset)),
        });
    }
    let mdat_header_len = mdat_header_len(payload_len);

    let mut moof = Moof {
        mfhd: Mfhd { sequence_number },
        traf: vec![Traf {
            tfhd: Tfhd {
                track_id: TRACK_ID,
                default_base_is_moof: true,
                ..Default::default()
            },
            tfdt: Some(Tfdt {
                base_media_decode_time: base_decode_time,
            }),
            trun: vec![Trun {
                data_offset: Some(0),
                samples: TrunSamples::Explicit(entries),
            }],
            ..Default::default()
        }],
    };

    let capacity = MOOF_FIXED_LEN + samples.len() * 16 + mdat_header_len + payload_len;
    let mut buf = BytesMut::with_capacity(capacity);
    // The data offset depends on the moof's size, which does not depend on the offset's
    // value: encode once to measure, then again with the offset filled in.
    moof.encode(&mut buf).map_err(mp4("moof"))?;
    let moof_len = buf.len();
    let data_offset = moof_len + mdat_header_len;
    let offset = i32::try_from(data_offset).map_err(|_| Error::OutOfRange {
        what: "trun",
        field: "data offset",
        value: data_offset as i128,
    })?;
    if let Some(trun) = moof.traf.first_mut().and_then(|t| t.trun.first_mut()) {
        trun.data_offset = Some(offset);
    }
    buf.clear();
    moof.encode(&mut buf).map_err(mp4("moof"))?;

    Header {
        kind: Mdat::KIND,
        size: Some(payload_len),
    }
    .encode(&mut buf)
    .map_err(mp4("mdat"))?;
    for sample in samples {
        buf.extend_from_slice(&sample.data);
    }
    Ok(buf.freeze())
}

/// An `mdat` header is 8 bytes, 16 with a 64-bit size (payload over 4 GiB - 9).
fn mdat_header_len(payload_len: usize) -> usize {
    if payload_len + 8 > u32::MAX as usize {
        16
    } else {
        8
    }
}
