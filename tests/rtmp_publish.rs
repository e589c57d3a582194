//! Real publishers (ffmpeg, gst-launch-1.0 with rtmp2sink) push an H.264 + AAC FLV file
//! to the in-process RTMP server; what the hub yields is compared, frame by frame, with
//! ffprobe's view of the bytes the publisher sent.
mod support;

use std::path::Path;
use std::time::Duration;

use media::{Codec, StreamEvent};
use support::*;

/// ffprobe reports FLV times in milliseconds.
const MS_90K: i64 = 90;
const MS_48K: i64 = 48;

/// The first SPS of an Annex B H.264 file: (profile_idc, constraint flags, level_idc).
fn first_sps_ptl(annexb: &Path) -> (u8, u8, u8) {
    let data = std::fs::read(annexb).expect("read annex b");
    let mut i = 0;
    while i + 3 < data.len() {
        if data[i..i + 3] == [0, 0, 1] && data[i + 3] & 0x1f == 7 {
            // NAL header at i+3; profile, constraints and level follow. x264 never puts an
            // emulation-prevention byte here (no 00 00 run), which the assert checks.
            let ptl = &data[i + 4..i + 7];
            assert!(
                !ptl.windows(2).any(|w| w == [0, 0]),
                "unexpected 00 00 in SPS"
            );
            return (ptl[0], ptl[1], ptl[2]);
        }
        i += 1;
    }
    panic!("no SPS in {}", annexb.display());
}

fn h264_profile_idc(name: &str) -> u8 {
    match name {
        "Baseline" | "Constrained Baseline" => 66,
        "Main" => 77,
        "High" => 100,
        other => panic!("unexpected H.264 profile {other:?} in the fixture"),
    }
}

/// Checks everything the hub yielded for one publish against ffprobe's packets of the
/// bytes the publisher sent (`reference`), and the codec against the fixture's SPS.
fn check_stream(who: &str, got: &Collected, reference: &Probe, sps: (u8, u8, u8)) {
    assert!(got.ended, "{who}: stream did not end with End");
    assert_eq!(got.discontinuities(), 0, "{who}: unexpected discontinuity");
    assert!(
        matches!(got.events.first(), Some(StreamEvent::Tracks(_))),
        "{who}: first event must be Tracks, got {:?}",
        got.events.first().map(std::mem::discriminant)
    );

    // Tracks: H.264 on 0 at 90 kHz, AAC on 1 at the sample rate.
    let pv = reference.stream("video");
    let pa = reference.stream("audio");
    let video = got.track(VIDEO);
    assert_eq!(video.timescale, 90_000, "{who}: video timescale");
    let Codec::H264 { avcc, .. } = &video.codec else {
        panic!("{who}: video codec is {:?}, want H.264", video.codec);
    };
    let profile = h264_profile_idc(pv.profile.as_deref().unwrap_or_default());
    let level = u8::try_from(pv.level.expect("ffprobe level")).expect("level fits u8");
    assert_eq!(
        (sps.0, sps.2),
        (profile, level),
        "SPS disagrees with ffprobe"
    );
    let want = format!("avc1.{:02x}{:02x}{:02x}", sps.0, sps.1, sps.2);
    assert_eq!(
        video.codec.rfc6381().to_ascii_lowercase(),
        want,
        "{who}: RFC 6381 codec string (ffprobe: {} level {level})",
        pv.profile.as_deref().unwrap_or_default()
    );
    assert_eq!(
        avcc.get(1..4),
        Some(&[sps.0, sps.1, sps.2][..]),
        "{who}: avcC profile/compat/level"
    );
    assert_eq!(
        video.codec.dimensions(),
        Some((pv.width.unwrap(), pv.height.unwrap())),
        "{who}: dimensions"
    );
    let fps = video.codec.fps().expect("x264 signals timing in the VUI");
    assert!(
        (fps.as_f64() - 30.0).abs() < 1e-9,
        "{who}: fps {fps:?}, want 30"
    );

    let audio = got.track(AUDIO);
    let want_rate = pa.sample_rate.expect("ffprobe sample_rate");
    assert_eq!(audio.timescale, want_rate, "{who}: audio timescale");
    assert!(
        matches!(audio.codec, Codec::Aac { .. }),
        "{who}: audio codec {:?}",
        audio.codec
    );
    assert_eq!(
        audio.codec.audio(),
        Some((48_000, 2)),
        "{who}: sample rate and channels"
    );
    assert_eq!((want_rate, pa.channels), (48_000, Some(2)), "fixture audio");
    assert_eq!(
        audio.codec.rfc6381(),
        "mp4a.40.2",
        "{who}: AAC-LC codec string"
    );

    // Video frames: count, keyframes, dts deltas, composition offsets, payload sizes.
    let frames = got.frames(VIDEO);
    let packets = reference.packets("video");
    assert_eq!(frames.len(), packets.len(), "{who}: video frame count");
    let ms = |p: &ProbePacket| (p.dts.expect("dts"), p.pts.expect("pts"));
    let (dts0_ms, _) = ms(packets[0]);
    let dts0 = frames[0].dts;
    let mut b_frames = 0;
    for (i, (f, p)) in frames.iter().zip(&packets).enumerate() {
        let (dts_ms, pts_ms) = ms(p);
        assert_eq!(
            f.keyframe, p.keyframe,
            "{who}: keyframe flag of video frame {i}"
        );
        assert_eq!(
            f.dts - dts0,
            (dts_ms - dts0_ms) * MS_90K,
            "{who}: dts of video frame {i} (ffprobe dts {dts_ms} ms)"
        );
        assert_eq!(
            f.pts - f.dts,
            (pts_ms - dts_ms) * MS_90K,
            "{who}: composition offset of video frame {i}"
        );
        if f.pts != f.dts {
            b_frames += 1;
        }
        assert_eq!(
            f.data.len(),
            p.size,
            "{who}: payload size of video frame {i}"
        );
        let nals = nal_units(&f.data);
        if f.keyframe {
            assert!(
                nals.iter().any(|n| n.first().map(|b| b & 0x1f) == Some(5)),
                "{who}: keyframe {i} has no IDR slice"
            );
        }
        if i > 0 {
            assert!(
                f.dts >= frames[i - 1].dts,
                "{who}: dts goes back at frame {i}"
            );
        }
    }
    assert!(
        b_frames > 0,
        "{who}: no frame with pts != dts (B-frames lost?)"
    );
    assert!(
        frames[0].keyframe,
        "{who}: first video frame is not a keyframe"
    );

    // Audio frames: count, pts within 1 ms, sizes, every frame a sync sample.
    let aframes = got.frames(AUDIO);
    let apackets = reference.packets("audio");
    assert_eq!(aframes.len(), apackets.len(), "{who}: audio frame count");
    let apts0_ms = apackets[0].pts.expect("audio pts");
    let apts0 = aframes[0].pts;
    for (i, (f, p)) in aframes.iter().zip(&apackets).enumerate() {
        let pts_ms = p.pts.expect("audio pts");
        let want = (pts_ms - apts0_ms) * MS_48K;
        assert!(
            (f.pts - apts0 - want).abs() <= MS_48K,
            "{who}: audio frame {i}: pts {} (rebased {}), ffprobe {pts_ms} ms = {want}",
            f.pts,
            f.pts - apts0
        );
        assert_eq!(f.dts, f.pts, "{who}: audio dts of frame {i}");
        assert_eq!(
            f.data.len(),
            p.size,
            "{who}: audio payload size of frame {i}"
        );
        assert!(f.keyframe, "{who}: audio frame {i} not a sync sample");
    }

    // A/V sync: the offset between the first audio pts and the first video dts survives
    // the rebase (within 1 ms).
    let want_offset_ms = apts0_ms - dts0_ms;
    let got_offset_us = apts0 * 1_000_000 / i64::from(want_rate) - dts0 * 1_000_000 / 90_000;
    assert!(
        (got_offset_us - want_offset_ms * 1000).abs() <= 1000,
        "{who}: audio starts {got_offset_us} us after video, ffprobe says {want_offset_ms} ms"
    );
}

/// The fixture as Annex B, for an independent look at its SPS.
fn fixture_annexb(flv: &Path) -> std::path::PathBuf {
    fixture(
        "avc-aac-640x360.h264",
        &format!(
            "ffmpeg -hide_banner -nostdin -loglevel error -y -i '{}' -an -c:v copy \
             -bsf:v h264_mp4toannexb -f h264 \"$OUT\"",
            flv.display()
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publish_matches_ffprobe() {
    let flv = avc_aac_flv();
    let reference = ffprobe(&flv, &[]);
    let sps = first_sps_ptl(&fixture_annexb(&flv));
    let server = TestServer::start(ServerOpts::default()).await;
    let name = "live/ffmpeg-pub";
    let mut proxy = SubscribeProxy::start(&server, name).await;

    let mut ff = ffmpeg_publish(&flv, &proxy.url(name), &[]);
    let mut sub = proxy.subscriber(Duration::from_secs(15)).await;
    assert!(
        server.hub.streams().iter().any(|s| s.name == name),
        "hub.streams() does not list {name}"
    );
    let got = collect_until_end(&mut sub, Duration::from_secs(30)).await;
    ff.wait_success(Duration::from_secs(10)).await;
    check_stream("ffmpeg", &got, &reference, sps);

    assert!(
        server.hub.subscribe(name).is_none(),
        "{name} still live after End"
    );
    wait_for_log(
        "rtmp publish started for the ffmpeg stream",
        Duration::from_secs(2),
        |l| l.contains("publish") && l.contains(name),
    )
    .await;
    server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_publish_matches_ffprobe() {
    let flv = avc_aac_flv();
    let sps = first_sps_ptl(&fixture_annexb(&flv));
    let server = TestServer::start(ServerOpts::default()).await;
    let name = "live/gst-pub";
    let mut proxy = SubscribeProxy::start(&server, name).await;

    // flvmux re-times the stream (it starts at 0 and clamps), so the reference is the FLV
    // flvmux produced, tee'd to a file next to rtmp2sink: exactly the tags sent.
    let dir = temp_dir("gst-publish");
    let sent = dir.join("sent.flv");
    let pipeline = format!(
        "filesrc location={flv} ! flvdemux name=d \
         flvmux name=m streamable=true ! tee name=t \
         t. ! queue ! rtmp2sink location={url} sync=false \
         t. ! queue ! filesink location={sent} \
         d.video ! queue ! h264parse ! m. \
         d.audio ! queue ! aacparse ! m.",
        flv = flv.display(),
        url = proxy.url(name),
        sent = sent.display(),
    );
    let mut args = vec!["-q".to_string()];
    args.extend(pipeline.split_whitespace().map(str::to_owned));
    let mut gst = Proc::spawn("gst-launch-1.0", &args);

    let mut sub = proxy.subscriber(Duration::from_secs(15)).await;
    let got = collect_until_end(&mut sub, Duration::from_secs(30)).await;
    gst.wait_success(Duration::from_secs(10)).await;
    let reference = ffprobe(&sent, &[]);
    assert_eq!(
        reference.packets("video").len(),
        ffprobe(&flv, &[]).packets("video").len(),
        "gst sent a different number of video frames than the file holds"
    );
    check_stream("gst-launch", &got, &reference, sps);
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown(Duration::from_secs(5)).await;
}

/// ffmpeg sends `deleteStream` after `FCUnpublish`: the server must not hang up in
/// between (ffmpeg then reports a broken pipe on close).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublish_leaves_the_connection_to_the_publisher() {
    init_logs();
    let flv = small_avc_aac_flv();
    let server = TestServer::start(ServerOpts::default()).await;
    let mut ff = ffmpeg_publish(&flv, &server.url("live/direct"), &[]);
    ff.wait_success(Duration::from_secs(20)).await;
    let stderr = ff.stderr();
    assert!(
        !stderr.contains("Broken pipe") && !stderr.contains("Error closing"),
        "ffmpeg saw the connection closed under it:\n{stderr}"
    );
}
