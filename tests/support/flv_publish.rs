//! A publisher written with the crate's own sans-IO RTMP client: FLV tags read from a
//! file (what ffmpeg writes), sent at real time over a real TCP socket, optionally
//! corrupted on the way. Used where ffmpeg cannot do what a test needs: damage the coded
//! pictures of a stretch while keeping the stream well formed (NAL lengths intact), as
//! a broken encoder or a lossy link behind a transcoder would.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use ingest::rtmp::client::{ClientEvent, ClientSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One FLV tag: 8 audio, 9 video, 18 script data.
#[derive(Clone, Debug)]
pub struct Tag {
    pub kind: u8,
    pub timestamp: u32,
    pub data: Bytes,
}

/// The tags of an FLV file.
pub fn read_flv(path: &Path) -> Vec<Tag> {
    let bytes = std::fs::read(path).expect("read the FLV file");
    assert!(bytes.starts_with(b"FLV"), "not an FLV file");
    let header = u32::from_be_bytes(bytes[5..9].try_into().expect("4 bytes")) as usize;
    let mut pos = header + 4;
    let mut tags = Vec::new();
    while pos + 11 <= bytes.len() {
        let kind = bytes[pos] & 0x1f;
        let size = u32::from_be_bytes([0, bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]) as usize;
        let timestamp = u32::from_be_bytes([
            bytes[pos + 7],
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
        ]);
        let start = pos + 11;
        if start + size > bytes.len() {
            break;
        }
        tags.push(Tag {
            kind,
            timestamp,
            data: Bytes::copy_from_slice(&bytes[start..start + size]),
        });
        pos = start + size + 4;
    }
    tags
}

/// Overwrites the slice data of every coded picture in an AVC video tag (a NALU packet)
/// with a pseudo-random pattern, keeping each NAL unit's length and header byte: the
/// stream stays parseable (every NAL unit where its length says) and its pictures,
/// slice headers included, are garbage to a decoder.
pub fn corrupt_avc_tag(data: &Bytes, seed: u32) -> Bytes {
    let mut out = data.to_vec();
    if out.len() < 5 || out[0] & 0x0f != 7 || out[1] != 1 {
        return data.clone();
    }
    let mut pos = 5;
    let mut x = seed | 1;
    while pos + 4 <= out.len() {
        let len = u32::from_be_bytes(out[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let nal = pos + 4;
        if nal + len > out.len() {
            break;
        }
        let kind = out[nal] & 0x1f;
        if matches!(kind, 1 | 5) {
            for b in out[nal + 1.min(len)..nal + len].iter_mut() {
                // xorshift32
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
        }
        pos = nal + len;
    }
    Bytes::from(out)
}

/// Drives the client's handshake, connect and publish over `socket` until the server
/// says `NetStream.Publish.Start`.
pub async fn start_publishing(socket: &mut TcpStream, client: &mut ClientSession) {
    socket
        .write_all(&client.start().expect("C0 C1"))
        .await
        .expect("write C0 C1");
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let n = tokio::time::timeout_at(deadline, socket.read(&mut buf))
            .await
            .expect("publish accepted within 5 s")
            .expect("read from the server");
        assert!(
            n > 0,
            "the server closed the connection before the publish started"
        );
        for event in client.handle_input(&buf[..n]).expect("valid server bytes") {
            match event {
                ClientEvent::Send(bytes) => socket.write_all(&bytes).await.expect("write"),
                ClientEvent::Connected => {}
                ClientEvent::Publishing => return,
                ClientEvent::Rejected { code, description } => {
                    panic!("publish rejected: {code}: {description}")
                }
            }
        }
    }
}

/// Publishes `tags` to `addr` as `app/name` at real time (each tag sent when its
/// timestamp is due), corrupting the video tags for which `corrupt(timestamp_ms)` holds.
/// Returns when every tag was sent (the connection is then closed).
pub async fn publish_tags(
    addr: std::net::SocketAddr,
    app: &str,
    name: &str,
    tags: Vec<Tag>,
    corrupt: impl Fn(u32) -> bool,
) {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    let mut client = ClientSession::new(app, format!("rtmp://{addr}/{app}"), name);
    start_publishing(&mut socket, &mut client).await;
    let (mut reader, mut writer) = socket.into_split();
    // Whatever the server sends from now on (acknowledgements) is read and dropped.
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        while matches!(reader.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    let start = tokio::time::Instant::now();
    for (i, tag) in tags.into_iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_millis(u64::from(tag.timestamp))).await;
        let bytes = match tag.kind {
            9 => {
                let data = if corrupt(tag.timestamp) {
                    corrupt_avc_tag(&tag.data, i as u32)
                } else {
                    tag.data
                };
                client.send_video(tag.timestamp, data)
            }
            8 => client.send_audio(tag.timestamp, tag.data),
            _ => continue,
        }
        .expect("client encodes the tag");
        if writer.write_all(&bytes).await.is_err() {
            break;
        }
    }
    drain.abort();
}
