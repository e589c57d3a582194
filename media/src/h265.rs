//! H.265 / HEVC: NAL unit types, the sequence parameter set (ITU-T H.265 7.3.2.2) and
//! the HEVCDecoderConfigurationRecord (`hvcC`, ISO/IEC 14496-15 8.3.3.1).
//!
//! Reaching the VUI (where the frame rate lives) means walking the whole SPS: sub-layer
//! ordering info, scaling lists, PCM, short-term reference picture sets (with inter-RPS
//! prediction) and long-term reference pictures. A truncated SPS is an error; a value
//! out of range after the picture size and bit depths leaves `fps` at `None` instead.

use bytes::{BufMut, Bytes, BytesMut};

use crate::bits::{BitReader, unescape_rbsp};
use crate::h264::{ColourDescription, TimingInfo, frame_rate, read_u16_units, read_vui_common};
use crate::{Error, FrameRate, Result};

/// Instantaneous decoding refresh, with leading pictures.
pub const NAL_IDR_W_RADL: u8 = 19;
/// Instantaneous decoding refresh, no leading pictures.
pub const NAL_IDR_N_LP: u8 = 20;
/// Clean random access.
pub const NAL_CRA: u8 = 21;
pub const NAL_VPS: u8 = 32;
pub const NAL_SPS: u8 = 33;
pub const NAL_PPS: u8 = 34;
/// Access unit delimiter.
pub const NAL_AUD: u8 = 35;
pub const NAL_PREFIX_SEI: u8 = 39;
pub const NAL_SUFFIX_SEI: u8 = 40;

const WHAT_SPS: &str = "H.265 SPS";
const WHAT_HVCC: &str = "HEVCDecoderConfigurationRecord";

/// The `nal_unit_type` of a NAL unit (bits 1..7 of its first byte); `None` when empty.
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| (b >> 1) & 0x3f)
}

/// True for an intra random access point picture (BLA, IDR, CRA: types 16 to 23).
pub fn is_irap(nal: &[u8]) -> bool {
    matches!(nal_type(nal), Some(16..=23))
}

/// True for an IDR picture.
pub fn is_idr(nal: &[u8]) -> bool {
    matches!(nal_type(nal), Some(NAL_IDR_W_RADL | NAL_IDR_N_LP))
}

/// True for a VCL NAL unit (types 0 to 31).
pub fn is_vcl(nal: &[u8]) -> bool {
    matches!(nal_type(nal), Some(0..=31))
}

/// True when an access unit in 4-byte length-prefixed form holds an IRAP picture.
/// Malformed framing counts as no IRAP.
pub fn contains_irap(length_prefixed: &[u8]) -> bool {
    crate::nal::iter_length_prefixed(length_prefixed, 4)
        .map_while(Result::ok)
        .any(is_irap)
}

/// The general profile, tier and level (H.265 7.3.3), as both the SPS and the hvcC
/// carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileTierLevel {
    pub profile_space: u8,
    /// False: Main tier; true: High tier.
    pub tier: bool,
    pub profile_idc: u8,
    /// `general_profile_compatibility_flag[j]` is bit `31 - j` (as read, MSB first).
    pub profile_compatibility_flags: u32,
    /// The 48 bits from `general_progressive_source_flag` on, in the low 48 bits.
    pub constraint_flags: u64,
    /// 30 times the level number (120 is level 4).
    pub level_idc: u8,
}

impl ProfileTierLevel {
    fn read(r: &mut BitReader<'_>) -> Result<ProfileTierLevel> {
        Ok(ProfileTierLevel {
            profile_space: r.read_bits(2)? as u8,
            tier: r.read_flag()?,
            profile_idc: r.read_bits(5)? as u8,
            profile_compatibility_flags: r.read_bits(32)?,
            constraint_flags: r.read_bits64(48)?,
            level_idc: r.read_u8()?,
        })
    }

    /// The codec string per ISO/IEC 14496-15 Annex E, with `prefix` `hvc1` or `hev1`:
    /// `hvc1.<space letter><profile_idc>.<compatibility flags bit-reversed, hex>.`
    /// `<L|H><level_idc>[.<constraint byte, 2 hex digits>...]` with trailing zero bytes
    /// left out (as GStreamer writes it).
    pub fn rfc6381(&self, prefix: &str) -> String {
        use std::fmt::Write;
        let space = match self.profile_space {
            1 => "A",
            2 => "B",
            3 => "C",
            _ => "",
        };
        let mut s = format!(
            "{prefix}.{space}{}.{:X}.{}{}",
            self.profile_idc,
            self.profile_compatibility_flags.reverse_bits(),
            if self.tier { 'H' } else { 'L' },
            self.level_idc
        );
        let bytes = self.constraint_flags.to_be_bytes();
        let constraint = &bytes[2..];
        let used = constraint
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1);
        for b in &constraint[..used] {
            // Writing to a String cannot fail.
            let _ = write!(s, ".{b:02X}");
        }
        s
    }
}

/// Skips the sub-layer part of `profile_tier_level(1, max_sub_layers_minus1)`.
fn skip_sub_layers(r: &mut BitReader<'_>, max_sub_layers_minus1: u8) -> Result<()> {
    let n = usize::from(max_sub_layers_minus1);
    let mut present = [(false, false); 8];
    for p in present.iter_mut().take(n) {
        *p = (r.read_flag()?, r.read_flag()?);
    }
    if n > 0 {
        // reserved_zero_2bits for i in max_sub_layers_minus1..8
        r.skip(2 * (8 - n))?;
    }
    for &(profile, level) in present.iter().take(n) {
        if profile {
            r.skip(88)?;
        }
        if level {
            r.skip(8)?;
        }
    }
    Ok(())
}

/// A parsed H.265 sequence parameter set (the fields this server uses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sps {
    pub vps_id: u8,
    pub max_sub_layers: u8,
    pub temporal_id_nesting: bool,
    pub general: ProfileTierLevel,
    pub sps_id: u32,
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    pub separate_colour_plane: bool,
    /// Decoded size before the conformance window.
    pub coded_width: u32,
    pub coded_height: u32,
    /// Output size: the conformance window applied.
    pub width: u32,
    pub height: u32,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    pub log2_max_pic_order_cnt_lsb: u8,
    pub scaling_list_enabled: bool,
    pub num_short_term_ref_pic_sets: u8,
    pub long_term_ref_pics_present: bool,
    /// True when the parser reached the VUI flag (false only for values it could not
    /// accept after the bit depths; the fields below are then unset).
    pub vui_reached: bool,
    pub sar: Option<(u16, u16)>,
    pub full_range: bool,
    pub colour: Option<ColourDescription>,
    /// Pictures are fields (`field_seq_flag`): `fps` is then a field rate.
    pub field_seq: bool,
    pub timing: Option<TimingInfo>,
    /// `time_scale / num_units_in_tick` when the VUI has timing info.
    pub fps: Option<FrameRate>,
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

/// Skips `scaling_list_data()` (7.3.4).
fn skip_scaling_list_data(r: &mut BitReader<'_>) -> Result<()> {
    for size_id in 0..4u32 {
        let step = if size_id == 3 { 3 } else { 1 };
        for _matrix_id in (0..6).step_by(step) {
            if !r.read_flag()? {
                // scaling_list_pred_matrix_id_delta
                ue_at_most(r, "scaling_list_pred_matrix_id_delta", 5)?;
            } else {
                let coefs = 64.min(1 << (4 + (size_id << 1)));
                if size_id > 1 {
                    // scaling_list_dc_coef_minus8
                    r.read_se()?;
                }
                for _ in 0..coefs {
                    r.read_se()?;
                }
            }
        }
    }
    Ok(())
}

/// Reads `st_ref_pic_set(idx)` of the SPS (7.3.7) and returns its `NumDeltaPocs`, given
/// the counts of the sets before it.
///
/// With inter-RPS prediction every entry whose `used_by_curr_pic_flag` or
/// `use_delta_flag` is set counts, as the HM reference decoder and ffmpeg count them
/// (7-61/7-62 would also drop an entry whose delta POC is 0, which no conforming
/// stream has: it would be the current picture).
fn read_st_rps(r: &mut BitReader<'_>, idx: usize, counts: &[usize]) -> Result<usize> {
    let inter = idx != 0 && r.read_flag()?;
    if inter {
        // In the SPS delta_idx_minus1 is not sent: the reference is the previous set.
        let ref_count = counts[idx - 1];
        // delta_rps_sign, abs_delta_rps_minus1
        r.skip(1)?;
        ue_at_most(r, "abs_delta_rps_minus1", (1 << 15) - 1)?;
        let mut count = 0;
        for _ in 0..=ref_count {
            let used_by_curr = r.read_flag()?;
            if used_by_curr || r.read_flag()? {
                count += 1;
            }
        }
        if count > 16 {
            return Err(invalid("NumDeltaPocs", count as u64));
        }
        Ok(count)
    } else {
        let num_negative = ue_at_most(r, "num_negative_pics", 16)?;
        let num_positive = ue_at_most(r, "num_positive_pics", 16)?;
        let count = num_negative + num_positive;
        if count > 16 {
            return Err(invalid("NumDeltaPocs", u64::from(count)));
        }
        for _ in 0..count {
            // delta_poc_sX_minus1, used_by_curr_pic_sX_flag
            r.read_ue()?;
            r.skip(1)?;
        }
        Ok(count as usize)
    }
}

impl Sps {
    /// Parses an SPS NAL unit (2-byte header included, emulation prevention not removed).
    ///
    /// Only base-layer SPSs (`nuh_layer_id` 0) are accepted.
    pub fn parse(nal: &[u8]) -> Result<Sps> {
        let header = nal.get(..2).ok_or(Error::Truncated {
            what: WHAT_SPS,
            offset: nal.len(),
        })?;
        let t = (header[0] >> 1) & 0x3f;
        if t != NAL_SPS {
            return Err(invalid("nal_unit_type", u64::from(t)));
        }
        let layer_id = ((header[0] & 1) << 5) | (header[1] >> 3);
        if layer_id != 0 {
            return Err(Error::Unsupported {
                what: WHAT_SPS,
                detail: "SPS of a layer other than the base layer (nuh_layer_id > 0)",
            });
        }
        let rbsp = unescape_rbsp(&nal[2..]);
        let mut r = BitReader::new(&rbsp, WHAT_SPS);
        let vps_id = r.read_bits(4)? as u8;
        let max_sub_layers_minus1 = r.read_bits(3)? as u8;
        if max_sub_layers_minus1 > 6 {
            return Err(invalid("sps_max_sub_layers_minus1", 7));
        }
        let temporal_id_nesting = r.read_flag()?;
        let general = ProfileTierLevel::read(&mut r)?;
        skip_sub_layers(&mut r, max_sub_layers_minus1)?;
        let sps_id = ue_at_most(&mut r, "sps_seq_parameter_set_id", 15)?;
        let chroma_format_idc = ue_at_most(&mut r, "chroma_format_idc", 3)? as u8;
        let separate_colour_plane = chroma_format_idc == 3 && r.read_flag()?;
        let coded_width = r.read_ue()?;
        let coded_height = r.read_ue()?;
        let (mut crop_x, mut crop_y) = (0u64, 0u64);
        if r.read_flag()? {
            let left = u64::from(r.read_ue()?);
            let right = u64::from(r.read_ue()?);
            let top = u64::from(r.read_ue()?);
            let bottom = u64::from(r.read_ue()?);
            let (sub_w, sub_h) = match (separate_colour_plane, chroma_format_idc) {
                (false, 1) => (2, 2),
                (false, 2) => (2, 1),
                _ => (1, 1),
            };
            crop_x = (left + right) * sub_w;
            crop_y = (top + bottom) * sub_h;
        }
        let width = u64::from(coded_width)
            .checked_sub(crop_x)
            .filter(|&w| w > 0)
            .ok_or_else(|| invalid("conf_win_left/right_offset", crop_x))?;
        let height = u64::from(coded_height)
            .checked_sub(crop_y)
            .filter(|&h| h > 0)
            .ok_or_else(|| invalid("conf_win_top/bottom_offset", crop_y))?;
        let bit_depth_luma = ue_at_most(&mut r, "bit_depth_luma_minus8", 8)? as u8 + 8;
        let bit_depth_chroma = ue_at_most(&mut r, "bit_depth_chroma_minus8", 8)? as u8 + 8;

        let mut sps = Sps {
            vps_id,
            max_sub_layers: max_sub_layers_minus1 + 1,
            temporal_id_nesting,
            general,
            sps_id,
            chroma_format_idc,
            separate_colour_plane,
            coded_width,
            coded_height,
            width: width as u32,
            height: height as u32,
            bit_depth_luma,
            bit_depth_chroma,
            log2_max_pic_order_cnt_lsb: 0,
            scaling_list_enabled: false,
            num_short_term_ref_pic_sets: 0,
            long_term_ref_pics_present: false,
            vui_reached: false,
            sar: None,
            full_range: false,
            colour: None,
            field_seq: false,
            timing: None,
            fps: None,
        };
        match sps.parse_rest(&mut r, max_sub_layers_minus1) {
            Ok(()) => Ok(sps),
            Err(e @ Error::Truncated { .. }) => Err(e),
            // A value we cannot accept past the size and bit depths: keep what we have.
            Err(_) => {
                sps.vui_reached = false;
                sps.sar = None;
                sps.colour = None;
                sps.timing = None;
                sps.fps = None;
                Ok(sps)
            }
        }
    }

    fn parse_rest(&mut self, r: &mut BitReader<'_>, max_sub_layers_minus1: u8) -> Result<()> {
        self.log2_max_pic_order_cnt_lsb =
            ue_at_most(r, "log2_max_pic_order_cnt_lsb_minus4", 12)? as u8 + 4;
        let ordering_info_all = r.read_flag()?;
        let first = if ordering_info_all {
            0
        } else {
            max_sub_layers_minus1
        };
        for _ in first..=max_sub_layers_minus1 {
            // sps_max_dec_pic_buffering_minus1, sps_max_num_reorder_pics,
            // sps_max_latency_increase_plus1
            r.read_ue()?;
            r.read_ue()?;
            r.read_ue()?;
        }
        // log2_min_luma_coding_block_size_minus3, log2_diff_max_min_luma_coding_block_size,
        // log2_min_luma_transform_block_size_minus2,
        // log2_diff_max_min_luma_transform_block_size, max_transform_hierarchy_depth_inter,
        // max_transform_hierarchy_depth_intra
        for _ in 0..6 {
            r.read_ue()?;
        }
        self.scaling_list_enabled = r.read_flag()?;
        if self.scaling_list_enabled && r.read_flag()? {
            skip_scaling_list_data(r)?;
        }
        // amp_enabled_flag, sample_adaptive_offset_enabled_flag
        r.skip(2)?;
        if r.read_flag()? {
            // pcm_sample_bit_depth_luma_minus1, _chroma_minus1 (4 bits each),
            // log2_min_pcm_luma_coding_block_size_minus3,
            // log2_diff_max_min_pcm_luma_coding_block_size, pcm_loop_filter_disabled_flag
            r.skip(8)?;
            r.read_ue()?;
            r.read_ue()?;
            r.skip(1)?;
        }
        let num_sets = ue_at_most(r, "num_short_term_ref_pic_sets", 64)? as usize;
        self.num_short_term_ref_pic_sets = num_sets as u8;
        let mut counts = Vec::with_capacity(num_sets);
        for idx in 0..num_sets {
            let count = read_st_rps(r, idx, &counts)?;
            counts.push(count);
        }
        self.long_term_ref_pics_present = r.read_flag()?;
        if self.long_term_ref_pics_present {
            let n = ue_at_most(r, "num_long_term_ref_pics_sps", 32)?;
            for _ in 0..n {
                // lt_ref_pic_poc_lsb_sps u(v), used_by_curr_pic_lt_sps_flag
                r.skip(usize::from(self.log2_max_pic_order_cnt_lsb) + 1)?;
            }
        }
        // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
        r.skip(2)?;
        self.vui_reached = true;
        if !r.read_flag()? {
            return Ok(());
        }
        let vui = read_vui_common(r)?;
        self.sar = vui.sar;
        self.full_range = vui.full_range;
        self.colour = vui.colour;
        // neutral_chroma_indication_flag
        r.skip(1)?;
        self.field_seq = r.read_flag()?;
        // frame_field_info_present_flag
        r.skip(1)?;
        if r.read_flag()? {
            // default display window offsets
            for _ in 0..4 {
                r.read_ue()?;
            }
        }
        if r.read_flag()? {
            let num_units_in_tick = r.read_bits(32)?;
            let time_scale = r.read_bits(32)?;
            let poc_proportional = r.read_flag()?;
            if poc_proportional {
                // vui_num_ticks_poc_diff_one_minus1
                r.read_ue()?;
            }
            self.timing = Some(TimingInfo {
                num_units_in_tick,
                time_scale,
                fixed_frame_rate: poc_proportional,
            });
            self.fps = frame_rate(u64::from(time_scale), u64::from(num_units_in_tick));
        }
        // HRD parameters and bitstream restriction follow; not needed.
        Ok(())
    }

    /// The codec string (`hvc1.…`), from the general profile, tier and level.
    pub fn rfc6381(&self) -> String {
        self.general.rfc6381("hvc1")
    }
}

/// One array of an hvcC: NAL units of one type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HevcNalArray {
    /// `array_completeness`: all units of this type are here, none in band.
    pub completeness: bool,
    pub nal_type: u8,
    pub nalus: Vec<Bytes>,
}

/// An HEVCDecoderConfigurationRecord: the body of an `hvcC` box and of the enhanced
/// RTMP HEVC sequence header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HevcConfig {
    pub general: ProfileTierLevel,
    pub min_spatial_segmentation_idc: u16,
    pub parallelism_type: u8,
    pub chroma_format_idc: u8,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    /// Frames per 256 seconds; 0 unspecified.
    pub avg_frame_rate: u16,
    pub constant_frame_rate: u8,
    pub num_temporal_layers: u8,
    pub temporal_id_nested: bool,
    /// Bytes per NAL unit length in samples: 1, 2 or 4.
    pub nal_length_size: u8,
    pub arrays: Vec<HevcNalArray>,
}

fn hvcc_truncated(offset: usize) -> Error {
    Error::Truncated {
        what: WHAT_HVCC,
        offset,
    }
}

impl HevcConfig {
    /// Parses an HEVCDecoderConfigurationRecord.
    pub fn parse(data: &[u8]) -> Result<HevcConfig> {
        let head = data.get(..23).ok_or(hvcc_truncated(data.len()))?;
        if head[0] != 1 {
            return Err(Error::Invalid {
                what: WHAT_HVCC,
                field: "configurationVersion",
                value: u64::from(head[0]),
            });
        }
        let mut r = BitReader::new(&head[1..13], WHAT_HVCC);
        let general = ProfileTierLevel::read(&mut r)?;
        let nal_length_size = (head[21] & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(Error::Invalid {
                what: WHAT_HVCC,
                field: "lengthSizeMinusOne",
                value: 2,
            });
        }
        let mut pos = 23;
        let mut arrays = Vec::with_capacity(usize::from(head[22]).min(8));
        for _ in 0..head[22] {
            let h = data.get(pos..pos + 3).ok_or(hvcc_truncated(pos))?;
            pos += 3;
            let count = usize::from(u16::from_be_bytes([h[1], h[2]]));
            let nalus = read_u16_units(data, &mut pos, count, WHAT_HVCC)?;
            arrays.push(HevcNalArray {
                completeness: h[0] & 0x80 != 0,
                nal_type: h[0] & 0x3f,
                nalus,
            });
        }
        Ok(HevcConfig {
            general,
            min_spatial_segmentation_idc: u16::from_be_bytes([head[13], head[14]]) & 0x0fff,
            parallelism_type: head[15] & 0x03,
            chroma_format_idc: head[16] & 0x03,
            bit_depth_luma: (head[17] & 0x07) + 8,
            bit_depth_chroma: (head[18] & 0x07) + 8,
            avg_frame_rate: u16::from_be_bytes([head[19], head[20]]),
            constant_frame_rate: head[21] >> 6,
            num_temporal_layers: (head[21] >> 3) & 0x07,
            temporal_id_nested: head[21] & 0x04 != 0,
            nal_length_size,
            arrays,
        })
    }

    /// Serializes the record. Counts and lengths beyond the format's fields (255
    /// arrays, 65535 units or bytes) are the caller's fault;
    /// [`HevcConfig::from_parameter_sets`] checks them.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(
            64 + self
                .arrays
                .iter()
                .flat_map(|a| &a.nalus)
                .map(|u| u.len() + 2)
                .sum::<usize>(),
        );
        let g = &self.general;
        out.put_u8(1);
        out.put_u8((g.profile_space << 6) | (u8::from(g.tier) << 5) | (g.profile_idc & 0x1f));
        out.put_u32(g.profile_compatibility_flags);
        out.put_slice(&g.constraint_flags.to_be_bytes()[2..]);
        out.put_u8(g.level_idc);
        out.put_u16(0xf000 | (self.min_spatial_segmentation_idc & 0x0fff));
        out.put_u8(0xfc | (self.parallelism_type & 0x03));
        out.put_u8(0xfc | (self.chroma_format_idc & 0x03));
        out.put_u8(0xf8 | (self.bit_depth_luma.saturating_sub(8) & 0x07));
        out.put_u8(0xf8 | (self.bit_depth_chroma.saturating_sub(8) & 0x07));
        out.put_u16(self.avg_frame_rate);
        out.put_u8(
            (self.constant_frame_rate << 6)
                | ((self.num_temporal_layers & 0x07) << 3)
                | (u8::from(self.temporal_id_nested) << 2)
                | (self.nal_length_size.saturating_sub(1) & 0x03),
        );
        out.put_u8(self.arrays.len() as u8);
        for a in &self.arrays {
            out.put_u8((u8::from(a.completeness) << 7) | (a.nal_type & 0x3f));
            out.put_u16(a.nalus.len() as u16);
            for u in &a.nalus {
                out.put_u16(u.len() as u16);
                out.extend_from_slice(u);
            }
        }
        out.freeze()
    }

    /// Builds a record (4-byte NAL lengths, arrays marked complete, as for `hvc1`) from
    /// VPS, SPS and PPS NAL units. Profile, level, chroma format, bit depths and temporal
    /// layering come from the first SPS.
    pub fn from_parameter_sets(vps: &[Bytes], sps: &[Bytes], pps: &[Bytes]) -> Result<HevcConfig> {
        let first = sps.first().ok_or(Error::Invalid {
            what: WHAT_HVCC,
            field: "SPS count",
            value: 0,
        })?;
        let parsed = Sps::parse(first)?;
        let mut arrays = Vec::with_capacity(3);
        for (units, want) in [(vps, NAL_VPS), (sps, NAL_SPS), (pps, NAL_PPS)] {
            if units.len() > usize::from(u16::MAX) {
                return Err(Error::Invalid {
                    what: WHAT_HVCC,
                    field: "numNalus",
                    value: units.len() as u64,
                });
            }
            for u in units {
                let t = nal_type(u).unwrap_or(0);
                if t != want || u.len() < 2 {
                    return Err(Error::Invalid {
                        what: WHAT_HVCC,
                        field: "parameter set nal_unit_type",
                        value: u64::from(t),
                    });
                }
                if u.len() > usize::from(u16::MAX) {
                    return Err(Error::Invalid {
                        what: WHAT_HVCC,
                        field: "nalUnitLength",
                        value: u.len() as u64,
                    });
                }
            }
            if !units.is_empty() {
                arrays.push(HevcNalArray {
                    completeness: true,
                    nal_type: want,
                    nalus: units.to_vec(),
                });
            }
        }
        Ok(HevcConfig {
            general: parsed.general,
            min_spatial_segmentation_idc: 0,
            parallelism_type: 0,
            chroma_format_idc: parsed.chroma_format_idc,
            bit_depth_luma: parsed.bit_depth_luma,
            bit_depth_chroma: parsed.bit_depth_chroma,
            avg_frame_rate: 0,
            constant_frame_rate: 0,
            num_temporal_layers: parsed.max_sub_layers,
            temporal_id_nested: parsed.temporal_id_nesting,
            nal_length_size: 4,
            arrays,
        })
    }

    /// The NAL units of one type, across arrays.
    pub fn nalus(&self, nal_type: u8) -> impl Iterator<Item = &Bytes> {
        self.arrays
            .iter()
            .filter(move |a| a.nal_type == nal_type)
            .flat_map(|a| &a.nalus)
    }

    /// Parses the first base-layer SPS (`nuh_layer_id` 0).
    pub fn first_sps(&self) -> Result<Sps> {
        let base_layer = |u: &&Bytes| u.len() >= 2 && u[0] & 1 == 0 && u[1] >> 3 == 0;
        Sps::parse(self.nalus(NAL_SPS).find(base_layer).ok_or(Error::Invalid {
            what: WHAT_HVCC,
            field: "SPS count",
            value: 0,
        })?)
    }

    /// The codec string, `hvc1.…` (from the record's own profile, tier and level).
    pub fn rfc6381(&self) -> String {
        self.general.rfc6381("hvc1")
    }
}

#[cfg(test)]
#[path = "h265_tests.rs"]
mod tests;
