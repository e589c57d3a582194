//! AV1: OBU framing, the sequence header OBU (AV1 spec 5.5) and the
//! AV1CodecConfigurationRecord (`av1C`, AV1-ISOBMFF 2.3).

use bytes::{BufMut, Bytes, BytesMut};

use crate::bits::BitReader;
use crate::h264::{ColourDescription, frame_rate};
use crate::{Error, FrameRate, Result};

pub const OBU_SEQUENCE_HEADER: u8 = 1;
pub const OBU_TEMPORAL_DELIMITER: u8 = 2;
pub const OBU_FRAME_HEADER: u8 = 3;
pub const OBU_TILE_GROUP: u8 = 4;
pub const OBU_METADATA: u8 = 5;
pub const OBU_FRAME: u8 = 6;

const WHAT_OBU: &str = "AV1 OBU";
const WHAT_SEQ: &str = "AV1 sequence header";
const WHAT_AV1C: &str = "AV1CodecConfigurationRecord";

/// One OBU of a low-overhead bitstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Obu<'a> {
    pub obu_type: u8,
    pub temporal_id: u8,
    pub spatial_id: u8,
    /// The OBU payload, after the header and size field.
    pub payload: &'a [u8],
    /// The whole OBU, header included.
    pub raw: &'a [u8],
}

/// Iterator over OBUs; see [`iter_obus`].
#[derive(Clone, Debug)]
pub struct ObuIter<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> ObuIter<'a> {
    fn read(&self) -> Result<(Obu<'a>, usize)> {
        let start = self.pos;
        let rest = &self.data[start..];
        let truncated = |at: usize| Error::Truncated {
            what: WHAT_OBU,
            offset: start + at,
        };
        let header = *rest.first().ok_or(truncated(0))?;
        if header & 0x80 != 0 {
            return Err(Error::Invalid {
                what: WHAT_OBU,
                field: "obu_forbidden_bit",
                value: 1,
            });
        }
        let obu_type = (header >> 3) & 0x0f;
        let mut len = 1;
        let (mut temporal_id, mut spatial_id) = (0, 0);
        if header & 0x04 != 0 {
            let ext = *rest.get(1).ok_or(truncated(1))?;
            temporal_id = ext >> 5;
            spatial_id = (ext >> 3) & 0x03;
            len = 2;
        }
        let size = if header & 0x02 != 0 {
            let mut r = BitReader::new(&rest[len..], WHAT_OBU);
            let size = r.read_leb128().map_err(|e| match e {
                Error::Truncated { .. } => truncated(len),
                e => e,
            })?;
            len += r.position() / 8;
            usize::try_from(size).map_err(|_| Error::Invalid {
                what: WHAT_OBU,
                field: "obu_size",
                value: size,
            })?
        } else {
            rest.len() - len
        };
        let end = len.checked_add(size).filter(|&e| e <= rest.len());
        let end = end.ok_or(truncated(len))?;
        Ok((
            Obu {
                obu_type,
                temporal_id,
                spatial_id,
                payload: &rest[len..end],
                raw: &rest[..end],
            },
            end,
        ))
    }
}

impl<'a> Iterator for ObuIter<'a> {
    type Item = Result<Obu<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        match self.read() {
            Ok((obu, used)) => {
                self.pos += used;
                Some(Ok(obu))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for ObuIter<'_> {}

/// Iterates over the OBUs of a low-overhead bitstream (the form MP4 samples and the
/// av1C `configOBUs` use). An OBU without a size field runs to the end of `data`.
pub fn iter_obus(data: &[u8]) -> ObuIter<'_> {
    ObuIter {
        data,
        pos: 0,
        done: false,
    }
}

/// A parsed sequence header OBU (the fields this server uses; operating point 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceHeader {
    pub seq_profile: u8,
    pub still_picture: bool,
    pub reduced_still_picture_header: bool,
    pub seq_level_idx: u8,
    pub seq_tier: bool,
    pub max_frame_width: u32,
    pub max_frame_height: u32,
    pub bit_depth: u8,
    pub mono_chrome: bool,
    pub subsampling_x: bool,
    pub subsampling_y: bool,
    pub chroma_sample_position: u8,
    pub colour: Option<ColourDescription>,
    pub full_range: bool,
    /// From `timing_info` when the pictures are equally spaced.
    pub fps: Option<FrameRate>,
}

fn seq_invalid(field: &'static str, value: u64) -> Error {
    Error::Invalid {
        what: WHAT_SEQ,
        field,
        value,
    }
}

impl SequenceHeader {
    /// Parses the payload of a sequence header OBU (after the OBU header and size).
    pub fn parse(payload: &[u8]) -> Result<SequenceHeader> {
        let mut r = BitReader::new(payload, WHAT_SEQ);
        let seq_profile = r.read_bits(3)? as u8;
        if seq_profile > 2 {
            return Err(seq_invalid("seq_profile", u64::from(seq_profile)));
        }
        let still_picture = r.read_flag()?;
        let reduced = r.read_flag()?;
        let mut fps = None;
        let seq_level_idx;
        let mut seq_tier = false;
        if reduced {
            seq_level_idx = r.read_bits(5)? as u8;
        } else {
            let mut decoder_model_info = false;
            let mut buffer_delay_length = 0;
            if r.read_flag()? {
                let num_units_in_display_tick = r.read_bits(32)?;
                let time_scale = r.read_bits(32)?;
                if r.read_flag()? {
                    let ticks_per_picture = u64::from(r.read_uvlc()?) + 1;
                    fps = frame_rate(
                        u64::from(time_scale),
                        u64::from(num_units_in_display_tick) * ticks_per_picture,
                    );
                }
                decoder_model_info = r.read_flag()?;
                if decoder_model_info {
                    buffer_delay_length = r.read_bits(5)? + 1;
                    // num_units_in_decoding_tick, buffer_removal_time_length_minus_1,
                    // frame_presentation_time_length_minus_1
                    r.skip(32 + 5 + 5)?;
                }
            }
            let initial_display_delay = r.read_flag()?;
            let op_count = r.read_bits(5)? + 1;
            let mut first = None;
            for _ in 0..op_count {
                // operating_point_idc
                r.skip(12)?;
                let level = r.read_bits(5)? as u8;
                let tier = level > 7 && r.read_flag()?;
                first.get_or_insert((level, tier));
                if decoder_model_info && r.read_flag()? {
                    // decoder_buffer_delay, encoder_buffer_delay, low_delay_mode_flag
                    r.skip(2 * buffer_delay_length as usize + 1)?;
                }
                if initial_display_delay && r.read_flag()? {
                    r.skip(4)?;
                }
            }
            // op_count >= 1, so `first` is set.
            (seq_level_idx, seq_tier) = first.unwrap_or((0, false));
        }
        let width_bits = r.read_bits(4)? + 1;
        let height_bits = r.read_bits(4)? + 1;
        let max_frame_width = r.read_bits(width_bits)? + 1;
        let max_frame_height = r.read_bits(height_bits)? + 1;
        if !reduced && r.read_flag()? {
            // delta_frame_id_length_minus_2, additional_frame_id_length_minus_1
            r.skip(7)?;
        }
        // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
        r.skip(3)?;
        if !reduced {
            // enable_interintra_compound, enable_masked_compound, enable_warped_motion,
            // enable_dual_filter
            r.skip(4)?;
            let order_hint = r.read_flag()?;
            if order_hint {
                // enable_jnt_comp, enable_ref_frame_mvs
                r.skip(2)?;
            }
            let force_screen_content_tools = if r.read_flag()? {
                2
            } else {
                u8::from(r.read_flag()?)
            };
            if force_screen_content_tools > 0 && !r.read_flag()? {
                // seq_force_integer_mv
                r.skip(1)?;
            }
            if order_hint {
                r.skip(3)?;
            }
        }
        // enable_superres, enable_cdef, enable_restoration
        r.skip(3)?;

        // color_config()
        let high_bitdepth = r.read_flag()?;
        let bit_depth = if seq_profile == 2 && high_bitdepth {
            if r.read_flag()? { 12 } else { 10 }
        } else if high_bitdepth {
            10
        } else {
            8
        };
        let mono_chrome = seq_profile != 1 && r.read_flag()?;
        let colour = if r.read_flag()? {
            Some(ColourDescription {
                colour_primaries: r.read_u8()?,
                transfer_characteristics: r.read_u8()?,
                matrix_coefficients: r.read_u8()?,
            })
        } else {
            None
        };
        let (full_range, subsampling_x, subsampling_y, mut chroma_sample_position);
        chroma_sample_position = 0;
        if mono_chrome {
            full_range = r.read_flag()?;
            (subsampling_x, subsampling_y) = (true, true);
        } else if colour.is_some_and(|c| {
            c.colour_primaries == 1
                && c.transfer_characteristics == 13
                && c.matrix_coefficients == 0
        }) {
            full_range = true;
            (subsampling_x, subsampling_y) = (false, false);
        } else {
            full_range = r.read_flag()?;
            (subsampling_x, subsampling_y) = match seq_profile {
                0 => (true, true),
                1 => (false, false),
                _ if bit_depth == 12 => {
                    let x = r.read_flag()?;
                    (x, x && r.read_flag()?)
                }
                _ => (true, false),
            };
            if subsampling_x && subsampling_y {
                chroma_sample_position = r.read_bits(2)? as u8;
            }
        }
        if !mono_chrome {
            // separate_uv_delta_q
            r.skip(1)?;
        }
        // film_grain_params_present
        r.skip(1)?;
        Ok(SequenceHeader {
            seq_profile,
            still_picture,
            reduced_still_picture_header: reduced,
            seq_level_idx,
            seq_tier,
            max_frame_width,
            max_frame_height,
            bit_depth,
            mono_chrome,
            subsampling_x,
            subsampling_y,
            chroma_sample_position,
            colour,
            full_range,
            fps,
        })
    }

    /// Finds and parses the first sequence header OBU in a low-overhead bitstream.
    pub fn find(obus: &[u8]) -> Result<Option<SequenceHeader>> {
        for obu in iter_obus(obus) {
            let obu = obu?;
            if obu.obu_type == OBU_SEQUENCE_HEADER {
                return SequenceHeader::parse(obu.payload).map(Some);
            }
        }
        Ok(None)
    }
}

/// An AV1CodecConfigurationRecord: the body of an `av1C` box and of the enhanced RTMP
/// AV1 sequence header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Av1Config {
    pub seq_profile: u8,
    pub seq_level_idx_0: u8,
    pub seq_tier_0: bool,
    pub high_bitdepth: bool,
    pub twelve_bit: bool,
    pub monochrome: bool,
    pub chroma_subsampling_x: bool,
    pub chroma_subsampling_y: bool,
    pub chroma_sample_position: u8,
    pub initial_presentation_delay_minus_one: Option<u8>,
    /// Zero or more OBUs, normally one sequence header OBU.
    pub config_obus: Bytes,
}

impl Av1Config {
    /// Parses an AV1CodecConfigurationRecord; the OBUs' framing is checked.
    pub fn parse(data: &[u8]) -> Result<Av1Config> {
        let head = data.get(..4).ok_or(Error::Truncated {
            what: WHAT_AV1C,
            offset: data.len(),
        })?;
        if head[0] != 0x81 {
            return Err(Error::Invalid {
                what: WHAT_AV1C,
                field: "marker and version",
                value: u64::from(head[0]),
            });
        }
        let config_obus = &data[4..];
        for obu in iter_obus(config_obus) {
            obu.map_err(|e| match e {
                Error::Truncated { offset, .. } => Error::Truncated {
                    what: WHAT_AV1C,
                    offset: offset + 4,
                },
                e => e,
            })?;
        }
        Ok(Av1Config {
            seq_profile: head[1] >> 5,
            seq_level_idx_0: head[1] & 0x1f,
            seq_tier_0: head[2] & 0x80 != 0,
            high_bitdepth: head[2] & 0x40 != 0,
            twelve_bit: head[2] & 0x20 != 0,
            monochrome: head[2] & 0x10 != 0,
            chroma_subsampling_x: head[2] & 0x08 != 0,
            chroma_subsampling_y: head[2] & 0x04 != 0,
            chroma_sample_position: head[2] & 0x03,
            initial_presentation_delay_minus_one: (head[3] & 0x10 != 0).then_some(head[3] & 0x0f),
            config_obus: Bytes::copy_from_slice(config_obus),
        })
    }

    /// Serializes the record.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(4 + self.config_obus.len());
        out.put_u8(0x81);
        out.put_u8((self.seq_profile << 5) | (self.seq_level_idx_0 & 0x1f));
        out.put_u8(
            (u8::from(self.seq_tier_0) << 7)
                | (u8::from(self.high_bitdepth) << 6)
                | (u8::from(self.twelve_bit) << 5)
                | (u8::from(self.monochrome) << 4)
                | (u8::from(self.chroma_subsampling_x) << 3)
                | (u8::from(self.chroma_subsampling_y) << 2)
                | (self.chroma_sample_position & 0x03),
        );
        out.put_u8(match self.initial_presentation_delay_minus_one {
            Some(d) => 0x10 | (d & 0x0f),
            None => 0,
        });
        out.extend_from_slice(&self.config_obus);
        out.freeze()
    }

    /// Builds a record from a sequence header OBU (header and size field included).
    pub fn from_sequence_header(obu: &[u8]) -> Result<Av1Config> {
        let parsed = iter_obus(obu).next().ok_or(Error::Truncated {
            what: WHAT_OBU,
            offset: 0,
        })??;
        if parsed.obu_type != OBU_SEQUENCE_HEADER {
            return Err(Error::Invalid {
                what: WHAT_OBU,
                field: "obu_type (want a sequence header)",
                value: u64::from(parsed.obu_type),
            });
        }
        let seq = SequenceHeader::parse(parsed.payload)?;
        Ok(Av1Config {
            seq_profile: seq.seq_profile,
            seq_level_idx_0: seq.seq_level_idx,
            seq_tier_0: seq.seq_tier,
            high_bitdepth: seq.bit_depth > 8,
            twelve_bit: seq.bit_depth == 12,
            monochrome: seq.mono_chrome,
            chroma_subsampling_x: seq.subsampling_x,
            chroma_subsampling_y: seq.subsampling_y,
            chroma_sample_position: seq.chroma_sample_position,
            initial_presentation_delay_minus_one: None,
            config_obus: Bytes::copy_from_slice(parsed.raw),
        })
    }

    /// The sequence header in `config_obus`, when there is one.
    pub fn sequence_header(&self) -> Result<Option<SequenceHeader>> {
        SequenceHeader::find(&self.config_obus)
    }

    pub fn bit_depth(&self) -> u8 {
        match (self.high_bitdepth, self.twelve_bit) {
            (true, true) => 12,
            (true, false) => 10,
            _ => 8,
        }
    }

    /// `av01.<profile>.<level, 2 digits><M|H>.<bit depth, 2 digits>`.
    pub fn rfc6381(&self) -> String {
        format!(
            "av01.{}.{:02}{}.{:02}",
            self.seq_profile,
            self.seq_level_idx_0,
            if self.seq_tier_0 { 'H' } else { 'M' },
            self.bit_depth()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bits::BitWriter;

    /// `testdata/<name>.av1c` from an MP4 ffmpeg wrote (see gen.sh). Expected sizes,
    /// profiles and levels are ffprobe's (`testdata/ffprobe.txt`:
    /// `ffprobe -show_entries stream=profile,level,width,height,pix_fmt`); codec strings
    /// are ffmpeg's DASH muxer's (`testdata/codecs.txt`).
    /// (name, av1C, profile, level, width, height, bit depth, 4:2:0, codec string)
    type Vector = (
        &'static str,
        &'static [u8],
        u8,
        u8,
        u32,
        u32,
        u8,
        bool,
        &'static str,
    );

    const VECTORS: &[Vector] = &[
        (
            "av1_main_720p30",
            include_bytes!("../testdata/av1_main_720p30.av1c"),
            0,
            5,
            1280,
            720,
            8,
            true,
            "av01.0.05M.08",
        ),
        (
            "av1_main10_642x362",
            include_bytes!("../testdata/av1_main10_642x362.av1c"),
            0,
            1,
            642,
            362,
            10,
            true,
            "av01.0.01M.10",
        ),
        (
            "av1_high444_320x240",
            include_bytes!("../testdata/av1_high444_320x240.av1c"),
            1,
            0,
            320,
            240,
            8,
            false,
            "av01.1.00M.08",
        ),
    ];

    #[test]
    fn real_vectors() {
        for &(name, av1c, profile, level, w, h, depth, subsampled, codec) in VECTORS {
            let cfg = Av1Config::parse(av1c).unwrap();
            assert_eq!(&cfg.to_bytes()[..], av1c, "{name}");
            assert_eq!((cfg.seq_profile, cfg.seq_level_idx_0), (profile, level));
            assert_eq!(cfg.bit_depth(), depth, "{name}");
            assert_eq!(cfg.rfc6381(), codec, "{name}");
            let seq = cfg.sequence_header().unwrap().unwrap();
            assert_eq!(
                (seq.max_frame_width, seq.max_frame_height),
                (w, h),
                "{name}"
            );
            assert_eq!(seq.bit_depth, depth);
            assert_eq!(
                (seq.subsampling_x, seq.subsampling_y),
                (subsampled, subsampled)
            );
            assert_eq!(seq.seq_level_idx, level);
            // The record's fields agree with the sequence header it carries.
            let built = Av1Config::from_sequence_header(&cfg.config_obus).unwrap();
            assert_eq!(built.rfc6381(), codec);
            assert_eq!(
                (
                    built.chroma_subsampling_x,
                    built.chroma_subsampling_y,
                    built.monochrome
                ),
                (
                    cfg.chroma_subsampling_x,
                    cfg.chroma_subsampling_y,
                    cfg.monochrome
                )
            );
        }
    }

    #[test]
    fn truncated_is_err() {
        for &(name, av1c, ..) in VECTORS {
            for n in 0..av1c.len() {
                let r = Av1Config::parse(&av1c[..n]);
                if n == 4 {
                    // A record with no configOBUs is valid, but has no sequence header.
                    assert_eq!(r.unwrap().sequence_header(), Ok(None));
                } else {
                    assert!(
                        matches!(r, Err(Error::Truncated { .. })),
                        "{name} at {n}: {r:?}"
                    );
                }
            }
            let cfg = Av1Config::parse(av1c).unwrap();
            let obu = iter_obus(&cfg.config_obus).next().unwrap().unwrap();
            for n in 0..obu.payload.len() {
                assert!(
                    SequenceHeader::parse(&obu.payload[..n]).is_err(),
                    "{name} at {n}"
                );
            }
        }
    }

    #[test]
    fn timing_info_and_operating_points() {
        // Profile 2, 12-bit 4:2:2, timing info with equal picture interval, decoder model,
        // two operating points, no size field on the OBU.
        let mut w = BitWriter::new();
        w.write_bits(3, 2);
        w.write_bits(2, 0);
        w.write_bit(true); // timing_info_present_flag
        w.write_bits(32, 1001);
        w.write_bits(32, 60000);
        w.write_bit(true); // equal_picture_interval
        w.write_bits(3, 0b010); // uvlc 1: two ticks per picture
        w.write_bit(true); // decoder_model_info_present_flag
        w.write_bits(5, 9); // buffer_delay_length_minus_1
        w.write_bits(42, 0);
        w.write_bit(true); // initial_display_delay_present_flag
        w.write_bits(5, 1); // two operating points
        for (level, tier) in [(13u64, true), (4, false)] {
            w.write_bits(12, 0x103);
            w.write_bits(5, level);
            if level > 7 {
                w.write_bit(tier);
            }
            w.write_bit(true); // decoder_model_present_for_this_op
            w.write_bits(21, 0);
            w.write_bit(true);
            w.write_bits(4, 3);
        }
        w.write_bits(4, 11);
        w.write_bits(4, 11);
        w.write_bits(12, 3839);
        w.write_bits(12, 2159);
        w.write_bit(false); // frame_id_numbers_present_flag
        w.write_bits(3, 0);
        w.write_bits(4, 0);
        w.write_bit(true); // enable_order_hint
        w.write_bits(2, 0);
        w.write_bit(false);
        w.write_bit(true); // seq_force_screen_content_tools = 1
        w.write_bit(true); // seq_choose_integer_mv
        w.write_bits(3, 6);
        w.write_bits(3, 0);
        w.write_bit(true); // high_bitdepth
        w.write_bit(true); // twelve_bit
        w.write_bit(false); // mono_chrome
        w.write_bit(true);
        w.write_bits(24, 0x09_10_09);
        w.write_bit(false); // color_range
        w.write_bit(true); // subsampling_x
        w.write_bit(false); // subsampling_y
        w.write_bit(false);
        w.write_bit(false);
        w.write_trailing_bits();
        let payload = w.into_bytes();
        let mut obu = vec![OBU_SEQUENCE_HEADER << 3];
        obu.extend_from_slice(&payload);
        let seq = SequenceHeader::find(&obu).unwrap().unwrap();
        assert_eq!((seq.max_frame_width, seq.max_frame_height), (3840, 2160));
        assert_eq!((seq.seq_level_idx, seq.seq_tier), (13, true));
        assert_eq!(seq.bit_depth, 12);
        assert_eq!((seq.subsampling_x, seq.subsampling_y), (true, false));
        assert_eq!(
            seq.fps,
            Some(FrameRate {
                num: 30000,
                den: 1001
            })
        );
        assert_eq!(seq.colour.unwrap().transfer_characteristics, 16);
        let cfg = Av1Config::from_sequence_header(&obu).unwrap();
        assert_eq!(cfg.rfc6381(), "av01.2.13H.12");
        assert!(Av1Config::from_sequence_header(&[OBU_TEMPORAL_DELIMITER << 3 | 2, 0]).is_err());
    }

    #[test]
    fn obu_framing() {
        // temporal delimiter (size 0), then a padding OBU with extension, size 2.
        let data = [0x12, 0x00, 0x7e, 0x28, 0x02, 0xaa, 0xbb];
        let obus: Vec<Obu<'_>> = iter_obus(&data).collect::<Result<_>>().unwrap();
        assert_eq!(obus.len(), 2);
        assert_eq!(obus[0].obu_type, OBU_TEMPORAL_DELIMITER);
        assert_eq!(
            (obus[1].obu_type, obus[1].temporal_id, obus[1].spatial_id),
            (15, 1, 1)
        );
        assert_eq!(obus[1].payload, &[0xaa, 0xbb]);
        for n in 1..data.len() {
            let r: Result<Vec<_>> = iter_obus(&data[..n]).collect();
            assert_eq!(r.is_ok(), n == 2, "{n}");
        }
        assert!(iter_obus(&[0x80]).next().unwrap().is_err());
    }
}
