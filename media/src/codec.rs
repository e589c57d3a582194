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
