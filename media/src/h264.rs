//! H.264 / AVC: NAL unit types, the sequence parameter set (ITU-T H.264 7.3.2.1) and
//! the AVCDecoderConfigurationRecord (`avcC`, ISO/IEC 14496-15 5.3.3.1).
//!
//! [`Sps::parse`] reads everything up to the VUI timing info: profile and level, chroma
//! format and bit depths (high profiles, scaling lists included), the picture size with
//! cropping applied (field coding included), the sample aspect ratio, the colour
//! description and the frame rate.

use bytes::{BufMut, Bytes, BytesMut};

use crate::bits::{BitReader, unescape_rbsp};
use crate::{Error, FrameRate, Result};

/// Coded slice of a non-IDR picture.
pub const NAL_SLICE: u8 = 1;
/// Coded slice of an IDR picture.
pub const NAL_IDR: u8 = 5;
/// Supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// Sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// Picture parameter set.
pub const NAL_PPS: u8 = 8;
/// Access unit delimiter.
pub const NAL_AUD: u8 = 9;
/// Sequence parameter set extension.
pub const NAL_SPS_EXT: u8 = 13;

const WHAT_SPS: &str = "H.264 SPS";
const WHAT_AVCC: &str = "AVCDecoderConfigurationRecord";

/// The `nal_unit_type` of a NAL unit (its first byte's low 5 bits); `None` when empty.
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1f)
}

/// True for a coded slice of an IDR picture.
pub fn is_idr(nal: &[u8]) -> bool {
    nal_type(nal) == Some(NAL_IDR)
}

/// True for a VCL NAL unit (a coded slice or slice data partition, types 1 to 5).
pub fn is_vcl(nal: &[u8]) -> bool {
    matches!(nal_type(nal), Some(1..=5))
}

/// True when an access unit in 4-byte length-prefixed form holds an IDR slice.
/// Malformed framing counts as no IDR.
pub fn contains_idr(length_prefixed: &[u8]) -> bool {
    crate::nal::iter_length_prefixed(length_prefixed, 4)
        .map_while(Result::ok)
        .any(is_idr)
}

/// The VUI colour description (H.264 Table E-3 to E-5; the same code points as H.265
/// and ISO/IEC 23091-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColourDescription {
    pub colour_primaries: u8,
    pub transfer_characteristics: u8,
    pub matrix_coefficients: u8,
}

/// Sample aspect ratio for `aspect_ratio_idc` 1 to 16 (H.264 Table E-1, H.265 Table E-1).
pub(crate) fn sar_from_idc(idc: u8) -> Option<(u16, u16)> {
    const TABLE: [(u16, u16); 16] = [
        (1, 1),
        (12, 11),
        (10, 11),
        (16, 11),
        (40, 33),
        (24, 11),
        (20, 11),
        (32, 11),
        (80, 33),
        (18, 11),
        (15, 11),
        (64, 33),
        (160, 99),
        (4, 3),
        (3, 2),
        (2, 1),
    ];
    TABLE.get(usize::from(idc).checked_sub(1)?).copied()
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `num / den` reduced, when both are non-zero and fit in u32 after reduction.
pub(crate) fn frame_rate(num: u64, den: u64) -> Option<FrameRate> {
    if num == 0 || den == 0 {
        return None;
    }
    let g = gcd(num, den);
    Some(FrameRate {
        num: u32::try_from(num / g).ok()?,
        den: u32::try_from(den / g).ok()?,
    })
}

/// The start of the VUI shared by H.264 and H.265 (up to and including the fields both
/// have before their codec-specific parts), read into `vui`.
pub(crate) struct VuiCommon {
    pub sar: Option<(u16, u16)>,
    pub full_range: bool,
    pub colour: Option<ColourDescription>,
}

pub(crate) fn read_vui_common(r: &mut BitReader<'_>) -> Result<VuiCommon> {
    let mut sar = None;
    if r.read_flag()? {
        let idc = r.read_u8()?;
        sar = if idc == 255 {
            let w = r.read_bits(16)? as u16;
            let h = r.read_bits(16)? as u16;
            (w != 0 && h != 0).then_some((w, h))
        } else {
            sar_from_idc(idc)
        };
    }
    if r.read_flag()? {
        // overscan_appropriate_flag
        r.skip(1)?;
    }
    let mut full_range = false;
    let mut colour = None;
    if r.read_flag()? {
        // video_format
        r.skip(3)?;
        full_range = r.read_flag()?;
        if r.read_flag()? {
            colour = Some(ColourDescription {
                colour_primaries: r.read_u8()?,
                transfer_characteristics: r.read_u8()?,
                matrix_coefficients: r.read_u8()?,
            });
        }
    }
    if r.read_flag()? {
        // chroma_sample_loc_type_top_field, _bottom_field
        r.read_ue()?;
        r.read_ue()?;
    }
    Ok(VuiCommon {
        sar,
        full_range,
        colour,
    })
}

/// VUI `timing_info`: the clock the stream's timestamps tick on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimingInfo {
    pub num_units_in_tick: u32,
    pub time_scale: u32,
    pub fixed_frame_rate: bool,
}

/// A parsed H.264 sequence parameter set (the fields this server uses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sps {
    pub profile_idc: u8,
    /// `constraint_set0_flag` (MSB) to `constraint_set5_flag` and the two reserved bits:
    /// the middle byte of an `avc1.PPCCLL` codec string.
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub sps_id: u32,
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    pub separate_colour_plane: bool,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    /// True when the SPS carries its own scaling matrices.
    pub scaling_matrix_present: bool,
    pub log2_max_frame_num: u8,
    pub pic_order_cnt_type: u8,
    pub max_num_ref_frames: u32,
    /// False for streams that may code fields (interlaced or PAFF/MBAFF).
    pub frame_mbs_only: bool,
    /// Decoded size in whole macroblocks, before cropping.
    pub coded_width: u32,
    pub coded_height: u32,
    /// Display size: the coded size minus the cropping rectangle.
    pub width: u32,
    pub height: u32,
    /// Sample aspect ratio from the VUI, when signalled.
    pub sar: Option<(u16, u16)>,
    pub full_range: bool,
    pub colour: Option<ColourDescription>,
    pub timing: Option<TimingInfo>,
    /// `time_scale / (2 * num_units_in_tick)` when the VUI has timing info.
    pub fps: Option<FrameRate>,
}

/// Profiles whose SPS carries chroma format, bit depths and scaling matrices.
fn has_chroma_info(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Profiles whose avcC carries the chroma format and bit depth extension. ISO/IEC
/// 14496-15 lists 100, 110, 122 and 144; like ffmpeg we write it for every profile whose
/// SPS has those fields, and read it for any profile but Baseline, Main and Extended.
fn has_high_ext(profile_idc: u8) -> bool {
    profile_idc == 144 || has_chroma_info(profile_idc)
}

/// Reads (and discards) one `scaling_list()` of `size` coefficients (7.3.2.1.1.1).
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<()> {
    let mut last = 8i32;
    let mut next = 8i32;
    for _ in 0..size {
        if next != 0 {
            let delta = r.read_se()?;
            if !(-128..=127).contains(&delta) {
                return Err(Error::Invalid {
                    what: WHAT_SPS,
                    field: "delta_scale",
                    value: delta as u64,
                });
            }
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

fn invalid(field: &'static str, value: u64) -> Error {
    Error::Invalid {
        what: WHAT_SPS,
        field,
        value,
    }
}

fn ue_at_most(r: &mut BitReader<'_>, field: &'static str, max: u32) -> Result<u32> {
    let v = r.read_ue()?;
    if v > max {
        return Err(invalid(field, u64::from(v)));
    }
    Ok(v)
}

impl Sps {
    /// Parses an SPS NAL unit (header byte included, emulation prevention not removed).
    pub fn parse(nal: &[u8]) -> Result<Sps> {
        let header = *nal.first().ok_or(Error::Truncated {
            what: WHAT_SPS,
            offset: 0,
        })?;
        if header & 0x1f != NAL_SPS {
            return Err(invalid("nal_unit_type", u64::from(header & 0x1f)));
        }
        let rbsp = unescape_rbsp(&nal[1..]);
        let mut r = BitReader::new(&rbsp, WHAT_SPS);
        let profile_idc = r.read_u8()?;
        let constraint_flags = r.read_u8()?;
        let level_idc = r.read_u8()?;
        let sps_id = ue_at_most(&mut r, "seq_parameter_set_id", 31)?;

        let mut chroma_format_idc = 1;
        let mut separate_colour_plane = false;
        let mut bit_depth_luma = 8;
        let mut bit_depth_chroma = 8;
        let mut scaling_matrix_present = false;
        if has_chroma_info(profile_idc) {
            chroma_format_idc = ue_at_most(&mut r, "chroma_format_idc", 3)? as u8;
            if chroma_format_idc == 3 {
                separate_colour_plane = r.read_flag()?;
            }
            bit_depth_luma = ue_at_most(&mut r, "bit_depth_luma_minus8", 6)? as u8 + 8;
            bit_depth_chroma = ue_at_most(&mut r, "bit_depth_chroma_minus8", 6)? as u8 + 8;
            // qpprime_y_zero_transform_bypass_flag
            r.skip(1)?;
            scaling_matrix_present = r.read_flag()?;
            if scaling_matrix_present {
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.read_flag()? {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }

        let log2_max_frame_num = ue_at_most(&mut r, "log2_max_frame_num_minus4", 12)? as u8 + 4;
        let pic_order_cnt_type = ue_at_most(&mut r, "pic_order_cnt_type", 2)? as u8;
        match pic_order_cnt_type {
            0 => {
                ue_at_most(&mut r, "log2_max_pic_order_cnt_lsb_minus4", 12)?;
            }
            1 => {
                // delta_pic_order_always_zero_flag, offset_for_non_ref_pic,
                // offset_for_top_to_bottom_field
                r.skip(1)?;
                r.read_se()?;
                r.read_se()?;
                let n = ue_at_most(&mut r, "num_ref_frames_in_pic_order_cnt_cycle", 255)?;
                for _ in 0..n {
                    r.read_se()?;
                }
            }
            _ => {}
        }
        let max_num_ref_frames = r.read_ue()?;
        // gaps_in_frame_num_value_allowed_flag
        r.skip(1)?;
        let width_mbs = u64::from(r.read_ue()?) + 1;
        let height_map_units = u64::from(r.read_ue()?) + 1;
        let frame_mbs_only = r.read_flag()?;
        if !frame_mbs_only {
            // mb_adaptive_frame_field_flag
            r.skip(1)?;
        }
        // direct_8x8_inference_flag
        r.skip(1)?;
        let field_factor: u64 = if frame_mbs_only { 1 } else { 2 };
        let coded_width = width_mbs * 16;
        let coded_height = height_map_units * 16 * field_factor;
        let (mut crop_x, mut crop_y) = (0u64, 0u64);
        if r.read_flag()? {
            let left = u64::from(r.read_ue()?);
            let right = u64::from(r.read_ue()?);
            let top = u64::from(r.read_ue()?);
            let bottom = u64::from(r.read_ue()?);
            let chroma_array_type = if separate_colour_plane {
                0
            } else {
                chroma_format_idc
            };
            let (unit_x, unit_y) = match chroma_array_type {
                0 => (1, field_factor),
                1 => (2, 2 * field_factor),
                2 => (2, field_factor),
                _ => (1, field_factor),
            };
            crop_x = (left + right) * unit_x;
            crop_y = (top + bottom) * unit_y;
        }
        let size = |v: u64, field| u32::try_from(v).map_err(|_| invalid(field, v));
        let coded_width = size(coded_width, "pic_width_in_mbs_minus1")?;
        let coded_height = size(coded_height, "pic_height_in_map_units_minus1")?;
        let width = u64::from(coded_width)
            .checked_sub(crop_x)
            .filter(|&w| w > 0)
            .ok_or_else(|| invalid("frame_crop_left/right_offset", crop_x))?;
        let height = u64::from(coded_height)
            .checked_sub(crop_y)
            .filter(|&h| h > 0)
            .ok_or_else(|| invalid("frame_crop_top/bottom_offset", crop_y))?;

        let mut sps = Sps {
            profile_idc,
            constraint_flags,
            level_idc,
            sps_id,
            chroma_format_idc,
            separate_colour_plane,
            bit_depth_luma,
            bit_depth_chroma,
            scaling_matrix_present,
            log2_max_frame_num,
            pic_order_cnt_type,
            max_num_ref_frames,
            frame_mbs_only,
            coded_width,
            coded_height,
            width: width as u32,
            height: height as u32,
            sar: None,
            full_range: false,
            colour: None,
            timing: None,
            fps: None,
        };
        if r.read_flag()? {
            let vui = read_vui_common(&mut r)?;
            sps.sar = vui.sar;
            sps.full_range = vui.full_range;
            sps.colour = vui.colour;
            if r.read_flag()? {
                let timing = TimingInfo {
                    num_units_in_tick: r.read_bits(32)?,
                    time_scale: r.read_bits(32)?,
                    fixed_frame_rate: r.read_flag()?,
                };
                sps.fps = frame_rate(
                    u64::from(timing.time_scale),
                    2 * u64::from(timing.num_units_in_tick),
                );
                sps.timing = Some(timing);
            }
            // The HRD parameters and bitstream restriction that follow are not needed.
        }
        Ok(sps)
    }

    /// `avc1.PPCCLL`: profile, constraint flags and level as six hex digits.
    pub fn rfc6381(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }
}

/// The extra fields an avcC carries for the high profiles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvcHighExt {
    pub chroma_format: u8,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    pub sps_ext: Vec<Bytes>,
}

/// An AVCDecoderConfigurationRecord: the body of an `avcC` box and of the RTMP/FLV
/// AVC sequence header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvcConfig {
    pub profile_idc: u8,
    /// `profile_compatibility`: the SPS constraint flags byte.
    pub profile_compat: u8,
    pub level_idc: u8,
    /// Bytes per NAL unit length in samples: 1, 2 or 4.
    pub nal_length_size: u8,
    /// SPS NAL units (header included, emulation prevention bytes kept).
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
    /// Present for the high profiles when the record carries it.
    pub high: Option<AvcHighExt>,
}

fn avcc_truncated(offset: usize) -> Error {
    Error::Truncated {
        what: WHAT_AVCC,
        offset,
    }
}

/// Reads `count` units each preceded by a 16-bit length, starting at `*pos`.
pub(crate) fn read_u16_units(
    data: &[u8],
    pos: &mut usize,
    count: usize,
    what: &'static str,
) -> Result<Vec<Bytes>> {
    let mut out = Vec::with_capacity(count.min(32));
    for _ in 0..count {
        let len_bytes = data
            .get(*pos..*pos + 2)
            .ok_or(Error::Truncated { what, offset: *pos })?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        let unit = data
            .get(*pos + 2..*pos + 2 + len)
            .ok_or(Error::Truncated { what, offset: *pos })?;
        out.push(Bytes::copy_from_slice(unit));
        *pos += 2 + len;
    }
    Ok(out)
}

fn put_u16_units(out: &mut BytesMut, units: &[Bytes]) {
    for u in units {
        out.put_u16(u.len() as u16);
        out.extend_from_slice(u);
    }
}

impl AvcConfig {
    /// Parses an AVCDecoderConfigurationRecord.
    pub fn parse(data: &[u8]) -> Result<AvcConfig> {
        let head = data.get(..6).ok_or(avcc_truncated(data.len()))?;
        if head[0] != 1 {
            return Err(Error::Invalid {
                what: WHAT_AVCC,
                field: "configurationVersion",
                value: u64::from(head[0]),
            });
        }
        let nal_length_size = (head[4] & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(Error::Invalid {
                what: WHAT_AVCC,
                field: "lengthSizeMinusOne",
                value: 2,
            });
        }
        let mut pos = 6;
        let sps = read_u16_units(data, &mut pos, usize::from(head[5] & 0x1f), WHAT_AVCC)?;
        let num_pps = *data.get(pos).ok_or(avcc_truncated(pos))?;
        pos += 1;
        let pps = read_u16_units(data, &mut pos, usize::from(num_pps), WHAT_AVCC)?;
        let mut high = None;
        if !matches!(head[1], 66 | 77 | 88) && pos < data.len() {
            let ext = data.get(pos..pos + 4).ok_or(avcc_truncated(data.len()))?;
            pos += 4;
            let sps_ext = read_u16_units(data, &mut pos, usize::from(ext[3]), WHAT_AVCC)?;
            high = Some(AvcHighExt {
                chroma_format: ext[0] & 0x03,
                bit_depth_luma: (ext[1] & 0x07) + 8,
                bit_depth_chroma: (ext[2] & 0x07) + 8,
                sps_ext,
            });
        }
        Ok(AvcConfig {
            profile_idc: head[1],
            profile_compat: head[2],
            level_idc: head[3],
            nal_length_size,
            sps,
            pps,
            high,
        })
    }

    /// Serializes the record.
    ///
    /// Counts and lengths beyond what the format can hold (31 SPS, 255 PPS, 65535
    /// bytes each) are the caller's fault; [`AvcConfig::from_parameter_sets`] checks them.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(
            16 + self
                .sps
                .iter()
                .chain(&self.pps)
                .map(|u| u.len() + 2)
                .sum::<usize>(),
        );
        out.put_u8(1);
        out.put_u8(self.profile_idc);
        out.put_u8(self.profile_compat);
        out.put_u8(self.level_idc);
        out.put_u8(0xfc | (self.nal_length_size.saturating_sub(1) & 0x03));
        out.put_u8(0xe0 | (self.sps.len() as u8 & 0x1f));
        put_u16_units(&mut out, &self.sps);
        out.put_u8(self.pps.len() as u8);
        put_u16_units(&mut out, &self.pps);
        if let Some(h) = &self.high {
            out.put_u8(0xfc | (h.chroma_format & 0x03));
            out.put_u8(0xf8 | (h.bit_depth_luma.saturating_sub(8) & 0x07));
            out.put_u8(0xf8 | (h.bit_depth_chroma.saturating_sub(8) & 0x07));
            out.put_u8(h.sps_ext.len() as u8);
            put_u16_units(&mut out, &h.sps_ext);
        }
        out.freeze()
    }

    /// Builds a record (4-byte NAL lengths) from SPS and PPS NAL units, e.g. the ones an
    /// Annex B stream carries in band. Profile and level come from the first SPS.
    pub fn from_parameter_sets(sps: &[Bytes], pps: &[Bytes]) -> Result<AvcConfig> {
        let first = sps.first().ok_or(Error::Invalid {
            what: WHAT_AVCC,
            field: "numOfSequenceParameterSets",
            value: 0,
        })?;
        let parsed = Sps::parse(first)?;
        check_units(sps, NAL_SPS, 31, "numOfSequenceParameterSets")?;
        check_units(pps, NAL_PPS, 255, "numOfPictureParameterSets")?;
        let high = has_high_ext(parsed.profile_idc).then(|| AvcHighExt {
            chroma_format: parsed.chroma_format_idc,
            bit_depth_luma: parsed.bit_depth_luma,
            bit_depth_chroma: parsed.bit_depth_chroma,
            sps_ext: Vec::new(),
        });
        Ok(AvcConfig {
            profile_idc: parsed.profile_idc,
            profile_compat: parsed.constraint_flags,
            level_idc: parsed.level_idc,
            nal_length_size: 4,
            sps: sps.to_vec(),
            pps: pps.to_vec(),
            high,
        })
    }

    /// Parses the first SPS.
    pub fn first_sps(&self) -> Result<Sps> {
        Sps::parse(self.sps.first().ok_or(Error::Invalid {
            what: WHAT_AVCC,
            field: "numOfSequenceParameterSets",
            value: 0,
        })?)
    }
}

fn check_units(units: &[Bytes], nal_type_want: u8, max: usize, field: &'static str) -> Result<()> {
    if units.len() > max {
        return Err(Error::Invalid {
            what: WHAT_AVCC,
            field,
            value: units.len() as u64,
        });
    }
    for u in units {
        let t = nal_type(u).unwrap_or(0);
        if t != nal_type_want {
            return Err(Error::Invalid {
                what: WHAT_AVCC,
                field: "parameter set nal_unit_type",
                value: u64::from(t),
            });
        }
        if u.len() > usize::from(u16::MAX) {
            return Err(Error::Invalid {
                what: WHAT_AVCC,
                field: "parameter set length",
                value: u.len() as u64,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "h264_tests.rs"]
mod tests;
