//! FLV audio and video tag bodies, as carried in RTMP audio (8) and video (9) messages.
//!
//! Pure parsing, no state: [`VideoTag::parse`] and [`AudioTag::parse`] take the message
//! body and borrow from it. Both never panic, whatever the input (a fuzz target feeds
//! them arbitrary bytes).
//!
//! Covered:
//! - Legacy video (FLV 10.1, annex E): codec id 7 (AVC) and 12 (HEVC, the non-standard
//!   extension some CDNs use), with the AVC packet type and the signed 24-bit composition
//!   time offset; frame type 5 command frames.
//! - Enhanced RTMP video (veovera E-RTMP v1 and v2): the `IsExHeader` bit, FourCC
//!   signalling (`avc1`, `hvc1`, `av01`, `vp09`, `vp08`), every `VideoPacketType`,
//!   `ModEx` modifier extensions (skipped), and `Multitrack` messages, of which only
//!   track 0, the default track, is kept.
//! - Legacy audio: sound format 10 (AAC) with its packet type. Enhanced RTMP audio
//!   (sound format 9, `ExHeader`): FourCC `mp4a` and `Opus`, `ModEx`, `Multitrack`
//!   (track 0), `MultichannelConfig`.
//!
//! # Unsupported codecs
//!
//! A well-formed tag in a codec this server cannot carry (MP3, Speex, Nellymoser, VP6,
//! H.263, VP8/VP9, AC-3, FLAC, ...) yields [`Error::UnsupportedCodec`]. It is not a
//! protocol fault: the caller should drop that tag (and that track: every following tag
//! of it fails the same way), log it once, and keep the connection. Every other error
//! means a malformed tag.

use crate::{Error, Result};

/// Which video codec a tag carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264: legacy codec id 7, FourCC `avc1`.
    Avc,
    /// H.265: legacy (non-standard) codec id 12, FourCC `hvc1`.
    Hevc,
    /// AV1: FourCC `av01`.
    Av1,
}

impl VideoCodec {
    /// True when coded frames carry a composition time offset (SI24) before the data.
    fn has_composition_time(self) -> bool {
        matches!(self, VideoCodec::Avc | VideoCodec::Hevc)
    }
}

/// One parsed video tag body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoTag<'a> {
    /// The decoder configuration record: an AVCDecoderConfigurationRecord (`avcC`
    /// body), HEVCDecoderConfigurationRecord (`hvcC`) or AV1CodecConfigurationRecord
    /// (`av1C`).
    SequenceStart { codec: VideoCodec, config: &'a [u8] },
    /// One access unit: length-prefixed NAL units for AVC/HEVC (the length size comes
    /// from the configuration record), low-overhead OBUs for AV1.
    Frame {
        codec: VideoCodec,
        /// Frame type 1 (key frame) or 4 (generated key frame).
        keyframe: bool,
        /// Composition time offset in milliseconds: pts = dts + `cto`. Zero for
        /// `CodedFramesX` and AV1.
        cto: i32,
        data: &'a [u8],
    },
    /// The end of the coded sequence (AVC packet type 2, `SequenceEnd`).
    SequenceEnd { codec: VideoCodec },
    /// A command frame (frame type 5): no video data, only this command byte
    /// (0 = start of client-side seeking, 1 = end).
    Command(u8),
    /// `VideoPacketType::Metadata`: AMF-encoded metadata (e.g. `colorInfo`), no video.
    Metadata(&'a [u8]),
    /// A multitrack message without track 0; this server keeps only the default track.
    OtherTrack { track_id: u8 },
}

/// Which audio codec a tag carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioCodec {
    /// AAC: legacy sound format 10, FourCC `mp4a`.
    Aac,
    /// Opus: FourCC `Opus`.
    Opus,
}

/// One parsed audio tag body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudioTag<'a> {
    /// The decoder configuration: an AudioSpecificConfig for AAC, an Opus ID header
    /// (`OpusHead`, RFC 7845 section 5.1, possibly empty) for Opus.
    SequenceStart { codec: AudioCodec, config: &'a [u8] },
    /// One raw access unit (AAC without ADTS, or one Opus packet).
    Frame { codec: AudioCodec, data: &'a [u8] },
    /// `AudioPacketType::SequenceEnd`.
    SequenceEnd { codec: AudioCodec },
    /// `AudioPacketType::MultichannelConfig`: the channel count (layout not kept).
    MultichannelConfig { codec: AudioCodec, channels: u8 },
    /// An empty audio message: the RTMP "silence" message.
    Silence,
    /// A multitrack message without track 0; this server keeps only the default track.
    OtherTrack { track_id: u8 },
}

/// A bounds-checked reader over a tag body.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    kind: &'static str,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], kind: &'static str) -> Self {
        Reader { data, pos: 0, kind }
    }

    fn truncated(&self, what: &'static str) -> Error {
        Error::Flv {
            kind: self.kind,
            reason: what,
        }
    }

    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| self.truncated(what))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.bytes(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self, what: &'static str) -> Result<u32> {
        let b = self.bytes(3, what)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }

    /// A signed 24-bit big-endian integer (the composition time offset).
    fn si24(&mut self, what: &'static str) -> Result<i32> {
        let b = self.bytes(3, what)?;
        // Place the 24 bits at the top and shift back to sign-extend.
        Ok(i32::from_be_bytes([b[0], b[1], b[2], 0]) >> 8)
    }

    fn fourcc(&mut self, what: &'static str) -> Result<[u8; 4]> {
        let b = self.bytes(4, what)?;
        Ok([b[0], b[1], b[2], b[3]])
    }

    fn rest(&mut self) -> &'a [u8] {
        let out = &self.data[self.pos..];
        self.pos = self.data.len();
        out
    }

    /// Skips the E-RTMP v2 `ModEx` packets that start at the current position (the
    /// packet type just read was `ModEx`) and returns the packet type that follows
    /// them. Each carries a size (UI8 + 1, or UI16 + 1 when the UI8 is 255), that many
    /// bytes of data, then a byte whose high nibble is the ModEx type and low nibble
    /// the next packet type.
    fn skip_mod_ex(&mut self, mod_ex: u8) -> Result<u8> {
        let mut packet_type = mod_ex;
        while packet_type == mod_ex {
            let mut size = usize::from(self.u8("truncated ModEx size")?) + 1;
            if size == 256 {
                size = usize::from(self.u16("truncated ModEx size")?) + 1;
            }
            // The only ModEx type defined (TimestampOffsetNano, 0) refines the
            // timestamp by under a millisecond; it is ignored, as is any future type.
            self.bytes(size, "truncated ModEx data")?;
            packet_type = self.u8("truncated ModEx type")? & 0x0f;
        }
        Ok(packet_type)
    }
}

/// The multitrack framing shared by audio and video (E-RTMP v2, `AvMultitrackType`).
const MULTITRACK_ONE_TRACK: u8 = 0;
const MULTITRACK_MANY_TRACKS: u8 = 1;
const MULTITRACK_MANY_CODECS: u8 = 2;

/// What a multitrack message holds for this server.
enum Selected<'a> {
    /// Track 0, the default track: its FourCC and body.
    Default { fourcc: [u8; 4], body: &'a [u8] },
    /// No track 0; the id of the first track.
    Other(u8),
}

/// Reads a multitrack body (after the multitrack-type/packet-type byte) and picks
/// track 0. `fourcc` is the shared FourCC (None for ManyTracksManyCodecs).
fn select_track_zero<'a>(
    r: &mut Reader<'a>,
    multitrack_type: u8,
    fourcc: Option<[u8; 4]>,
) -> Result<Selected<'a>> {
    let mut first_id = None;
    loop {
        let track_fourcc = match fourcc {
            Some(f) => f,
            None => r.fourcc("truncated multitrack FourCC")?,
        };
        let track_id = r.u8("truncated multitrack track id")?;
        let body = if multitrack_type == MULTITRACK_ONE_TRACK {
            r.rest()
        } else {
            let size = r.u24("truncated multitrack track size")?;
            r.bytes(size as usize, "multitrack track size exceeds the tag")?
        };
        if track_id == 0 {
            return Ok(Selected::Default {
                fourcc: track_fourcc,
                body,
            });
        }
        let first = *first_id.get_or_insert(track_id);
        if r.pos >= r.data.len() {
            return Ok(Selected::Other(first));
        }
    }
}

fn check_multitrack_type(kind: &'static str, multitrack_type: u8) -> Result<()> {
    match multitrack_type {
        MULTITRACK_ONE_TRACK | MULTITRACK_MANY_TRACKS | MULTITRACK_MANY_CODECS => Ok(()),
        _ => Err(Error::Flv {
            kind,
            reason: "reserved multitrack type",
        }),
    }
}

// Legacy FLV video codec ids.
const CODEC_ID_AVC: u8 = 7;
const CODEC_ID_HEVC: u8 = 12;

// Video frame types.
const FRAME_KEY: u8 = 1;
const FRAME_INTER: u8 = 2;
const FRAME_DISPOSABLE_INTER: u8 = 3;
const FRAME_GENERATED_KEY: u8 = 4;
const FRAME_COMMAND: u8 = 5;

// Enhanced RTMP video packet types.
const VIDEO_SEQUENCE_START: u8 = 0;
const VIDEO_CODED_FRAMES: u8 = 1;
const VIDEO_SEQUENCE_END: u8 = 2;
const VIDEO_CODED_FRAMES_X: u8 = 3;
const VIDEO_METADATA: u8 = 4;
const VIDEO_MPEG2TS_SEQUENCE_START: u8 = 5;
const VIDEO_MULTITRACK: u8 = 6;
const VIDEO_MOD_EX: u8 = 7;

fn legacy_video_codec_name(id: u8) -> &'static str {
    match id {
        2 => "video codec id 2 (Sorenson H.263)",
        3 => "video codec id 3 (Screen video)",
        4 => "video codec id 4 (On2 VP6)",
        5 => "video codec id 5 (On2 VP6 with alpha)",
        6 => "video codec id 6 (Screen video v2)",
        _ => "reserved video codec id",
    }
}

fn video_fourcc(fourcc: [u8; 4]) -> Result<VideoCodec> {
    match &fourcc {
        b"avc1" => Ok(VideoCodec::Avc),
        b"hvc1" => Ok(VideoCodec::Hevc),
        b"av01" => Ok(VideoCodec::Av1),
        b"vp09" => Err(Error::UnsupportedCodec {
            kind: "video",
            codec: "FourCC vp09 (VP9)",
        }),
        b"vp08" => Err(Error::UnsupportedCodec {
            kind: "video",
            codec: "FourCC vp08 (VP8)",
        }),
        _ => Err(Error::UnsupportedCodec {
            kind: "video",
            codec: "unknown video FourCC",
        }),
    }
}

fn keyframe(frame_type: u8) -> Result<bool> {
    match frame_type {
        FRAME_KEY | FRAME_GENERATED_KEY => Ok(true),
        FRAME_INTER | FRAME_DISPOSABLE_INTER => Ok(false),
        _ => Err(Error::Flv {
            kind: "video",
            reason: "reserved frame type",
        }),
    }
}

impl<'a> VideoTag<'a> {
    /// Parses the body of an RTMP video message (an FLV video tag's data).
    pub fn parse(data: &'a [u8]) -> Result<VideoTag<'a>> {
        let mut r = Reader::new(data, "video");
        let first = r.u8("empty video tag")?;
        let frame_type = (first >> 4) & 0x07;
        if first & 0x80 != 0 {
            return Self::parse_enhanced(r, frame_type, first & 0x0f);
        }
        let codec = match first & 0x0f {
            CODEC_ID_AVC => VideoCodec::Avc,
            CODEC_ID_HEVC => VideoCodec::Hevc,
            id => {
                if frame_type == FRAME_COMMAND {
                    return Ok(VideoTag::Command(r.u8("truncated video command")?));
                }
                return Err(Error::UnsupportedCodec {
                    kind: "video",
                    codec: legacy_video_codec_name(id),
                });
            }
        };
        if frame_type == FRAME_COMMAND {
            return Ok(VideoTag::Command(r.u8("truncated video command")?));
        }
        let keyframe = keyframe(frame_type)?;
        let packet_type = r.u8("truncated AVC packet type")?;
        let cto = r.si24("truncated composition time offset")?;
        match packet_type {
            0 => Ok(VideoTag::SequenceStart {
                codec,
                config: r.rest(),
            }),
            1 => Ok(VideoTag::Frame {
                codec,
                keyframe,
                cto,
                data: r.rest(),
            }),
            2 => Ok(VideoTag::SequenceEnd { codec }),
            _ => Err(Error::Flv {
                kind: "video",
                reason: "reserved AVC packet type",
            }),
        }
    }

    fn parse_enhanced(mut r: Reader<'a>, frame_type: u8, packet_type: u8) -> Result<VideoTag<'a>> {
        let mut packet_type = packet_type;
        if packet_type == VIDEO_MOD_EX {
            packet_type = r.skip_mod_ex(VIDEO_MOD_EX)?;
        }
        if packet_type != VIDEO_METADATA && frame_type == FRAME_COMMAND {
            // A command frame carries only the command byte, no FourCC or body.
            return Ok(VideoTag::Command(r.u8("truncated video command")?));
        }
        let (fourcc, mut body) = if packet_type == VIDEO_MULTITRACK {
            let b = r.u8("truncated multitrack header")?;
            let multitrack_type = b >> 4;
            check_multitrack_type("video", multitrack_type)?;
            packet_type = b & 0x0f;
            if packet_type == VIDEO_MULTITRACK || packet_type == VIDEO_MOD_EX {
                return Err(Error::Flv {
                    kind: "video",
                    reason: "nested multitrack or ModEx packet type in a multitrack tag",
                });
            }
            let shared = if multitrack_type == MULTITRACK_MANY_CODECS {
                None
            } else {
                Some(r.fourcc("truncated video FourCC")?)
            };
            match select_track_zero(&mut r, multitrack_type, shared)? {
                Selected::Default { fourcc, body } => (fourcc, Reader::new(body, "video")),
                Selected::Other(track_id) => return Ok(VideoTag::OtherTrack { track_id }),
            }
        } else {
            let fourcc = r.fourcc("truncated video FourCC")?;
            (fourcc, r)
        };
        // Metadata is AMF, whatever the codec; check the FourCC only for media.
        if packet_type == VIDEO_METADATA {
            return Ok(VideoTag::Metadata(body.rest()));
        }
        let codec = video_fourcc(fourcc)?;
        match packet_type {
            VIDEO_SEQUENCE_START => Ok(VideoTag::SequenceStart {
                codec,
                config: body.rest(),
            }),
            VIDEO_CODED_FRAMES | VIDEO_CODED_FRAMES_X => {
                let keyframe = keyframe(frame_type)?;
                let cto = if packet_type == VIDEO_CODED_FRAMES && codec.has_composition_time() {
                    body.si24("truncated composition time offset")?
                } else {
                    0
                };
                Ok(VideoTag::Frame {
                    codec,
                    keyframe,
                    cto,
                    data: body.rest(),
                })
            }
            VIDEO_SEQUENCE_END => Ok(VideoTag::SequenceEnd { codec }),
            VIDEO_MPEG2TS_SEQUENCE_START => Err(Error::UnsupportedCodec {
                kind: "video",
                codec: "MPEG2TSSequenceStart (AV1 video descriptor)",
            }),
            _ => Err(Error::Flv {
                kind: "video",
                reason: "reserved video packet type",
            }),
        }
    }
}

// Legacy sound formats.
const SOUND_EX_HEADER: u8 = 9;
const SOUND_AAC: u8 = 10;

// Enhanced RTMP audio packet types.
const AUDIO_SEQUENCE_START: u8 = 0;
const AUDIO_CODED_FRAMES: u8 = 1;
const AUDIO_SEQUENCE_END: u8 = 2;
const AUDIO_MULTICHANNEL_CONFIG: u8 = 4;
const AUDIO_MULTITRACK: u8 = 5;
const AUDIO_MOD_EX: u8 = 7;

fn legacy_sound_format_name(format: u8) -> &'static str {
    match format {
        0 => "sound format 0 (linear PCM, platform endian)",
        1 => "sound format 1 (ADPCM)",
        2 => "sound format 2 (MP3)",
        3 => "sound format 3 (linear PCM, little endian)",
        4 => "sound format 4 (Nellymoser 16 kHz mono)",
        5 => "sound format 5 (Nellymoser 8 kHz mono)",
        6 => "sound format 6 (Nellymoser)",
        7 => "sound format 7 (G.711 A-law)",
        8 => "sound format 8 (G.711 mu-law)",
        11 => "sound format 11 (Speex)",
        14 => "sound format 14 (MP3 8 kHz)",
        15 => "sound format 15 (device-specific)",
        _ => "reserved sound format",
    }
}

fn audio_fourcc(fourcc: [u8; 4]) -> Result<AudioCodec> {
    let codec = match &fourcc {
        b"mp4a" => return Ok(AudioCodec::Aac),
        b"Opus" => return Ok(AudioCodec::Opus),
        b"ac-3" => "FourCC ac-3 (AC-3)",
        b"ec-3" => "FourCC ec-3 (E-AC-3)",
        b".mp3" => "FourCC .mp3 (MP3)",
        b"fLaC" => "FourCC fLaC (FLAC)",
        _ => "unknown audio FourCC",
    };
    Err(Error::UnsupportedCodec {
        kind: "audio",
        codec,
    })
}

impl<'a> AudioTag<'a> {
    /// Parses the body of an RTMP audio message (an FLV audio tag's data).
    pub fn parse(data: &'a [u8]) -> Result<AudioTag<'a>> {
        let mut r = Reader::new(data, "audio");
        let Some(&first) = data.first() else {
            return Ok(AudioTag::Silence);
        };
        r.pos = 1;
        match first >> 4 {
            SOUND_AAC => {
                let packet_type = r.u8("truncated AAC packet type")?;
                match packet_type {
                    0 => Ok(AudioTag::SequenceStart {
                        codec: AudioCodec::Aac,
                        config: r.rest(),
                    }),
                    1 => Ok(AudioTag::Frame {
                        codec: AudioCodec::Aac,
                        data: r.rest(),
                    }),
                    _ => Err(Error::Flv {
                        kind: "audio",
                        reason: "reserved AAC packet type",
                    }),
                }
            }
            SOUND_EX_HEADER => Self::parse_enhanced(r, first & 0x0f),
            format => Err(Error::UnsupportedCodec {
                kind: "audio",
                codec: legacy_sound_format_name(format),
            }),
        }
    }

    fn parse_enhanced(mut r: Reader<'a>, packet_type: u8) -> Result<AudioTag<'a>> {
        let mut packet_type = packet_type;
        if packet_type == AUDIO_MOD_EX {
            packet_type = r.skip_mod_ex(AUDIO_MOD_EX)?;
        }
        let (fourcc, mut body) = if packet_type == AUDIO_MULTITRACK {
            let b = r.u8("truncated multitrack header")?;
            let multitrack_type = b >> 4;
            check_multitrack_type("audio", multitrack_type)?;
            packet_type = b & 0x0f;
            if packet_type == AUDIO_MULTITRACK || packet_type == AUDIO_MOD_EX {
                return Err(Error::Flv {
                    kind: "audio",
                    reason: "nested multitrack or ModEx packet type in a multitrack tag",
                });
            }
            let shared = if multitrack_type == MULTITRACK_MANY_CODECS {
                None
            } else {
                Some(r.fourcc("truncated audio FourCC")?)
            };
            match select_track_zero(&mut r, multitrack_type, shared)? {
                Selected::Default { fourcc, body } => (fourcc, Reader::new(body, "audio")),
                Selected::Other(track_id) => return Ok(AudioTag::OtherTrack { track_id }),
            }
        } else {
            let fourcc = r.fourcc("truncated audio FourCC")?;
            (fourcc, r)
        };
        let codec = audio_fourcc(fourcc)?;
        match packet_type {
            AUDIO_SEQUENCE_START => Ok(AudioTag::SequenceStart {
                codec,
                config: body.rest(),
            }),
            AUDIO_CODED_FRAMES => Ok(AudioTag::Frame {
                codec,
                data: body.rest(),
            }),
            AUDIO_SEQUENCE_END => Ok(AudioTag::SequenceEnd { codec }),
            AUDIO_MULTICHANNEL_CONFIG => {
                // audioChannelOrder (UI8), channelCount (UI8), then a mapping or mask
                // that is not kept.
                body.u8("truncated audio channel order")?;
                let channels = body.u8("truncated audio channel count")?;
                Ok(AudioTag::MultichannelConfig { codec, channels })
            }
            _ => Err(Error::Flv {
                kind: "audio",
                reason: "reserved audio packet type",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_avc() {
        let seq = [0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f];
        assert_eq!(
            VideoTag::parse(&seq).unwrap(),
            VideoTag::SequenceStart {
                codec: VideoCodec::Avc,
                config: &[1, 0x64, 0, 0x1f]
            }
        );
        // Negative composition time offset: -2 as SI24.
        let frame = [0x27, 1, 0xff, 0xff, 0xfe, 0, 0, 0, 1, 0x41];
        assert_eq!(
            VideoTag::parse(&frame).unwrap(),
            VideoTag::Frame {
                codec: VideoCodec::Avc,
                keyframe: false,
                cto: -2,
                data: &[0, 0, 0, 1, 0x41]
            }
        );
        let frame = [0x1c, 1, 0x00, 0x01, 0x00, 9];
        assert_eq!(
            VideoTag::parse(&frame).unwrap(),
            VideoTag::Frame {
                codec: VideoCodec::Hevc,
                keyframe: true,
                cto: 256,
                data: &[9]
            }
        );
        assert_eq!(
            VideoTag::parse(&[0x17, 2, 0, 0, 0]).unwrap(),
            VideoTag::SequenceEnd {
                codec: VideoCodec::Avc
            }
        );
        assert_eq!(VideoTag::parse(&[0x57, 1]).unwrap(), VideoTag::Command(1));
    }

    #[test]
    fn legacy_video_errors() {
        assert!(matches!(
            VideoTag::parse(&[0x14, 0, 0]),
            Err(Error::UnsupportedCodec { kind: "video", .. })
        ));
        assert!(matches!(
            VideoTag::parse(&[0x17, 3, 0, 0, 0]),
            Err(Error::Flv { kind: "video", .. })
        ));
        assert!(matches!(
            VideoTag::parse(&[0x07, 1, 0, 0, 0]),
            Err(Error::Flv { kind: "video", .. })
        ));
        assert!(VideoTag::parse(&[]).is_err());
    }

    #[test]
    fn enhanced_video() {
        let mut tag = vec![0x90, b'h', b'v', b'c', b'1', 1, 2, 3];
        assert_eq!(
            VideoTag::parse(&tag).unwrap(),
            VideoTag::SequenceStart {
                codec: VideoCodec::Hevc,
                config: &[1, 2, 3]
            }
        );
        tag[0] = 0xa1; // inter frame, CodedFrames: SI24 then data
        assert_eq!(
            VideoTag::parse(&tag).unwrap(),
            VideoTag::Frame {
                codec: VideoCodec::Hevc,
                keyframe: false,
                cto: 0x010203,
                data: &[]
            }
        );
        tag[0] = 0x93; // key frame, CodedFramesX: no SI24
        assert_eq!(
            VideoTag::parse(&tag).unwrap(),
            VideoTag::Frame {
                codec: VideoCodec::Hevc,
                keyframe: true,
                cto: 0,
                data: &[1, 2, 3]
            }
        );
        // AV1 CodedFrames carry no composition time.
        let tag = [0x91, b'a', b'v', b'0', b'1', 0x12, 0];
        assert_eq!(
            VideoTag::parse(&tag).unwrap(),
            VideoTag::Frame {
                codec: VideoCodec::Av1,
                keyframe: true,
                cto: 0,
                data: &[0x12, 0]
            }
        );
        // Command frame: no FourCC, one command byte.
        assert_eq!(VideoTag::parse(&[0xd1, 0]).unwrap(), VideoTag::Command(0));
        // Metadata ignores the frame type.
        assert_eq!(
            VideoTag::parse(&[0x84, b'h', b'v', b'c', b'1', 2, 0]).unwrap(),
            VideoTag::Metadata(&[2, 0])
        );
        assert!(matches!(
            VideoTag::parse(&[0x90, b'v', b'p', b'0', b'9', 1]),
            Err(Error::UnsupportedCodec { kind: "video", .. })
        ));
        assert!(matches!(
            VideoTag::parse(&[0x98, b'h', b'v', b'c', b'1']),
            Err(Error::Flv { kind: "video", .. })
        ));
    }

    #[test]
    fn enhanced_video_mod_ex() {
        // ModEx with 3 bytes of TimestampOffsetNano, then CodedFrames.
        let tag = [
            0x97, 2, 0x00, 0x01, 0x00, 0x01, b'a', b'v', b'c', b'1', 0, 0, 5, 0xaa,
        ];
        assert_eq!(
            VideoTag::parse(&tag).unwrap(),
            VideoTag::Frame {
                codec: VideoCodec::Avc,
                keyframe: true,
                cto: 5,
                data: &[0xaa]
            }
        );
        // Two chained ModEx packets, the first with a 16-bit size (UI8 255 -> UI16).
        let mut tag = vec![0x97, 255, 0x01, 0x00];
        tag.extend(std::iter::repeat_n(0u8, 257));
        tag.extend([0x07, 0, 9, 0x00, b'h', b'v', b'c', b'1', 1]);
        assert_eq!(
            VideoTag::parse(&tag).unwrap(),
            VideoTag::SequenceStart {
                codec: VideoCodec::Hevc,
                config: &[1]
            }
        );
    }

    #[test]
    fn enhanced_video_multitrack() {
        // OneTrack, track 0: handled like a plain tag.
        let tag = [0x96, 0x01, b'h', b'v', b'c', b'1', 0, 0, 0, 0, 7];
        assert_eq!(
            VideoTag::parse(&tag).unwrap(),
            VideoTag::Frame {
                codec: VideoCodec::Hevc,
                keyframe: true,
                cto: 0,
                data: &[7]
            }
        );
        // OneTrack, track 1 (what OBS sends for its extra renditions): ignored.
        let tag = [0x96, 0x01, b'h', b'v', b'c', b'1', 1, 0, 0, 0, 7];
        assert_eq!(
            VideoTag::parse(&tag).unwrap(),
            VideoTag::OtherTrack { track_id: 1 }
        );
        // ManyTracks: track 2 then track 0, sized.
        let tag = [
            0x96, 0x13, b'a', b'v', b'c', b'1', 2, 0, 0, 2, 0xee, 0xee, 0, 0, 0, 1, 0xbb,
        ];
        assert_eq!(
            VideoTag::parse(&tag).unwrap(),
            VideoTag::Frame {
                codec: VideoCodec::Avc,
                keyframe: true,
                cto: 0,
                data: &[0xbb]
            }
        );
        // ManyTracksManyCodecs: each track names its FourCC.
        let tag = [
            0x96, 0x20, b'v', b'p', b'0', b'9', 1, 0, 0, 1, 0xee, b'a', b'v', b'0', b'1', 0, 0, 0,
            2, 0x0a, 0x0b,
        ];
        assert_eq!(
            VideoTag::parse(&tag).unwrap(),
            VideoTag::SequenceStart {
                codec: VideoCodec::Av1,
                config: &[0x0a, 0x0b]
            }
        );
        // A track size running past the tag is an error.
        let tag = [0x96, 0x13, b'a', b'v', b'c', b'1', 0, 0, 0, 9, 1];
        assert!(VideoTag::parse(&tag).is_err());
        // Reserved multitrack type.
        let tag = [0x96, 0x33, b'a', b'v', b'c', b'1', 0, 1];
        assert!(VideoTag::parse(&tag).is_err());
    }

    #[test]
    fn audio() {
        assert_eq!(
            AudioTag::parse(&[0xaf, 0, 0x11, 0x90]).unwrap(),
            AudioTag::SequenceStart {
                codec: AudioCodec::Aac,
                config: &[0x11, 0x90]
            }
        );
        assert_eq!(
            AudioTag::parse(&[0xaf, 1, 0x21]).unwrap(),
            AudioTag::Frame {
                codec: AudioCodec::Aac,
                data: &[0x21]
            }
        );
        assert_eq!(AudioTag::parse(&[]).unwrap(), AudioTag::Silence);
        match AudioTag::parse(&[0x2f, 0xff]) {
            Err(Error::UnsupportedCodec { kind, codec }) => {
                assert_eq!(kind, "audio");
                assert_eq!(codec, "sound format 2 (MP3)");
            }
            other => panic!("expected unsupported, got {other:?}"),
        }
        assert!(matches!(
            AudioTag::parse(&[0xaf, 2]),
            Err(Error::Flv { kind: "audio", .. })
        ));
        // Enhanced: Opus sequence start, coded frames, multichannel config.
        assert_eq!(
            AudioTag::parse(&[0x90, b'O', b'p', b'u', b's', 1, 2]).unwrap(),
            AudioTag::SequenceStart {
                codec: AudioCodec::Opus,
                config: &[1, 2]
            }
        );
        assert_eq!(
            AudioTag::parse(&[0x91, b'm', b'p', b'4', b'a', 3]).unwrap(),
            AudioTag::Frame {
                codec: AudioCodec::Aac,
                data: &[3]
            }
        );
        assert_eq!(
            AudioTag::parse(&[0x94, b'O', b'p', b'u', b's', 1, 6, 0, 0, 0, 0x3f]).unwrap(),
            AudioTag::MultichannelConfig {
                codec: AudioCodec::Opus,
                channels: 6
            }
        );
        // ModEx then multitrack OneTrack on track 0.
        assert_eq!(
            AudioTag::parse(&[0x97, 0, 0x55, 0x05, 0x01, b'O', b'p', b'u', b's', 0, 0xf8]).unwrap(),
            AudioTag::Frame {
                codec: AudioCodec::Opus,
                data: &[0xf8]
            }
        );
        assert!(matches!(
            AudioTag::parse(&[0x91, b'f', b'L', b'a', b'C', 3]),
            Err(Error::UnsupportedCodec { kind: "audio", .. })
        ));
    }

    /// Every prefix of a valid tag parses or fails cleanly; the ones that must hold
    /// more bytes than given fail.
    #[test]
    fn truncated_tags_never_panic() {
        let video: &[&[u8]] = &[
            &[0x17, 1, 0, 0, 5, 0, 0, 0, 1, 0x65],
            &[
                0x97, 2, 0, 1, 0, 0x01, b'a', b'v', b'c', b'1', 0, 0, 5, 0xaa,
            ],
            &[
                0x96, 0x13, b'a', b'v', b'c', b'1', 2, 0, 0, 2, 0xee, 0xee, 0, 0, 0, 1, 0xbb,
            ],
            &[0xd1, 0],
        ];
        for tag in video {
            assert!(VideoTag::parse(tag).is_ok());
            for len in 0..tag.len() {
                let _ = VideoTag::parse(&tag[..len]);
            }
        }
        // Prefixes that cut a fixed-size field must fail.
        let tag = [0x17, 1, 0, 0, 5, 0, 0, 0, 1, 0x65];
        for len in 0..5 {
            assert!(VideoTag::parse(&tag[..len]).is_err(), "len {len}");
        }
        let tag = [
            0x97, 2, 0, 1, 0, 0x01, b'a', b'v', b'c', b'1', 0, 0, 5, 0xaa,
        ];
        for len in 0..13 {
            assert!(VideoTag::parse(&tag[..len]).is_err(), "len {len}");
        }
        let tag = [0x97, 0, 0x55, 0x05, 0x01, b'O', b'p', b'u', b's', 0, 0xf8];
        assert!(AudioTag::parse(&tag).is_ok());
        for len in 1..10 {
            assert!(AudioTag::parse(&tag[..len]).is_err(), "len {len}");
        }
    }
}
