//! AAC: the AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) and ADTS headers (1.A.2).
//!
//! [`AudioSpecificConfig::parse`] reads the object type (escape 31 included), the
//! sampling frequency (index or explicit 24-bit value), the channel configuration (or a
//! program config element), the GASpecificConfig, and SBR/PS signalling both
//! hierarchical (object type 5 or 29 first) and backward compatible (the `0x2b7` sync
//! extension after the core config).

use bytes::Bytes;

use crate::bits::{BitReader, BitWriter};
use crate::{Error, Result};

const WHAT_ASC: &str = "AudioSpecificConfig";
const WHAT_ADTS: &str = "ADTS header";

/// Sampling frequencies by `samplingFrequencyIndex` (Table 1.18).
pub const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// AAC Main.
pub const AOT_AAC_MAIN: u8 = 1;
/// AAC LC.
pub const AOT_AAC_LC: u8 = 2;
/// SBR (HE-AAC v1 when signalled first).
pub const AOT_SBR: u8 = 5;
/// Parametric stereo (HE-AAC v2 when signalled first).
pub const AOT_PS: u8 = 29;

/// The `samplingFrequencyIndex` of a rate, when the table has it.
pub fn sample_rate_index(rate: u32) -> Option<u8> {
    SAMPLE_RATES
        .iter()
        .position(|&r| r == rate)
        .map(|i| i as u8)
}

/// Channels for a `channelConfiguration` (Table 1.19, with the 23001-8 additions);
/// `None` for 0 (program config element) and reserved values.
pub fn channels_for_config(config: u8) -> Option<u8> {
    match config {
        1..=6 => Some(config),
        7 | 12 | 14 => Some(8),
        11 => Some(7),
        13 => Some(24),
        _ => None,
    }
}

/// General Audio object types, whose ASC body is a GASpecificConfig.
fn is_ga(aot: u8) -> bool {
    matches!(aot, 1..=4 | 6 | 7 | 17 | 19..=23)
}

fn invalid(field: &'static str, value: u64) -> Error {
    Error::Invalid {
        what: WHAT_ASC,
        field,
        value,
    }
}

fn read_aot(r: &mut BitReader<'_>) -> Result<u8> {
    let aot = r.read_bits(5)? as u8;
    if aot == 31 {
        Ok(32 + r.read_bits(6)? as u8)
    } else {
        Ok(aot)
    }
}

fn write_aot(w: &mut BitWriter, aot: u8) {
    if aot >= 31 {
        w.write_bits(5, 31);
        w.write_bits(6, u64::from(aot - 32));
    } else {
        w.write_bits(5, u64::from(aot));
    }
}

fn read_rate(r: &mut BitReader<'_>) -> Result<u32> {
    let idx = r.read_bits(4)?;
    if idx == 0xf {
        let rate = r.read_bits(24)?;
        if rate == 0 {
            return Err(invalid("samplingFrequency", 0));
        }
        return Ok(rate);
    }
    SAMPLE_RATES
        .get(idx as usize)
        .copied()
        .ok_or_else(|| invalid("samplingFrequencyIndex", u64::from(idx)))
}

fn write_rate(w: &mut BitWriter, rate: u32) {
    match sample_rate_index(rate) {
        Some(i) => w.write_bits(4, u64::from(i)),
        None => {
            w.write_bits(4, 0xf);
            w.write_bits(24, u64::from(rate & 0xff_ffff));
        }
    }
}

/// One syntactic element of a program config element: `(is_cpe, element tag)` for
/// front/side/back, `(is_ind_sw, tag)` for coupling channels, `(false, tag)` otherwise.
pub type PceElement = (bool, u8);

/// A program_config_element (Table 4.2): the channel layout when
/// `channelConfiguration` is 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgramConfig {
    pub element_instance_tag: u8,
    pub object_type: u8,
    pub sampling_frequency_index: u8,
    pub front: Vec<PceElement>,
    pub side: Vec<PceElement>,
    pub back: Vec<PceElement>,
    pub lfe: Vec<u8>,
    pub assoc_data: Vec<u8>,
    pub cc: Vec<PceElement>,
    pub mono_mixdown: Option<u8>,
    pub stereo_mixdown: Option<u8>,
    /// `(matrix_mixdown_idx, pseudo_surround_enable)`.
    pub matrix_mixdown: Option<(u8, bool)>,
    pub comment: Vec<u8>,
}

impl ProgramConfig {
    /// Output channels: 2 per channel pair element, 1 per single channel and LFE.
    pub fn channels(&self) -> usize {
        let pairs = |v: &[PceElement]| {
            v.iter()
                .map(|&(cpe, _)| if cpe { 2 } else { 1 })
                .sum::<usize>()
        };
        pairs(&self.front) + pairs(&self.side) + pairs(&self.back) + self.lfe.len()
    }

    /// `start` is the reader position of the enclosing ASC's first bit, for the
    /// byte alignment before the comment.
    fn read(r: &mut BitReader<'_>, start: usize) -> Result<ProgramConfig> {
        let mut p = ProgramConfig {
            element_instance_tag: r.read_bits(4)? as u8,
            object_type: r.read_bits(2)? as u8,
            sampling_frequency_index: r.read_bits(4)? as u8,
            ..ProgramConfig::default()
        };
        let counts = [
            r.read_bits(4)?,
            r.read_bits(4)?,
            r.read_bits(4)?,
            r.read_bits(2)?,
            r.read_bits(3)?,
            r.read_bits(4)?,
        ];
        if r.read_flag()? {
            p.mono_mixdown = Some(r.read_bits(4)? as u8);
        }
        if r.read_flag()? {
            p.stereo_mixdown = Some(r.read_bits(4)? as u8);
        }
        if r.read_flag()? {
            p.matrix_mixdown = Some((r.read_bits(2)? as u8, r.read_flag()?));
        }
        for (list, n) in [
            (&mut p.front, counts[0]),
            (&mut p.side, counts[1]),
            (&mut p.back, counts[2]),
        ] {
            for _ in 0..n {
                list.push((r.read_flag()?, r.read_bits(4)? as u8));
            }
        }
        for _ in 0..counts[3] {
            p.lfe.push(r.read_bits(4)? as u8);
        }
        for _ in 0..counts[4] {
            p.assoc_data.push(r.read_bits(4)? as u8);
        }
        for _ in 0..counts[5] {
            p.cc.push((r.read_flag()?, r.read_bits(4)? as u8));
        }
        let misaligned = (r.position() - start) % 8;
        if misaligned != 0 {
            r.skip(8 - misaligned)?;
        }
        let len = r.read_u8()?;
        for _ in 0..len {
            p.comment.push(r.read_u8()?);
        }
        Ok(p)
    }

    fn write(&self, w: &mut BitWriter) {
        w.write_bits(4, u64::from(self.element_instance_tag));
        w.write_bits(2, u64::from(self.object_type));
        w.write_bits(4, u64::from(self.sampling_frequency_index));
        for (n, bits) in [
            (self.front.len(), 4),
            (self.side.len(), 4),
            (self.back.len(), 4),
            (self.lfe.len(), 2),
            (self.assoc_data.len(), 3),
            (self.cc.len(), 4),
        ] {
            w.write_bits(bits, n as u64);
        }
        for m in [self.mono_mixdown, self.stereo_mixdown] {
            w.write_bit(m.is_some());
            if let Some(v) = m {
                w.write_bits(4, u64::from(v));
            }
        }
        w.write_bit(self.matrix_mixdown.is_some());
        if let Some((idx, pseudo)) = self.matrix_mixdown {
            w.write_bits(2, u64::from(idx));
            w.write_bit(pseudo);
        }
        for &(flag, tag) in self.front.iter().chain(&self.side).chain(&self.back) {
            w.write_bit(flag);
            w.write_bits(4, u64::from(tag));
        }
        for &tag in self.lfe.iter().chain(&self.assoc_data) {
            w.write_bits(4, u64::from(tag));
        }
        for &(flag, tag) in &self.cc {
            w.write_bit(flag);
            w.write_bits(4, u64::from(tag));
        }
        while !w.len_bits().is_multiple_of(8) {
            w.write_bit(false);
        }
        w.write_bits(8, self.comment.len() as u64);
        for &b in &self.comment {
            w.write_bits(8, u64::from(b));
        }
    }
}

/// A parsed AudioSpecificConfig.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// The object type signalled first: 2 for AAC LC, 5 for HE-AAC and 29 for HE-AAC v2
    /// with hierarchical signalling. The number in `mp4a.40.<n>`.
    pub object_type: u8,
    /// The core codec's object type (2 under hierarchical SBR/PS signalling).
    pub core_object_type: u8,
    /// The core sampling frequency.
    pub sample_rate: u32,
    pub channel_configuration: u8,
    /// The layout when `channel_configuration` is 0.
    pub program_config: Option<ProgramConfig>,
    /// 960-sample frames instead of 1024 (GA object types).
    pub frame_length_960: bool,
    /// `coreCoderDelay` when `dependsOnCoreCoder` (GA object types).
    pub core_coder_delay: Option<u16>,
    /// `Some` when the config signals whether SBR is present (hierarchically or with
    /// the sync extension); `None` leaves it to the decoder (implicit signalling).
    pub sbr: Option<bool>,
    /// Like `sbr`, for parametric stereo.
    pub ps: Option<bool>,
    /// The output sampling frequency with SBR.
    pub extension_sample_rate: Option<u32>,
}

impl AudioSpecificConfig {
    /// Parses an AudioSpecificConfig.
    ///
    /// Object types other than General Audio (AAC Main/LC/SSR/LTP/scalable, TwinVQ, the
    /// ER variants) have their header fields read and their specific config left
    /// unread.
    pub fn parse(data: &[u8]) -> Result<AudioSpecificConfig> {
        let mut r = BitReader::new(data, WHAT_ASC);
        let object_type = read_aot(&mut r)?;
        if object_type == 0 {
            return Err(invalid("audioObjectType", 0));
        }
        let sample_rate = read_rate(&mut r)?;
        let channel_configuration = r.read_bits(4)? as u8;
        let mut asc = AudioSpecificConfig {
            object_type,
            core_object_type: object_type,
            sample_rate,
            channel_configuration,
            program_config: None,
            frame_length_960: false,
            core_coder_delay: None,
            sbr: None,
            ps: None,
            extension_sample_rate: None,
        };
        if object_type == AOT_SBR || object_type == AOT_PS {
            asc.sbr = Some(true);
            asc.ps = (object_type == AOT_PS).then_some(true);
            asc.extension_sample_rate = Some(read_rate(&mut r)?);
            asc.core_object_type = read_aot(&mut r)?;
            if asc.core_object_type == 22 {
                // extensionChannelConfiguration
                r.skip(4)?;
            }
        }
        if !is_ga(asc.core_object_type) {
            if channel_configuration != 0 && channels_for_config(channel_configuration).is_none() {
                return Err(invalid(
                    "channelConfiguration",
                    u64::from(channel_configuration),
                ));
            }
            return Ok(asc);
        }
        // GASpecificConfig
        asc.frame_length_960 = r.read_flag()?;
        if r.read_flag()? {
            asc.core_coder_delay = Some(r.read_bits(14)? as u16);
        }
        let extension_flag = r.read_flag()?;
        if channel_configuration == 0 {
            asc.program_config = Some(ProgramConfig::read(&mut r, 0)?);
        } else if channels_for_config(channel_configuration).is_none() {
            return Err(invalid(
                "channelConfiguration",
                u64::from(channel_configuration),
            ));
        }
        let core = asc.core_object_type;
        if core == 6 || core == 20 {
            // layerNr
            r.skip(3)?;
        }
        if extension_flag {
            if core == 22 {
                // numOfSubFrame, layer_length
                r.skip(16)?;
            }
            if matches!(core, 17 | 19 | 20 | 23) {
                // aac{Section,Scalefactor,Spectral}DataResilienceFlag
                r.skip(3)?;
            }
            // extensionFlag3
            r.skip(1)?;
        }
        if matches!(core, 17 | 19..=27 | 39) {
            let ep_config = r.read_bits(2)?;
            if ep_config > 1 {
                return Err(Error::Unsupported {
                    what: WHAT_ASC,
                    detail: "error protection (epConfig 2 or 3)",
                });
            }
        }
        // Backward-compatible explicit SBR/PS signalling.
        if asc.sbr.is_none() && r.remaining() >= 16 {
            let mut ext = r.clone();
            if ext.read_bits(11)? == 0x2b7 {
                let ext_aot = read_aot(&mut ext)?;
                if ext_aot == AOT_SBR {
                    let sbr = ext.read_flag()?;
                    asc.sbr = Some(sbr);
                    if sbr {
                        asc.extension_sample_rate = Some(read_rate(&mut ext)?);
                        if ext.remaining() >= 12 && ext.read_bits(11)? == 0x548 {
                            asc.ps = Some(ext.read_flag()?);
                        }
                    }
                }
            }
        }
        Ok(asc)
    }

    /// A plain config: no SBR/PS signalling, 1024-sample frames. `channels` 1 to 6 or 8
    /// map to a channel configuration; others are an error (they need a program
    /// config element).
    pub fn new(object_type: u8, sample_rate: u32, channels: u8) -> Result<AudioSpecificConfig> {
        let channel_configuration = match channels {
            1..=6 => channels,
            8 => 7,
            _ => return Err(invalid("channels", u64::from(channels))),
        };
        if object_type == 0 || object_type > 95 {
            return Err(invalid("audioObjectType", u64::from(object_type)));
        }
        if sample_rate == 0 || sample_rate > 0xff_ffff {
            return Err(invalid("samplingFrequency", u64::from(sample_rate)));
        }
        Ok(AudioSpecificConfig {
            object_type,
            core_object_type: object_type,
            sample_rate,
            channel_configuration,
            program_config: None,
            frame_length_960: false,
            core_coder_delay: None,
            sbr: None,
            ps: None,
            extension_sample_rate: None,
        })
    }

    /// Serializes the config. For object types other than General Audio only the
    /// header is written (keep the original bytes for those).
    pub fn to_bytes(&self) -> Bytes {
        let mut w = BitWriter::new();
        write_aot(&mut w, self.object_type);
        write_rate(&mut w, self.sample_rate);
        w.write_bits(4, u64::from(self.channel_configuration));
        let hierarchical = self.object_type == AOT_SBR || self.object_type == AOT_PS;
        if hierarchical {
            write_rate(
                &mut w,
                self.extension_sample_rate.unwrap_or(self.sample_rate * 2),
            );
            write_aot(&mut w, self.core_object_type);
            if self.core_object_type == 22 {
                w.write_bits(4, u64::from(self.channel_configuration));
            }
        }
        let core = self.core_object_type;
        if is_ga(core) {
            w.write_bit(self.frame_length_960);
            w.write_bit(self.core_coder_delay.is_some());
            if let Some(d) = self.core_coder_delay {
                w.write_bits(14, u64::from(d));
            }
            let extension_flag = matches!(core, 17 | 19..=23);
            w.write_bit(extension_flag);
            if self.channel_configuration == 0 {
                self.program_config
                    .clone()
                    .unwrap_or_default()
                    .write(&mut w);
            }
            if core == 6 || core == 20 {
                w.write_bits(3, 0);
            }
            if extension_flag {
                if core == 22 {
                    w.write_bits(16, 0);
                }
                if matches!(core, 17 | 19 | 20 | 23) {
                    w.write_bits(3, 0);
                }
                w.write_bit(false);
            }
            if matches!(core, 17 | 19..=27 | 39) {
                w.write_bits(2, 0);
            }
            if let Some(sbr) = self.sbr.filter(|_| !hierarchical) {
                w.write_bits(11, 0x2b7);
                write_aot(&mut w, AOT_SBR);
                w.write_bit(sbr);
                if sbr {
                    write_rate(
                        &mut w,
                        self.extension_sample_rate.unwrap_or(self.sample_rate * 2),
                    );
                    if let Some(ps) = self.ps {
                        w.write_bits(11, 0x548);
                        w.write_bit(ps);
                    }
                }
            }
        }
        Bytes::from(w.into_bytes())
    }

    /// Output channels: from the channel configuration or the program config element;
    /// parametric stereo turns one core channel into two.
    pub fn channels(&self) -> u8 {
        let core = channels_for_config(self.channel_configuration)
            .or_else(|| {
                self.program_config
                    .as_ref()
                    .map(|p| p.channels().min(255) as u8)
            })
            .unwrap_or(0);
        if self.ps == Some(true) && core == 1 {
            2
        } else {
            core
        }
    }

    /// The output sampling frequency (the SBR rate when SBR is signalled).
    pub fn output_sample_rate(&self) -> u32 {
        match (self.sbr, self.extension_sample_rate) {
            (Some(true), Some(rate)) => rate,
            _ => self.sample_rate,
        }
    }

    /// Output samples per access unit: 1024 (or 960), doubled by SBR.
    pub fn samples_per_frame(&self) -> u32 {
        let core = if self.frame_length_960 { 960 } else { 1024 };
        if self.sbr == Some(true) {
            core * 2
        } else {
            core
        }
    }

    /// `mp4a.40.<object type>`.
    pub fn rfc6381(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

/// A parsed ADTS frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdtsHeader {
    /// The `ID` bit: MPEG-2 AAC rather than MPEG-4.
    pub mpeg2: bool,
    pub protection_absent: bool,
    /// `profile_ObjectType + 1`: 1 Main, 2 LC, 3 SSR, 4 LTP.
    pub object_type: u8,
    pub sampling_frequency_index: u8,
    pub channel_configuration: u8,
    /// The whole frame: header, CRC and raw data blocks.
    pub frame_length: u16,
    pub buffer_fullness: u16,
    pub raw_data_blocks: u8,
}

impl AdtsHeader {
    /// Parses the header at the start of `data`. `Ok(None)`: more bytes are needed (7,
    /// or 9 with a CRC). Errors: no sync word, a reserved layer, frequency index or a
    /// frame length shorter than its header.
    pub fn parse(data: &[u8]) -> Result<Option<AdtsHeader>> {
        let bad = |field, value: u64| Error::Invalid {
            what: WHAT_ADTS,
            field,
            value,
        };
        // Fail fast on a bad sync word with whatever bytes are here.
        if let Some(&b0) = data.first().filter(|&&b| b != 0xff) {
            return Err(bad("syncword", u64::from(b0)));
        }
        if let Some(&b1) = data.get(1).filter(|&&b| b & 0xf0 != 0xf0) {
            return Err(bad("syncword", u64::from(b1)));
        }
        let Some(h) = data.get(..7) else {
            return Ok(None);
        };
        if h[1] & 0x06 != 0 {
            return Err(bad("layer", u64::from((h[1] >> 1) & 3)));
        }
        let protection_absent = h[1] & 0x01 != 0;
        let sampling_frequency_index = (h[2] >> 2) & 0x0f;
        if usize::from(sampling_frequency_index) >= SAMPLE_RATES.len() {
            return Err(bad(
                "sampling_frequency_index",
                u64::from(sampling_frequency_index),
            ));
        }
        let frame_length =
            (u16::from(h[3] & 0x03) << 11) | (u16::from(h[4]) << 3) | u16::from(h[5] >> 5);
        let header = AdtsHeader {
            mpeg2: h[1] & 0x08 != 0,
            protection_absent,
            object_type: (h[2] >> 6) + 1,
            sampling_frequency_index,
            channel_configuration: ((h[2] & 0x01) << 2) | (h[3] >> 6),
            frame_length,
            buffer_fullness: (u16::from(h[5] & 0x1f) << 6) | u16::from(h[6] >> 2),
            raw_data_blocks: (h[6] & 0x03) + 1,
        };
        if usize::from(frame_length) < header.header_len() {
            return Err(bad("aac_frame_length", u64::from(frame_length)));
        }
        if data.len() < header.header_len() {
            return Ok(None);
        }
        Ok(Some(header))
    }

    /// Splits the first complete frame off `data`: `(header, raw data, bytes used)`.
    /// `Ok(None)`: the frame is not complete yet.
    pub fn parse_frame(data: &[u8]) -> Result<Option<(AdtsHeader, &[u8], usize)>> {
        let Some(h) = AdtsHeader::parse(data)? else {
            return Ok(None);
        };
        let len = usize::from(h.frame_length);
        Ok(data
            .get(h.header_len()..len)
            .map(|payload| (h, payload, len)))
    }

    /// 7 bytes, or 9 with the CRC.
    pub fn header_len(&self) -> usize {
        if self.protection_absent { 7 } else { 9 }
    }

    /// Bytes of raw data blocks (and their CRCs when several) after the header.
    pub fn payload_len(&self) -> usize {
        usize::from(self.frame_length).saturating_sub(self.header_len())
    }

    pub fn sample_rate(&self) -> u32 {
        SAMPLE_RATES[usize::from(self.sampling_frequency_index) % SAMPLE_RATES.len()]
    }

    /// The AudioSpecificConfig this stream would have in MP4. A channel configuration
    /// of 0 (layout in an in-band program config element) is unsupported.
    pub fn to_asc(&self) -> Result<AudioSpecificConfig> {
        if self.channel_configuration == 0 {
            return Err(Error::Unsupported {
                what: WHAT_ADTS,
                detail: "channel_configuration 0 (program config element in band)",
            });
        }
        let channels = channels_for_config(self.channel_configuration).unwrap_or(0);
        AudioSpecificConfig::new(self.object_type, self.sample_rate(), channels)
    }

    /// The header for a frame carrying `payload_len` bytes of one raw data block, in
    /// the format of `asc` (object types 1 to 4, table sample rates, channel
    /// configurations 1 to 7). Writes no CRC.
    pub fn for_payload(asc: &AudioSpecificConfig, payload_len: usize) -> Result<AdtsHeader> {
        let idx = sample_rate_index(asc.sample_rate).ok_or_else(|| Error::Invalid {
            what: WHAT_ADTS,
            field: "sample rate",
            value: u64::from(asc.sample_rate),
        })?;
        if !(1..=4).contains(&asc.core_object_type) || !(1..=7).contains(&asc.channel_configuration)
        {
            return Err(Error::Unsupported {
                what: WHAT_ADTS,
                detail: "object type or channel configuration ADTS cannot carry",
            });
        }
        let frame_length = u16::try_from(payload_len + 7)
            .ok()
            .filter(|&l| l < 1 << 13)
            .ok_or(Error::Invalid {
                what: WHAT_ADTS,
                field: "aac_frame_length",
                value: payload_len as u64 + 7,
            })?;
        Ok(AdtsHeader {
            mpeg2: false,
            protection_absent: true,
            object_type: asc.core_object_type,
            sampling_frequency_index: idx,
            channel_configuration: asc.channel_configuration,
            frame_length,
            buffer_fullness: 0x7ff,
            raw_data_blocks: 1,
        })
    }

    /// The 7-byte header (a CRC, when `protection_absent` is false, is not written).
    pub fn to_bytes(&self) -> [u8; 7] {
        let len = self.frame_length;
        let profile = self.object_type.saturating_sub(1) & 0x03;
        [
            0xff,
            0xf0 | (u8::from(self.mpeg2) << 3) | u8::from(self.protection_absent),
            (profile << 6)
                | ((self.sampling_frequency_index & 0x0f) << 2)
                | ((self.channel_configuration >> 2) & 1),
            ((self.channel_configuration & 3) << 6) | ((len >> 11) as u8 & 0x03),
            (len >> 3) as u8,
            ((len as u8 & 0x07) << 5) | ((self.buffer_fullness >> 6) as u8 & 0x1f),
            ((self.buffer_fullness as u8 & 0x3f) << 2)
                | (self.raw_data_blocks.saturating_sub(1) & 0x03),
        ]
    }
}

#[cfg(test)]
#[path = "aac_tests.rs"]
mod tests;
