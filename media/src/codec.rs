use bytes::Bytes;

use crate::Result;

/// A frame rate as an exact fraction (29.97 is 30000/1001).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRate {
    pub num: u32,
    pub den: u32,
}

impl FrameRate {
    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den.max(1))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Video,
    Audio,
}

/// A track's codec with its decoder configuration record, as fMP4 stores it.
///
/// Build values with the checked constructors ([`Codec::h264`], [`Codec::h265`],
/// [`Codec::av1`], [`Codec::aac`]), which parse the record and fill the derived fields.
#[derive(Clone, Debug, PartialEq)]
pub enum Codec {
    /// `avcc`: an AVCDecoderConfigurationRecord (the body of an `avcC` box).
    H264 {
        avcc: Bytes,
        width: u32,
        height: u32,
        fps: Option<FrameRate>,
    },
    /// `hvcc`: an HEVCDecoderConfigurationRecord (the body of an `hvcC` box).
    H265 {
        hvcc: Bytes,
        width: u32,
        height: u32,
        fps: Option<FrameRate>,
    },
    /// `av1c`: an AV1CodecConfigurationRecord (the body of an `av1C` box).
    Av1 {
        av1c: Bytes,
        width: u32,
        height: u32,
        fps: Option<FrameRate>,
    },
    /// `asc`: an AudioSpecificConfig (ISO 14496-3).
    Aac {
        asc: Bytes,
        sample_rate: u32,
        channels: u8,
    },
    Opus {
        sample_rate: u32,
        channels: u8,
    },
}

impl Codec {
    pub fn kind(&self) -> MediaKind {
        match self {
            Codec::H264 { .. } | Codec::H265 { .. } | Codec::Av1 { .. } => MediaKind::Video,
            Codec::Aac { .. } | Codec::Opus { .. } => MediaKind::Audio,
        }
    }

    /// Short lowercase name for logs, metrics and the API: `h264`, `h265`, `av1`, `aac`, `opus`.
    pub fn name(&self) -> &'static str {
        match self {
            Codec::H264 { .. } => "h264",
            Codec::H265 { .. } => "h265",
            Codec::Av1 { .. } => "av1",
            Codec::Aac { .. } => "aac",
            Codec::Opus { .. } => "opus",
        }
    }

    /// Width and height of a video track.
    pub fn dimensions(&self) -> Option<(u32, u32)> {
        match *self {
            Codec::H264 { width, height, .. }
            | Codec::H265 { width, height, .. }
            | Codec::Av1 { width, height, .. } => Some((width, height)),
            _ => None,
        }
    }

    /// Frame rate of a video track, when the bitstream signals one.
    pub fn fps(&self) -> Option<FrameRate> {
        match *self {
            Codec::H264 { fps, .. } | Codec::H265 { fps, .. } | Codec::Av1 { fps, .. } => fps,
            _ => None,
        }
    }

    /// Sample rate and channel count of an audio track.
    pub fn audio(&self) -> Option<(u32, u8)> {
        match *self {
            Codec::Aac {
                sample_rate,
                channels,
                ..
            }
            | Codec::Opus {
                sample_rate,
                channels,
            } => Some((sample_rate, channels)),
            _ => None,
        }
    }
}

// Checked constructors and RFC 6381 codec strings (bitstream parsing lives in the
// `h264`, `h265`, `av1` and `aac` modules).
impl Codec {
    /// Parses an AVCDecoderConfigurationRecord and its first SPS: size with cropping
    /// applied, frame rate from the VUI timing info when present.
    pub fn h264(avcc: Bytes) -> Result<Codec> {
        let sps = crate::h264::AvcConfig::parse(&avcc)?.first_sps()?;
        Ok(Codec::H264 {
            avcc,
            width: sps.width,
            height: sps.height,
            fps: sps.fps,
        })
    }

    /// Parses an HEVCDecoderConfigurationRecord and its first SPS: size with the
    /// conformance window applied, frame rate from the VUI timing info when present.
    pub fn h265(hvcc: Bytes) -> Result<Codec> {
        let sps = crate::h265::HevcConfig::parse(&hvcc)?.first_sps()?;
        Ok(Codec::H265 {
            hvcc,
            width: sps.width,
            height: sps.height,
            fps: sps.fps,
        })
    }

    /// Parses an AV1CodecConfigurationRecord and the sequence header OBU in its
    /// configOBUs (required: it holds the size).
    pub fn av1(av1c: Bytes) -> Result<Codec> {
        let seq = crate::av1::Av1Config::parse(&av1c)?
            .sequence_header()?
            .ok_or(crate::Error::Invalid {
                what: "AV1CodecConfigurationRecord",
                field: "configOBUs without a sequence header, count",
                value: 0,
            })?;
        Ok(Codec::Av1 {
            av1c,
            width: seq.max_frame_width,
            height: seq.max_frame_height,
            fps: seq.fps,
        })
    }

    /// Parses an AudioSpecificConfig: the output sample rate (the SBR rate when the
    /// config signals SBR) and channel count (2 for parametric stereo).
    pub fn aac(asc: Bytes) -> Result<Codec> {
        let cfg = crate::aac::AudioSpecificConfig::parse(&asc)?;
        let channels = cfg.channels();
        if channels == 0 {
            return Err(crate::Error::Invalid {
                what: "AudioSpecificConfig",
                field: "channel count",
                value: 0,
            });
        }
        Ok(Codec::Aac {
            sample_rate: cfg.output_sample_rate(),
            channels,
            asc,
        })
    }

    /// The RFC 6381 `codecs` string: `avc1.64001f`, `hvc1.1.6.L93.B0`, `av01.0.08M.08`,
    /// `mp4a.40.2`, `opus`. A record that does not parse (only possible for values not
    /// built with the checked constructors) gives the bare sample entry name.
    pub fn rfc6381(&self) -> String {
        match self {
            Codec::H264 { avcc, .. } => match avcc.get(..4) {
                Some(&[1, profile, compat, level]) => {
                    format!("avc1.{profile:02x}{compat:02x}{level:02x}")
                }
                _ => "avc1".to_string(),
            },
            Codec::H265 { hvcc, .. } => crate::h265::HevcConfig::parse(hvcc)
                .map_or_else(|_| "hvc1".to_string(), |c| c.rfc6381()),
            Codec::Av1 { av1c, .. } => crate::av1::Av1Config::parse(av1c)
                .map_or_else(|_| "av01".to_string(), |c| c.rfc6381()),
            Codec::Aac { asc, .. } => crate::aac::AudioSpecificConfig::parse(asc)
                .map_or_else(|_| "mp4a.40.2".to_string(), |c| c.rfc6381()),
            Codec::Opus { .. } => "opus".to_string(),
        }
    }
}
