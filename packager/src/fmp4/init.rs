//! The CMAF header (init segment) of one track.
use bytes::{Bytes, BytesMut};
use media::{Codec, MediaKind, TrackInfo};
use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor, SLConfig};
use mp4_atom::{
    Atom, Audio, Av01, Av1c, Avc1, Avcc, Decode, Dinf, Dops, Dref, Encode, Esds, FixedPoint,
    FourCC, Ftyp, Hdlr, Hvc1, Hvcc, Mdhd, Mp4a, Mvex, Mvhd, Opus, Pasp, Smhd, Stbl, Stco, Stsd,
    Tkhd, Trex, Url, Visual, Vmhd,
};

use super::mp4;
use crate::{Error, Result};

/// The one track of every file this module writes.
pub const TRACK_ID: u32 = 1;

/// `ftyp` major brand: the ISO base media file format brand that covers `tfdt` version
/// 1 and signed `trun` composition offsets (ISO/IEC 14496-12 Annex E).
pub const MAJOR_BRAND: &[u8; 4] = b"iso6";

/// `ftyp` compatible brands: `iso6`, the CMAF structural brand `cmfc` and the CMAF
/// second-edition brand `cmf2` (LLHLS.md: "a brand of iso6 or later").
pub const COMPATIBLE_BRANDS: [&[u8; 4]; 3] = [b"iso6", b"cmfc", b"cmf2"];

/// NAL unit length size of every video frame (`media::Frame` holds 4-byte lengths).
const NAL_LENGTH_SIZE: u8 = 4;

/// HEVC NAL unit types of the parameter sets (VPS, SPS, PPS).
const HEVC_PARAMETER_SETS: [u8; 3] = [32, 33, 34];

/// Writes the init segment of `track`: `ftyp`, then `moov` with `mvhd`, one `trak`
/// (track_ID [`TRACK_ID`], timescale `track.timescale`, empty sample tables) and
/// `mvex`/`trex`.
///
/// The sample entry is `avc1`/`hvc1`/`av01` with the record from the codec (its NAL
/// length size forced to 4, the form `media::Frame` carries; `hvc1` parameter-set
/// arrays marked complete as ISO/IEC 14496-15 requires of `hvc1`), a `pasp` when the
/// SPS signals non-square pixels, or `mp4a` + `esds` (AudioSpecificConfig as the
/// DecoderSpecificInfo) or `Opus` + `dOps` (mono or stereo, channel mapping family 0,
/// pre-skip 0: [`Codec::Opus`] does not carry the OpusHead).
///
/// The boxes are `mp4-atom`'s; the containers (`moov`, `trak`, `mdia`, `minf`) are
/// assembled here because `mp4-atom` writes their children in its struct order
/// (`mvex` before `trak`, `vmhd` after `stbl`), not the order ISO/IEC 14496-12 §6.2.3
/// lists and every reference muxer writes.
///
/// Errors: a timescale of 0, a width or height over 65535, an unparsable decoder
/// configuration record, an empty AudioSpecificConfig, Opus with more than 2 channels.
pub fn init_segment(track: &TrackInfo) -> Result<Bytes> {
    if track.timescale == 0 {
        return Err(Error::OutOfRange {
            what: "init segment",
            field: "timescale",
            value: 0,
        });
    }
    let entry = sample_entry(&track.codec)?;
    let kind = track.codec.kind();

    let mut buf = BytesMut::with_capacity(1024 + record_len(&track.codec));
    ftyp().encode(&mut buf).map_err(mp4("ftyp"))?;

    let moov = open(&mut buf, b"moov");
    mvhd(track.timescale)
        .encode(&mut buf)
        .map_err(mp4("mvhd"))?;
    let trak = open(&mut buf, b"trak");
    tkhd(&track.codec)?.encode(&mut buf).map_err(mp4("tkhd"))?;
    let mdia = open(&mut buf, b"mdia");
    Mdhd {
        timescale: track.timescale,
        language: "und".to_string(),
        ..Default::default()
    }
    .encode(&mut buf)
    .map_err(mp4("mdhd"))?;
    hdlr(kind).encode(&mut buf).map_err(mp4("hdlr"))?;
    let minf = open(&mut buf, b"minf");
    match kind {
        MediaKind::Video => Vmhd::default().encode(&mut buf).map_err(mp4("vmhd"))?,
        MediaKind::Audio => Smhd::default().encode(&mut buf).map_err(mp4("smhd"))?,
    }
    Dinf {
        // One self-contained data reference: the samples are in this file's `mdat`s.
        dref: Dref {
            entries: vec![Url::default().into()],
        },
    }
    .encode(&mut buf)
    .map_err(mp4("dinf"))?;
    Stbl {
        stsd: Stsd {
            codecs: vec![entry],
        },
        // stts, stsc and stsz empty (their defaults); stco present and empty.
        stco: Some(Stco::default()),
        ..Default::default()
    }
    .encode(&mut buf)
    .map_err(mp4("stbl"))?;
    close(&mut buf, minf)?;
    close(&mut buf, mdia)?;
    close(&mut buf, trak)?;
    Mvex {
        mehd: None,
        trex: vec![Trex {
            track_id: TRACK_ID,
            default_sample_description_index: 1,
            ..Default::default()
        }],
    }
    .encode(&mut buf)
    .map_err(mp4("mvex"))?;
    close(&mut buf, moov)?;
    Ok(buf.freeze())
}

/// Starts a container box: a placeholder size and the type. Returns where it starts.
fn open(buf: &mut BytesMut, kind: &[u8; 4]) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(kind);
    start
}

/// Ends the container box that [`open`] started at `start` by writing its size.
fn close(buf: &mut BytesMut, start: usize) -> Result<()> {
    let size = u32::try_from(buf.len() - start).map_err(|_| Error::OutOfRange {
        what: "init segment",
        field: "container box size",
        value: (buf.len() - start) as i128,
    })?;
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

fn record_len(codec: &Codec) -> usize {
    match codec {
        Codec::H264 { avcc, .. } => avcc.len(),
        Codec::H265 { hvcc, .. } => hvcc.len(),
        Codec::Av1 { av1c, .. } => av1c.len(),
        Codec::Aac { asc, .. } => asc.len(),
        Codec::Opus { .. } => 0,
    }
}

fn ftyp() -> Ftyp {
    Ftyp {
        major_brand: FourCC::new(MAJOR_BRAND),
        minor_version: 0,
        compatible_brands: COMPATIBLE_BRANDS
            .iter()
            .map(|brand| FourCC::new(brand))
            .collect(),
    }
}

fn mvhd(timescale: u32) -> Mvhd {
    Mvhd {
        timescale,
        rate: 1.into(),
        volume: 1.into(),
        next_track_id: TRACK_ID + 1,
        ..Default::default()
    }
}

fn tkhd(codec: &Codec) -> Result<Tkhd> {
    let mut tkhd = Tkhd {
        track_id: TRACK_ID,
        enabled: true,
        in_movie: true,
        ..Default::default()
    };
    match codec.kind() {
        MediaKind::Audio => tkhd.volume = 1.into(),
        MediaKind::Video => {
            let (width, height) = codec.dimensions().unwrap_or_default();
            // The presentation size: the coded width stretched by the pixel aspect.
            let (h, v) = pixel_aspect(codec).unwrap_or((1, 1));
            let display = u64::from(width) * u64::from(h) / u64::from(v.max(1));
            tkhd.width = fixed_16_16(display, "tkhd width")?;
            tkhd.height = fixed_16_16(u64::from(height), "tkhd height")?;
        }
    }
    Ok(tkhd)
}

fn fixed_16_16(value: u64, field: &'static str) -> Result<FixedPoint<u16>> {
    let int = u16::try_from(value).map_err(|_| Error::OutOfRange {
        what: "init segment",
        field,
        value: i128::from(value),
    })?;
    Ok(int.into())
}

fn hdlr(kind: MediaKind) -> Hdlr {
    let (handler, name) = match kind {
        MediaKind::Video => (b"vide", "VideoHandler"),
        MediaKind::Audio => (b"soun", "SoundHandler"),
    };
    Hdlr {
        handler: FourCC::new(handler),
        name: name.to_string(),
    }
}

/// The SPS's sample aspect ratio when it is known and not square.
fn pixel_aspect(codec: &Codec) -> Option<(u32, u32)> {
    let sar = match codec {
        Codec::H264 { avcc, .. } => {
            media::h264::AvcConfig::parse(avcc)
                .and_then(|c| c.first_sps())
                .ok()?
                .sar
        }
        Codec::H265 { hvcc, .. } => {
            media::h265::HevcConfig::parse(hvcc)
                .and_then(|c| c.first_sps())
                .ok()?
                .sar
        }
        _ => None,
    };
    match sar {
        Some((h, v)) if h != 0 && v != 0 && h != v => Some((u32::from(h), u32::from(v))),
        _ => None,
    }
}

fn sample_entry(codec: &Codec) -> Result<mp4_atom::Codec> {
    Ok(match codec {
        Codec::H264 { avcc, .. } => {
            let mut avcc = decode_record::<Avcc>(avcc, "avcC record")?;
            avcc.length_size = NAL_LENGTH_SIZE;
            Avc1 {
                visual: visual(codec)?,
                avcc,
                pasp: pasp(codec),
                ..Default::default()
            }
            .into()
        }
        Codec::H265 { hvcc, .. } => {
            let mut hvcc = decode_record::<Hvcc>(hvcc, "hvcC record")?;
            hvcc.length_size_minus_one = NAL_LENGTH_SIZE - 1;
            for array in &mut hvcc.arrays {
                if HEVC_PARAMETER_SETS.contains(&array.nal_unit_type) {
                    array.completeness = true;
                }
            }
            Hvc1 {
                visual: visual(codec)?,
                hvcc,
                pasp: pasp(codec),
                ..Default::default()
            }
            .into()
        }
        Codec::Av1 { av1c, .. } => Av01 {
            visual: visual(codec)?,
            av1c: decode_record::<Av1c>(av1c, "av1C record")?,
            ..Default::default()
        }
        .into(),
        Codec::Aac {
            asc,
            sample_rate,
            channels,
        } => Mp4a {
            audio: audio(*sample_rate, *channels),
            esds: esds(asc, *sample_rate, *channels)?,
            btrt: None,
            taic: None,
        }
        .into(),
        Codec::Opus {
            sample_rate,
            channels,
        } => {
            if !(1..=2).contains(channels) {
                return Err(Error::OutOfRange {
                    what: "dOps (channel mapping family 0)",
                    field: "channel count",
                    value: i128::from(*channels),
                });
            }
            Opus {
                // Opus always decodes at 48 kHz; the entry says so (RFC 7845 §5.1,
                // "Encapsulation of Opus in ISOBMFF" §4.3).
                audio: audio(48_000, *channels),
                dops: Dops {
                    output_channel_count: *channels,
                    pre_skip: 0,
                    input_sample_rate: *sample_rate,
                    output_gain: 0,
                    channel_mapping: None,
                },
                btrt: None,
            }
            .into()
        }
    })
}

/// Parses a decoder configuration record (a box body) with `mp4-atom`'s reader, so the
/// sample entry is re-encoded from its fields.
fn decode_record<T: Atom>(record: &[u8], what: &'static str) -> Result<T> {
    let mut body = record;
    T::decode_body(&mut body).map_err(mp4(what))
}

fn visual(codec: &Codec) -> Result<Visual> {
    let (width, height) = codec.dimensions().unwrap_or_default();
    let field = |value: u32, field| {
        u16::try_from(value).map_err(|_| Error::OutOfRange {
            what: "visual sample entry",
            field,
            value: i128::from(value),
        })
    };
    Ok(Visual {
        data_reference_index: 1,
        width: field(width, "width")?,
        height: field(height, "height")?,
        horizresolution: 72.into(),
        vertresolution: 72.into(),
        frame_count: 1,
        compressor: "".into(),
        depth: 0x0018,
    })
}

fn pasp(codec: &Codec) -> Option<Pasp> {
    pixel_aspect(codec).map(|(h_spacing, v_spacing)| Pasp {
        h_spacing,
        v_spacing,
    })
}

fn audio(sample_rate: u32, channels: u8) -> Audio {
    Audio {
        data_reference_index: 1,
        channel_count: u16::from(channels),
        sample_size: 16,
        // 16.16 fixed point: a rate above 65535 Hz does not fit and is written as 0
        // (the decoder configuration holds the real one).
        sample_rate: u16::try_from(sample_rate).unwrap_or(0).into(),
    }
}

/// The ES_Descriptor for AAC (ISO/IEC 14496-1 §7.2.6.5, 14496-14 §3.1.2).
fn esds(asc: &[u8], sample_rate: u32, channels: u8) -> Result<Esds> {
    if asc.is_empty() {
        return Err(Error::OutOfRange {
            what: "esds",
            field: "AudioSpecificConfig length",
            value: 0,
        });
    }
    let mut raw = asc;
    let dec_specific =
        DecoderSpecific::decode(&mut raw).map_err(mp4("esds DecoderSpecificInfo"))?;
    // The AAC decoder input buffer is 6144 bits per channel (ISO/IEC 14496-3 §4.5.3.1):
    // it bounds both the buffer size and the peak bitrate (one full buffer per 1024
    // samples). The average is not known up front: 0 means variable (14496-1 §7.2.6.6).
    // At most 768 * 255 bytes: always fits the 24-bit field.
    let buffer_bytes = 768 * u32::from(channels.max(1));
    let max_bitrate = u64::from(buffer_bytes) * 8 * u64::from(sample_rate) / 1024;
    Ok(Esds {
        es_desc: EsDescriptor {
            // ES_ID is 0 in a file (ISO/IEC 14496-14 §3.1.2).
            es_id: 0,
            depends_on_es_id: None,
            url: None,
            ocr_es_id: None,
            stream_priority: 0,
            dec_config: DecoderConfig {
                // Audio ISO/IEC 14496-3 (AAC), AudioStream.
                object_type_indication: 0x40,
                stream_type: 0x05,
                up_stream: 0,
                buffer_size_db: u24_from(buffer_bytes),
                max_bitrate: u32::try_from(max_bitrate).unwrap_or(u32::MAX),
                avg_bitrate: 0,
                dec_specific: Some(dec_specific),
            },
            // predefined = 2 (MP4 files).
            sl_config: SLConfig {},
        },
    })
}

/// The low 24 bits of `value` (callers pass values below 2^24).
fn u24_from(value: u32) -> mp4_atom::u24 {
    let [_, a, b, c] = value.to_be_bytes();
    [a, b, c].into()
}
