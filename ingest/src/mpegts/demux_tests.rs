use super::*;
use proptest::prelude::*;

/// 0.8 s of x264 + AAC from ffmpeg (see testdata/gen_flv.sh).
pub(super) const FILE: &[u8] = include_bytes!("../../testdata/h264_aac.ts");

// ---------------------------------------------------------------------------------------
// A small transport stream writer for hand-made cases.

fn section(table_id: u8, ext: u16, body: &[u8]) -> Vec<u8> {
    let len = 5 + body.len() + 4;
    let mut s = vec![
        table_id,
        0xb0 | (len >> 8) as u8,
        len as u8,
        (ext >> 8) as u8,
        ext as u8,
        0xc1,
        0,
        0,
    ];
    s.extend_from_slice(body);
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

fn pat(pmt_pid: u16) -> Vec<u8> {
    section(0, 1, &[0, 1, 0xe0 | (pmt_pid >> 8) as u8, pmt_pid as u8])
}

fn pmt(pcr_pid: u16, streams: &[(u8, u16)]) -> Vec<u8> {
    let mut body = vec![0xe0 | (pcr_pid >> 8) as u8, pcr_pid as u8, 0xf0, 0];
    for &(stream_type, pid) in streams {
        body.extend_from_slice(&[stream_type, 0xe0 | (pid >> 8) as u8, pid as u8, 0xf0, 0]);
    }
    section(2, 1, &body)
}

/// One packet: `af` is the adaptation field body after its length byte (flags first).
fn packet(pid: u16, pusi: bool, cc: u8, af: Option<&[u8]>, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![
        SYNC_BYTE,
        (u8::from(pusi) << 6) | (pid >> 8) as u8,
        pid as u8,
        0,
    ];
    let room = PACKET_SIZE - 4;
    let af_body = af.map(<[u8]>::to_vec).unwrap_or_default();
    let needs_af = af.is_some() || payload.len() < room;
    assert!(payload.len() <= room);
    let afc = match (needs_af, payload.is_empty()) {
        (true, true) => 2,
        (true, false) => 3,
        (false, _) => 1,
    };
    p[3] = (afc << 4) | (cc & 0x0f);
    if needs_af {
        let af_len = room - 1 - payload.len();
        assert!(af_body.len() <= af_len, "adaptation field too long");
        p.push(af_len as u8);
        let mut body = af_body;
        if af_len > 0 && body.is_empty() {
            body.push(0);
        }
        body.resize(af_len, 0xff);
        p.extend_from_slice(&body);
    }
    p.extend_from_slice(payload);
    assert_eq!(p.len(), PACKET_SIZE);
    p
}

/// A section or PES split into packets; `cc` is advanced.
fn packets(pid: u16, psi: bool, data: &[u8], cc: &mut u8, af_first: Option<&[u8]>) -> Vec<u8> {
    let mut data = data.to_vec();
    if psi {
        data.insert(0, 0);
    }
    let mut out = Vec::new();
    let mut first = true;
    let mut rest = &data[..];
    while first || !rest.is_empty() {
        let af = if first { af_first } else { None };
        let af_room = af.map_or(0, |a| a.len() + 1);
        let n = rest.len().min(PACKET_SIZE - 4 - af_room);
        let (chunk, tail) = rest.split_at(n);
        let chunk = if psi && tail.is_empty() {
            let mut c = chunk.to_vec();
            c.resize(PACKET_SIZE - 4 - af_room, 0xff);
            c
        } else {
            chunk.to_vec()
        };
        out.extend(packet(pid, first, *cc, af, &chunk));
        *cc = (*cc + 1) & 0x0f;
        first = false;
        rest = tail;
    }
    out
}

fn ts_field(prefix: u8, ts: i64) -> [u8; 5] {
    [
        (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1,
        (ts >> 22) as u8,
        (((ts >> 15) as u8) << 1) | 1,
        (ts >> 7) as u8,
        ((ts as u8) << 1) | 1,
    ]
}

fn pes(stream_id: u8, pts: Option<i64>, dts: Option<i64>, data: &[u8], with_len: bool) -> Vec<u8> {
    let mut header = Vec::new();
    let flags = match (pts, dts) {
        (Some(p), Some(d)) => {
            header.extend(ts_field(3, p));
            header.extend(ts_field(1, d));
            0xc0
        }
        (Some(p), None) => {
            header.extend(ts_field(2, p));
            0x80
        }
        _ => 0,
    };
    let len = if with_len {
        3 + header.len() + data.len()
    } else {
        0
    };
    let mut out = vec![0, 0, 1, stream_id, (len >> 8) as u8, len as u8];
    out.extend_from_slice(&[0x80, flags, header.len() as u8]);
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out
}

const VIDEO: u16 = 0x100;
const AUDIO: u16 = 0x101;

/// PAT and a PMT with H.264 on 0x100, AAC on 0x101 and AC-3 (private, 0x06) on 0x102.
fn program(cc: &mut [u8; 2]) -> Vec<u8> {
    let mut out = packets(0, true, &pat(0x1000), &mut cc[0], None);
    out.extend(packets(
        0x1000,
        true,
        &pmt(VIDEO, &[(0x1b, VIDEO), (0x0f, AUDIO), (0x06, 0x102)]),
        &mut cc[1],
        None,
    ));
    out
}

/// (pid, pts, dts, payload) of a delivered PES.
type PesSummary = (u16, Option<i64>, Option<i64>, Vec<u8>);

fn pes_events(events: &[TsEvent]) -> Vec<PesSummary> {
    events
        .iter()
        .filter_map(|e| match e {
            TsEvent::Pes {
                pid,
                pts,
                dts,
                data,
                ..
            } => Some((*pid, *pts, *dts, data.to_vec())),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------

#[test]
fn crc32_mpeg2_check_value() {
    assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_e6e7);
    let s = pat(0x1000);
    assert_eq!(crc32_mpeg2(&s), 0);
}

#[test]
fn unwrap_picks_the_nearest_position() {
    assert_eq!(unwrap_near(5, None), 5);
    assert_eq!(unwrap_near(WRAP - 10, Some(20)), -10);
    assert_eq!(unwrap_near(20, Some(WRAP - 10)), WRAP + 20);
    assert_eq!(unwrap_near(30, Some(3 * WRAP + 10)), 3 * WRAP + 30);
    assert_eq!(unwrap_near(WRAP - 1, Some(2 * WRAP + 5)), 2 * WRAP - 1);
}

#[test]
fn program_tables_and_pes() {
    let mut cc = [0u8; 2];
    let mut ts = program(&mut cc);
    let (mut vcc, mut acc) = (0u8, 0u8);
    let video = vec![0u8, 0, 0, 1, 0x65, 1, 2, 3];
    // A random access point with a PCR.
    let mut af = vec![0x50];
    af.extend_from_slice(&[0, 0, 0, 0x7e, 0, 0]);
    ts.extend(packets(
        VIDEO,
        false,
        &pes(0xe0, Some(9000), Some(6000), &video, false),
        &mut vcc,
        Some(&af),
    ));
    // Audio with PES_packet_length: complete without waiting for the next start.
    let audio = vec![0xaa; 400];
    ts.extend(packets(
        AUDIO,
        false,
        &pes(0xc0, Some(7000), None, &audio, true),
        &mut acc,
        None,
    ));
    // The tables again (no new Streams event), then the next video PES.
    ts.extend(program(&mut cc));
    ts.extend(packets(
        VIDEO,
        false,
        &pes(0xe0, Some(12600), Some(9600), &video, false),
        &mut vcc,
        None,
    ));

    let mut d = TsDemuxer::new();
    let events = d.push(&ts);
    let expected_streams = vec![
        EsInfo {
            pid: VIDEO,
            kind: EsKind::H264,
        },
        EsInfo {
            pid: AUDIO,
            kind: EsKind::Aac,
        },
        EsInfo {
            pid: 0x102,
            kind: EsKind::Unsupported(0x06),
        },
    ];
    assert_eq!(events[0], TsEvent::Streams(expected_streams.clone()));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, TsEvent::Streams(_)))
            .count(),
        1
    );
    // Audio is complete at once. The last packet waits for the next sync byte to confirm
    // it, so the first video PES (complete when the second starts in that last packet)
    // comes out at flush, with the second.
    let pes = pes_events(&events);
    assert_eq!(pes, vec![(AUDIO, Some(7000), None, audio.clone())]);
    let rest = d.flush();
    assert_eq!(
        pes_events(&rest),
        vec![
            (VIDEO, Some(9000), Some(6000), video.clone()),
            (VIDEO, Some(12600), Some(9600), video)
        ]
    );
    assert!(matches!(
        rest.iter()
            .find(|e| matches!(e, TsEvent::Pes { pid: VIDEO, .. })),
        Some(TsEvent::Pes {
            random_access: true,
            ..
        })
    ));
    assert_eq!(d.last_pcr(), Some(0xfc));
    let s = d.stats();
    assert_eq!(s.packets as usize, ts.len() / PACKET_SIZE);
    assert_eq!(s.pes_packets, 3);
    assert_eq!(
        (s.continuity_errors, s.resyncs, s.pes_errors, s.psi_errors),
        (0, 0, 0, 0)
    );

    // A changed PMT (audio gone) is announced again.
    let mut d2 = TsDemuxer::new();
    let mut cc2 = [0u8; 2];
    let mut ts2 = program(&mut cc2);
    ts2.extend(packets(
        0x1000,
        true,
        &section(2, 1, &[0xe1, 0x00, 0xf0, 0, 0x1b, 0xe1, 0x00, 0xf0, 0]),
        &mut cc2[1],
        None,
    ));
    ts2.extend(packets(0, true, &pat(0x1000), &mut cc2[0], None));
    let streams: Vec<_> = d2
        .push(&ts2)
        .into_iter()
        .filter(|e| matches!(e, TsEvent::Streams(_)))
        .collect();
    assert_eq!(
        streams,
        vec![
            TsEvent::Streams(expected_streams),
            TsEvent::Streams(vec![EsInfo {
                pid: VIDEO,
                kind: EsKind::H264
            }])
        ]
    );
}

#[test]
fn bad_crc_is_ignored_and_counted() {
    let mut cc = 0u8;
    let mut section = pat(0x1000);
    let last = section.len() - 1;
    section[last] ^= 1;
    let mut ts = packets(0, true, &section, &mut cc, None);
    ts.extend(packets(0, true, &section, &mut cc, None));
    let mut d = TsDemuxer::new();
    assert!(d.push(&ts).is_empty());
    d.flush();
    assert_eq!(d.stats().psi_errors, 2);
    assert_eq!(d.pmt_pid, None);
}

#[test]
fn timestamps_unwrap_per_pid_across_the_wrap() {
    let mut cc = [0u8; 2];
    let mut ts = program(&mut cc);
    let (mut vcc, mut acc) = (0u8, 0u8);
    // Video starts just before the wrap, audio just after it: they are 190 ticks apart,
    // not 2^33.
    let frames = [
        (VIDEO, WRAP - 100),
        (AUDIO, 90),
        (VIDEO, WRAP + 3500),
        (AUDIO, 2000),
        (VIDEO, 7100),
        (VIDEO, 10_700),
    ];
    for (pid, t) in frames {
        let t = t.rem_euclid(WRAP);
        let (stream_id, counter) = if pid == VIDEO {
            (0xe0, &mut vcc)
        } else {
            (0xc0, &mut acc)
        };
        ts.extend(packets(
            pid,
            false,
            &pes(stream_id, Some(t), None, &[1, 2, 3], pid == AUDIO),
            counter,
            None,
        ));
    }
    let mut d = TsDemuxer::new();
    let mut events = d.push(&ts);
    events.extend(d.flush());
    let got: Vec<(u16, i64)> = pes_events(&events)
        .into_iter()
        .map(|(pid, pts, _, _)| (pid, pts.expect("pts")))
        .collect();
    // Whichever PID is delivered first anchors the others; all stay within a few
    // thousand ticks of each other, on the same side of the wrap.
    let want: Vec<(u16, i64)> = vec![
        (VIDEO, WRAP - 100),
        (AUDIO, WRAP + 90),
        (AUDIO, WRAP + 2000),
        (VIDEO, WRAP + 3500),
        (VIDEO, WRAP + 7100),
        (VIDEO, WRAP + 10_700),
    ];
    let mut got_sorted = got.clone();
    got_sorted.sort_unstable_by_key(|&(_, t)| t);
    let shift = got_sorted[0].1 - want[0].1;
    assert_eq!(shift.rem_euclid(WRAP), 0);
    let shifted: Vec<(u16, i64)> = want.iter().map(|&(p, t)| (p, t + shift)).collect();
    assert_eq!(got_sorted, shifted);
}

#[test]
fn oversized_pes_is_dropped_and_the_next_one_delivered() {
    let mut cc = [0u8; 2];
    let mut d = TsDemuxer::new();
    let mut events = d.push(&program(&mut cc));
    let mut vcc = 0u8;
    let big = vec![0x11u8; MAX_PES_SIZE + 1000];
    let ts = packets(
        VIDEO,
        false,
        &pes(0xe0, Some(1000), None, &big, false),
        &mut vcc,
        None,
    );
    // Fed in SRT-sized pieces; the buffer never holds more than the limit.
    for chunk in ts.chunks(1316) {
        events.extend(d.push(chunk));
        assert!(d.pes.values().all(|p| p.buf.len() <= MAX_PES_SIZE));
        assert!(d.pending.len() <= 2 * PACKET_SIZE);
    }
    events.extend(d.push(&packets(
        VIDEO,
        false,
        &pes(0xe0, Some(4600), None, &[9, 9], false),
        &mut vcc,
        None,
    )));
    events.extend(d.flush());
    let pes = pes_events(&events);
    assert_eq!(pes, vec![(VIDEO, Some(4600), None, vec![9, 9])]);
    assert_eq!(d.stats().pes_errors, 1);
}

#[test]
fn transport_error_and_bad_pes_header_drop_the_pes() {
    let mut cc = [0u8; 2];
    let mut ts = program(&mut cc);
    let mut vcc = 0u8;
    let mut first = packets(
        VIDEO,
        false,
        &pes(0xe0, Some(1000), None, &[7; 300], false),
        &mut vcc,
        None,
    );
    // transport_error_indicator on the second packet.
    first[PACKET_SIZE + 1] |= 0x80;
    ts.extend(first);
    // A PES without a start code.
    let mut bad = pes(0xe0, Some(4600), None, &[8; 10], false);
    bad[2] = 2;
    ts.extend(packets(VIDEO, false, &bad, &mut vcc, None));
    ts.extend(packets(
        VIDEO,
        false,
        &pes(0xe0, Some(8200), None, &[9; 10], false),
        &mut vcc,
        None,
    ));
    let mut d = TsDemuxer::new();
    let mut events = d.push(&ts);
    events.extend(d.flush());
    assert_eq!(
        pes_events(&events),
        vec![(VIDEO, Some(8200), None, vec![9; 10])]
    );
    let s = d.stats();
    assert_eq!(s.transport_errors, 1);
    assert_eq!(s.pes_errors, 2);
    // The packet with the error carried no counter the demuxer trusted.
    assert_eq!(s.continuity_errors, 1);
}

fn demux_all(chunks: &[&[u8]]) -> (Vec<TsEvent>, TsStats) {
    let mut d = TsDemuxer::new();
    let mut events = Vec::new();
    for c in chunks {
        events.extend(d.push(c));
    }
    events.extend(d.flush());
    (events, d.stats())
}

#[test]
fn capture_split_at_every_offset() {
    let whole = demux_all(&[FILE]);
    let pes = pes_events(&whole.0);
    assert!(
        pes.iter().filter(|p| p.0 == 0x100).count() == 20,
        "20 video PES"
    );
    assert!(pes.iter().any(|p| p.0 == 0x101), "audio PES");
    assert_eq!(whole.1.pes_errors, 0);
    assert_eq!(whole.1.continuity_errors, 0);
    // Every split point in two, and a few three-way splits.
    for at in 0..=FILE.len() {
        let (a, b) = FILE.split_at(at);
        let split = demux_all(&[a, b]);
        assert!(split == whole, "split at {at}");
    }
    for at in (0..FILE.len()).step_by(97) {
        let (a, rest) = FILE.split_at(at);
        let (b, c) = rest.split_at(rest.len() / 3);
        assert!(demux_all(&[a, b, c]) == whole, "split at {at}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Arbitrary bytes: no panic, bounded buffers.
    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..4000), split in 0usize..4000) {
        let mut d = TsDemuxer::new();
        let (a, b) = data.split_at(split.min(data.len()));
        d.push(a);
        prop_assert!(d.pending.len() <= 2 * PACKET_SIZE);
        d.push(b);
        prop_assert!(d.pending.len() <= 2 * PACKET_SIZE);
        d.flush();
    }

    /// The capture with bytes flipped, removed and inserted: no panic, and what comes
    /// out is bounded and well-formed.
    #[test]
    fn damaged_capture(
        edits in proptest::collection::vec((0usize..FILE.len(), any::<u8>(), 0u8..3), 1..20)
    ) {
        let mut data = FILE.to_vec();
        for (at, byte, op) in edits {
            let at = at.min(data.len().saturating_sub(1));
            match op {
                0 => data[at] = byte,
                1 => { data.remove(at); }
                _ => data.insert(at, byte),
            }
        }
        let (events, stats) = demux_all(&[&data]);
        prop_assert!(stats.packets as usize <= data.len() / PACKET_SIZE);
        for e in events {
            if let TsEvent::Pes { data, .. } = e {
                prop_assert!(data.len() <= MAX_PES_SIZE);
            }
        }
    }
}
