//! Program date-time tests: the clock every rendition dates its segments by.
use super::*;

#[test]
fn segments_start_at_the_target_and_program_date_time_is_the_ingest_clock() {
    let src = Source::new(25, 1);
    let (program, c) = run(PackagerConfig::default(), &src.events());
    for (i, s) in c.segments[SOURCE].iter().enumerate() {
        // Segment i starts at keyframe 50 i, received 5 ms after its time.
        let expected = epoch() + Duration::from_secs(2 * i as u64) + Duration::from_millis(5);
        assert_eq!(s.pdt, Some(expected), "video {}", s.msn);
        assert_eq!(s.msn, i as u64 + 1);
    }
    // Audio segment N starts at the audio frame nearest the video boundary pts (the
    // keyframe pts is 80 ms after its dts here): its PDT is that frame's.
    for s in &c.segments[AUDIO] {
        let v = &c.segments[SOURCE][(s.msn - 1) as usize];
        let gap = s
            .pdt
            .unwrap()
            .duration_since(v.pdt.unwrap())
            .unwrap_or_default();
        assert!(
            gap <= Duration::from_millis(80 + 11),
            "audio {}: {gap:?}",
            s.msn
        );
    }
    let pl = program.playlist(SOURCE).unwrap();
    assert_eq!(pl.media_sequence, 1);
    assert!(pl.independent_segments);
    assert_eq!(pl.target_duration, 2);
    assert_eq!(pl.part_target, program.part_target().unwrap());
    let pending = pl.pending.expect("open segment");
    assert_eq!(pending.msn, c.segments[SOURCE].last().unwrap().msn + 1);
    assert!(!pl.ended);
}

/// Date-times are written in whole milliseconds, truncated, and hls.js places an audio
/// playlist against the video one by their date-times. Where the written audio date-time
/// is later, relative to the video's, than the true one, the player expects the next
/// audio part after the audio it has buffered ends, and waits (seconds). The program
/// clock is anchored at a whole millisecond so truncation only ever moves audio earlier:
/// checked with publisher arrival times that are not whole milliseconds.
#[test]
fn written_audio_date_times_never_run_past_the_audio() {
    for fraction_us in [0, 333, 700, 999] {
        let mut src = Source::new(30, 1);
        src.rtmp = true;
        src.seconds = 10;
        let events: Vec<StreamEvent> = src
            .events()
            .into_iter()
            .map(|e| match e {
                StreamEvent::Frame(mut f) => {
                    f.received += Duration::from_micros(fraction_us);
                    StreamEvent::Frame(f)
                }
                other => other,
            })
            .collect();
        let (_, c) = run(PackagerConfig::default(), &ended(&events));
        let ns = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i128;
        let written = |t: SystemTime| ns(t) / 1_000_000 * 1_000_000;
        let (v, a) = (&c.segments[SOURCE], &c.segments[AUDIO]);
        assert!(a.len() >= 4, "{fraction_us} us: {} audio segments", a.len());
        for sa in a {
            let Some(sv) = v.iter().find(|s| s.msn == sa.msn) else {
                continue;
            };
            let (pa, pv) = (sa.pdt.unwrap(), sv.pdt.unwrap());
            assert!(
                written(pa) - written(pv) <= ns(pa) - ns(pv),
                "+{fraction_us} us, msn {}: written audio - video {} ns, true {} ns",
                sa.msn,
                written(pa) - written(pv),
                ns(pa) - ns(pv)
            );
        }
    }
}
