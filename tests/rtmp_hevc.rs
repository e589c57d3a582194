//! HEVC over enhanced RTMP: an x265-encoded stream, split into access units here, is
//! published as `hvc1` FourCC video tags by the crate's sans-IO client over a real TCP
//! socket; the hub must yield an H.265 track whose codec string, dimensions and frame
//! count agree with ffprobe's view of the x265 output.
#[path = "support/flv_publish.rs"]
mod flv_publish;
mod support;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use ingest::rtmp::client::ClientSession;
use media::Codec;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const FPS: u32 = 25;

/// 1 s of 320x240 25 fps HEVC Main from the x265 CLI, one IDR per second, no B-frames
/// (so every access unit has pts = dts and the composition offset is 0).
fn hevc_fixture() -> PathBuf {
    fixture(
        "x265-320x240.hevc",
        "ffmpeg -hide_banner -nostdin -loglevel error -f lavfi -i testsrc2=size=320x240:rate=25 \
         -t 1 -pix_fmt yuv420p -f rawvideo - \
         | x265 --log-level error --input - --input-res 320x240 --fps 25 --keyint 25 \
           --bframes 0 -o \"$OUT\"",
    )
}

fn nal_type(nal: &[u8]) -> u8 {
    (nal[0] >> 1) & 0x3f
}

fn is_vcl(t: u8) -> bool {
    t < 32
}

/// IRAP pictures (BLA, IDR, CRA): sync samples.
fn is_irap(t: u8) -> bool {
    (16..=23).contains(&t)
}

/// Annex B NAL units (start codes removed), split here without the crate's helpers.
fn split_annexb(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
        // A 4-byte start code leaves a zero before the next 3-byte one.
        while end > s && data[end - 1] == 0 && k + 1 < starts.len() {
            end -= 1;
        }
        out.push(&data[s..end]);
    }
    out
}

/// One access unit: its NAL units and whether it is an IRAP picture.
struct AccessUnit<'a> {
    nals: Vec<&'a [u8]>,
    keyframe: bool,
}

/// Groups NAL units into access units (H.265 7.4.2.4.4): a new one starts at a
/// parameter set, AUD or prefix SEI, or at a slice with first_slice_segment_in_pic_flag,
/// once the current one has a picture.
fn access_units<'a>(nals: &[&'a [u8]]) -> Vec<AccessUnit<'a>> {
    let mut aus: Vec<AccessUnit> = Vec::new();
    let mut has_vcl = false;
    for &nal in nals {
        let t = nal_type(nal);
        let starts_au = matches!(t, 32..=35 | 39 | 41..=44 | 48..=55)
            || (is_vcl(t) && nal.get(2).is_some_and(|b| b & 0x80 != 0));
        if aus.is_empty() || (starts_au && has_vcl) {
            aus.push(AccessUnit {
                nals: Vec::new(),
                keyframe: false,
            });
            has_vcl = false;
        }
        let au = aus.last_mut().expect("one access unit");
        au.nals.push(nal);
        if is_vcl(t) {
            has_vcl = true;
            au.keyframe |= is_irap(t);
        }
    }
    aus
}

/// Emulation-prevention bytes removed.
fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// The 12-byte general profile_tier_level of an SPS (sps_max_sub_layers_minus1 must be
/// 0, which the assert checks, so nothing follows it that we would need to skip).
fn sps_ptl(sps: &[u8]) -> [u8; 12] {
    let r = rbsp(sps);
    assert_eq!((r[2] >> 1) & 7, 0, "SPS with sub-layers");
    r[3..15].try_into().expect("12 PTL bytes")
}

/// RFC 6381 / ISO/IEC 14496-15 E.3 codec string from a profile_tier_level:
/// `hvc1.[A-C]?<profile_idc>.<compat flags, bit-reversed, hex>.<L|H><level_idc>` then the
/// six constraint bytes in hex, trailing zero bytes left out.
fn hvc1_codec_string(ptl: &[u8; 12]) -> String {
    let space = ["", "A", "B", "C"][usize::from(ptl[0] >> 6)];
    let tier = if ptl[0] & 0x20 != 0 { 'H' } else { 'L' };
    let profile = ptl[0] & 0x1f;
    let compat = u32::from_be_bytes([ptl[1], ptl[2], ptl[3], ptl[4]]).reverse_bits();
    let mut s = format!("hvc1.{space}{profile}.{compat:X}.{tier}{}", ptl[11]);
    let constraints = &ptl[5..11];
    let used = constraints
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i + 1);
    for b in &constraints[..used] {
        s.push_str(&format!(".{b:02X}"));
    }
    s
}

/// An HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1) with 4-byte NAL
/// lengths. Chroma format and bit depth are what ffprobe reports for the fixture
/// (`yuv420p`: 4:2:0, 8 bits), checked by the caller.
fn hvcc(vps: &[u8], sps: &[u8], pps: &[u8]) -> Bytes {
    let ptl = sps_ptl(sps);
    let mut r = vec![1u8];
    r.extend_from_slice(&ptl);
    r.extend_from_slice(&[0xF0, 0x00]); // min_spatial_segmentation_idc 0
    r.push(0xFC); // parallelismType 0
    r.push(0xFC | 1); // chroma_format_idc 1
    r.push(0xF8); // bit_depth_luma_minus8 0
    r.push(0xF8); // bit_depth_chroma_minus8 0
    r.extend_from_slice(&0u16.to_be_bytes()); // avgFrameRate unspecified
    // constantFrameRate 0, numTemporalLayers 1, temporalIdNested 1, lengthSizeMinusOne 3
    r.push((1 << 3) | (1 << 2) | 3);
    r.push(3);
    for (t, nal) in [(32u8, vps), (33, sps), (34, pps)] {
        r.push(0x80 | t); // array_completeness 1
        r.extend_from_slice(&1u16.to_be_bytes());
        r.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        r.extend_from_slice(nal);
    }
    Bytes::from(r)
}

/// Enhanced RTMP video tag bodies (E-RTMP v1): `IsExHeader | FrameType | PacketType`,
/// FourCC `hvc1`, then the payload.
const PACKET_SEQUENCE_START: u8 = 0;
const PACKET_CODED_FRAMES: u8 = 1;
const PACKET_SEQUENCE_END: u8 = 2;
const PACKET_CODED_FRAMES_X: u8 = 3;

fn ex_video_tag(keyframe: bool, packet_type: u8, payload: &[u8]) -> Bytes {
    let frame_type = if keyframe { 1 } else { 2 };
    let mut tag = vec![0x80 | (frame_type << 4) | packet_type];
    tag.extend_from_slice(b"hvc1");
    tag.extend_from_slice(payload);
    Bytes::from(tag)
}

/// Length-prefixed (4 bytes) access unit, without parameter sets (they are in the hvcC).
fn au_payload(au: &AccessUnit) -> Vec<u8> {
    let mut out = Vec::new();
    for nal in au.nals.iter().filter(|n| !matches!(nal_type(n), 32..=34)) {
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x265_stream_over_enhanced_rtmp() {
    // What ffprobe says about the x265 output.
    let path = hevc_fixture();
    let probe = ffprobe(&path, &[]);
    let pv = probe.stream("video");
    assert_eq!(pv.codec_name, "hevc");
    assert_eq!(pv.profile.as_deref(), Some("Main"));
    assert_eq!(
        pv.pix_fmt.as_deref(),
        Some("yuv420p"),
        "hvcC below assumes 4:2:0 8-bit"
    );
    let (width, height) = (pv.width.unwrap(), pv.height.unwrap());
    assert_eq!((width, height), (320, 240));

    // Access units and parameter sets, split here.
    let data = std::fs::read(&path).expect("read fixture");
    let nals = split_annexb(&data);
    let find = |t: u8| {
        *nals
            .iter()
            .find(|n| nal_type(n) == t)
            .unwrap_or_else(|| panic!("no NAL of type {t}"))
    };
    let (vps, sps, pps) = (find(32), find(33), find(34));
    let ptl = sps_ptl(sps);
    assert_eq!(
        ptl[0] & 0x1f,
        1,
        "SPS general_profile_idc vs ffprobe's Main"
    );
    assert_eq!(
        Some(i64::from(ptl[11])),
        pv.level,
        "SPS level_idc vs ffprobe"
    );
    let want_codec = hvc1_codec_string(&ptl);
    let aus = access_units(&nals);
    let packets = probe.packets("video");
    assert_eq!(aus.len(), packets.len(), "access units vs ffprobe packets");
    for (i, (au, p)) in aus.iter().zip(&packets).enumerate() {
        assert_eq!(au.keyframe, p.keyframe, "keyframe flag of access unit {i}");
    }

    let server = TestServer::start(ServerOpts::default()).await;
    let mut socket = TcpStream::connect(server.addr).await.expect("connect");
    let mut client = ClientSession::new("live", server.url("live"), "hevc");
    flv_publish::start_publishing(&mut socket, &mut client).await;
    // The name is claimed before the publish is answered: no frame can be missed.
    let mut sub = server
        .hub
        .subscribe("live/hevc")
        .expect("live/hevc on the hub once publishing");

    let mut out = Vec::new();
    let metadata = vec![
        (
            "videocodecid".to_string(),
            f64::from(u32::from_be_bytes(*b"hvc1")).into(),
        ),
        ("width".to_string(), f64::from(width).into()),
        ("height".to_string(), f64::from(height).into()),
        ("framerate".to_string(), f64::from(FPS).into()),
    ];
    out.push(client.send_metadata(metadata).unwrap());
    let config = hvcc(vps, sps, pps);
    out.push(
        client
            .send_video(0, ex_video_tag(true, PACKET_SEQUENCE_START, &config))
            .unwrap(),
    );
    let step_ms = 1000 / FPS;
    let mut sent = Vec::new();
    for (i, au) in aus.iter().enumerate() {
        let payload = au_payload(au);
        // Alternate the two coded-frame packet types: X has no composition offset,
        // CodedFrames carries SI24 0.
        let tag = if i % 2 == 0 {
            ex_video_tag(au.keyframe, PACKET_CODED_FRAMES_X, &payload)
        } else {
            let mut body = vec![0, 0, 0];
            body.extend_from_slice(&payload);
            ex_video_tag(au.keyframe, PACKET_CODED_FRAMES, &body)
        };
        out.push(client.send_video(i as u32 * step_ms, tag).unwrap());
        sent.push(payload);
    }
    let end_ms = aus.len() as u32 * step_ms;
    out.push(
        client
            .send_video(end_ms, ex_video_tag(false, PACKET_SEQUENCE_END, &[]))
            .unwrap(),
    );
    out.push(client.unpublish().unwrap());
    for bytes in out {
        socket.write_all(&bytes).await.expect("write media");
    }
    let got = collect_until_end(&mut sub, Duration::from_secs(10)).await;
    drop(socket);

    assert!(got.ended);
    assert_eq!(got.tracks().len(), 1, "video only: {:?}", got.tracks());
    let video = got.track(VIDEO);
    assert_eq!(video.timescale, 90_000);
    assert!(
        matches!(video.codec, Codec::H265 { .. }),
        "codec {:?}",
        video.codec
    );
    assert!(
        video.codec.rfc6381().eq_ignore_ascii_case(&want_codec),
        "codec string {:?}, want {want_codec:?}",
        video.codec.rfc6381()
    );
    assert_eq!(video.codec.dimensions(), Some((width, height)));
    if let Some(fps) = video.codec.fps() {
        assert!((fps.as_f64() - f64::from(FPS)).abs() < 1e-9, "fps {fps:?}");
    }

    let frames = got.frames(VIDEO);
    assert_eq!(frames.len(), aus.len(), "frame count");
    let dts0 = frames[0].dts;
    for (i, (f, (au, payload))) in frames.iter().zip(aus.iter().zip(&sent)).enumerate() {
        assert_eq!(f.keyframe, au.keyframe, "keyframe flag of frame {i}");
        assert_eq!(
            f.dts - dts0,
            i as i64 * i64::from(step_ms) * 90,
            "dts of frame {i}"
        );
        assert_eq!(f.pts, f.dts, "pts of frame {i}");
        assert!(
            f.data == payload[..],
            "payload of frame {i} differs from what was sent"
        );
    }
    server.shutdown(Duration::from_secs(5)).await;
}

/// The codec-string helper against the examples of ISO/IEC 14496-15 E.3 / RFC 6381 use.
#[test]
fn codec_string_helper_follows_the_spec_examples() {
    // Main, compatible with Main and Main 10, level 3.1, progressive + frame-only flags.
    let main = [0x01, 0x60, 0, 0, 0, 0xB0, 0, 0, 0, 0, 0, 93];
    assert_eq!(hvc1_codec_string(&main), "hvc1.1.6.L93.B0");
    // Main 10, high tier, level 4.0 (120), compat flag 2 only, two constraint bytes.
    let main10 = [0x22, 0x20, 0, 0, 0, 0xB0, 0x23, 0, 0, 0, 0, 120];
    assert_eq!(hvc1_codec_string(&main10), "hvc1.2.4.H120.B0.23");
}
