//! The RTMP handshake, both sides, without I/O.
//!
//! Plain (version 3) handshake: `C0 C1 -> S0 S1 S2 -> C2`. Each of C1, S1, C2 and S2 is
//! 1536 bytes: a 4-byte time, 4 bytes that the plain handshake leaves at zero, and 1528
//! random bytes.
//!
//! Server side ([`ServerHandshake`]): once C0 and C1 have arrived it answers S0, S1 and S2
//! in one go, S2 being an exact echo of C1. Clients that send a "digest" style C1 (ffmpeg,
//! Flash, some encoders put a version in bytes 4..8 and an HMAC digest in the random part)
//! are accepted as they are: their digest is not checked, and our S1 carries zeros in
//! bytes 4..8, which tells a digest-aware client that the server speaks the plain
//! handshake. ffmpeg (`rtmpproto.c`) only validates the server's digest when it is
//! *playing* and S1's version byte is at least 3; librtmp (OBS) and GStreamer's rtmp2
//! compare S2 with their C1 at most, which the echo satisfies. Publishers therefore
//! all accept the plain S1.
//!
//! C2 is read and discarded: it should echo S1, but it is not validated (some clients
//! fill it differently, and doing so also lets tests replay a captured client byte stream
//! against a server whose S1 is random).
//!
//! Client side ([`ClientHandshake`]): sends C0 C1, waits for S0 S1 S2, answers C2 (an echo
//! of S1). S2 is not validated either.
use bytes::{BufMut, Bytes, BytesMut};

use crate::{Error, Result};

/// The only RTMP version in use (C0 and S0).
pub const RTMP_VERSION: u8 = 3;
/// Size of C1, C2, S1 and S2.
pub const HANDSHAKE_SIZE: usize = 1536;

/// What a handshake step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeStep {
    /// Write these bytes to the peer; the handshake is not finished yet.
    Send(Bytes),
    /// The handshake is complete; input after it belongs to the chunk stream. The bytes
    /// (possibly empty) must still be written to the peer first.
    Done(Bytes),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    AwaitC0C1,
    AwaitC2,
    Done,
}

/// Server side of the handshake.
#[derive(Debug)]
pub struct ServerHandshake {
    state: ServerState,
}

impl Default for ServerHandshake {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerHandshake {
    pub fn new() -> Self {
        ServerHandshake {
            state: ServerState::AwaitC0C1,
        }
    }

    /// Whether C2 has been read.
    pub fn is_done(&self) -> bool {
        self.state == ServerState::Done
    }

    /// Consumes handshake bytes from `input`. `Ok(None)`: more bytes are needed (nothing
    /// was consumed). Bytes after C2 are left in `input`.
    pub fn feed(&mut self, input: &mut BytesMut) -> Result<Option<HandshakeStep>> {
        match self.state {
            ServerState::AwaitC0C1 => {
                let Some(&version) = input.first() else {
                    return Ok(None);
                };
                // Check C0 as soon as it arrives: an HTTP request or a TLS hello is
                // refused without waiting for 1536 more bytes.
                if version != RTMP_VERSION {
                    return Err(Error::HandshakeVersion { version });
                }
                if input.len() < 1 + HANDSHAKE_SIZE {
                    return Ok(None);
                }
                let c0c1 = input.split_to(1 + HANDSHAKE_SIZE);
                let c1 = &c0c1[1..];
                let mut out = BytesMut::with_capacity(1 + 2 * HANDSHAKE_SIZE);
                out.put_u8(RTMP_VERSION);
                put_random_packet(&mut out, 0);
                // S2: the echo of C1.
                out.extend_from_slice(c1);
                self.state = ServerState::AwaitC2;
                Ok(Some(HandshakeStep::Send(out.freeze())))
            }
            ServerState::AwaitC2 => {
                if input.len() < HANDSHAKE_SIZE {
                    return Ok(None);
                }
                let _c2 = input.split_to(HANDSHAKE_SIZE);
                self.state = ServerState::Done;
                Ok(Some(HandshakeStep::Done(Bytes::new())))
            }
            ServerState::Done => Err(Error::Handshake {
                reason: "fed after the handshake completed",
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Start,
    AwaitS0S1S2,
    Done,
}

/// Client side of the handshake.
#[derive(Debug)]
pub struct ClientHandshake {
    state: ClientState,
}

impl Default for ClientHandshake {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientHandshake {
    pub fn new() -> Self {
        ClientHandshake {
            state: ClientState::Start,
        }
    }

    /// C0 and C1, the first bytes a client writes. Call once.
    pub fn start(&mut self) -> Result<Bytes> {
        if self.state != ClientState::Start {
            return Err(Error::Handshake {
                reason: "client handshake started twice",
            });
        }
        let mut out = BytesMut::with_capacity(1 + HANDSHAKE_SIZE);
        out.put_u8(RTMP_VERSION);
        put_random_packet(&mut out, 0);
        self.state = ClientState::AwaitS0S1S2;
        Ok(out.freeze())
    }

    pub fn is_done(&self) -> bool {
        self.state == ClientState::Done
    }

    /// Consumes S0 S1 S2 from `input`; `Ok(None)`: more bytes needed. On completion it
    /// returns [`HandshakeStep::Done`] with C2 to write.
    pub fn feed(&mut self, input: &mut BytesMut) -> Result<Option<HandshakeStep>> {
        match self.state {
            ClientState::Start => Err(Error::Handshake {
                reason: "client handshake fed before start",
            }),
            ClientState::AwaitS0S1S2 => {
                let Some(&version) = input.first() else {
                    return Ok(None);
                };
                if version != RTMP_VERSION {
                    return Err(Error::HandshakeVersion { version });
                }
                if input.len() < 1 + 2 * HANDSHAKE_SIZE {
                    return Ok(None);
                }
                let s = input.split_to(1 + 2 * HANDSHAKE_SIZE);
                let s1 = &s[1..1 + HANDSHAKE_SIZE];
                self.state = ClientState::Done;
                Ok(Some(HandshakeStep::Done(Bytes::copy_from_slice(s1))))
            }
            ClientState::Done => Err(Error::Handshake {
                reason: "fed after the handshake completed",
            }),
        }
    }
}

/// Time (4 bytes), zero (4 bytes), random (1528 bytes).
fn put_random_packet(out: &mut BytesMut, time: u32) {
    out.put_u32(time);
    out.put_u32(0);
    let mut random = [0u8; HANDSHAKE_SIZE - 8];
    rand::fill(&mut random[..]);
    out.extend_from_slice(&random);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c0c1() -> Vec<u8> {
        let mut v = vec![RTMP_VERSION];
        // A digest-style C1 as ffmpeg sends it: a client version in bytes 4..8.
        v.extend_from_slice(&[0, 0, 0, 0, 9, 0, 124, 2]);
        v.extend((0..HANDSHAKE_SIZE - 8).map(|i| (i * 7 % 251) as u8));
        v
    }

    #[test]
    fn server_answers_s0_s1_s2_echoing_c1_at_every_split() {
        let mut stream = c0c1();
        stream.extend(std::iter::repeat_n(0xAB, HANDSHAKE_SIZE)); // C2
        stream.extend_from_slice(b"chunk");
        for split in 0..=stream.len() {
            let mut hs = ServerHandshake::new();
            let mut buf = BytesMut::new();
            let mut sent = Vec::new();
            let mut done = false;
            for part in [&stream[..split], &stream[split..]] {
                buf.extend_from_slice(part);
                while !done {
                    match hs.feed(&mut buf).unwrap() {
                        None => break,
                        Some(HandshakeStep::Send(b)) => sent.push(b),
                        Some(HandshakeStep::Done(b)) => {
                            assert!(b.is_empty());
                            done = true;
                        }
                    }
                }
            }
            assert!(done && hs.is_done(), "split {split}");
            assert_eq!(&buf[..], b"chunk");
            assert_eq!(sent.len(), 1);
            let s = &sent[0];
            assert_eq!(s.len(), 1 + 2 * HANDSHAKE_SIZE);
            assert_eq!(s[0], 3);
            assert_eq!(&s[5..9], &[0, 0, 0, 0], "plain S1: zero version field");
            assert_eq!(&s[1 + HANDSHAKE_SIZE..], &stream[1..1 + HANDSHAKE_SIZE]);
        }
    }

    #[test]
    fn server_rejects_other_versions_at_once() {
        for version in [0u8, 6, b'G', 0x16] {
            let mut hs = ServerHandshake::new();
            let mut buf = BytesMut::from(&[version][..]);
            match hs.feed(&mut buf) {
                Err(Error::HandshakeVersion { version: v }) => assert_eq!(v, version),
                other => panic!("version {version}: {other:?}"),
            }
        }
    }

    #[test]
    fn client_and_server_complete() {
        let mut client = ClientHandshake::new();
        let mut server = ServerHandshake::new();
        let mut to_server = BytesMut::from(&client.start().unwrap()[..]);
        let Some(HandshakeStep::Send(s0s1s2)) = server.feed(&mut to_server).unwrap() else {
            panic!("server did not answer C0C1");
        };
        let mut to_client = BytesMut::from(&s0s1s2[..]);
        let Some(HandshakeStep::Done(c2)) = client.feed(&mut to_client).unwrap() else {
            panic!("client did not finish");
        };
        assert_eq!(&c2[..], &s0s1s2[1..1 + HANDSHAKE_SIZE], "C2 echoes S1");
        to_server.extend_from_slice(&c2);
        assert!(matches!(
            server.feed(&mut to_server).unwrap(),
            Some(HandshakeStep::Done(_))
        ));
        assert!(server.is_done() && client.is_done());
        assert!(client.start().is_err());
    }

    #[test]
    fn client_rejects_bad_s0() {
        let mut client = ClientHandshake::new();
        client.start().unwrap();
        let mut buf = BytesMut::from(&[0x48u8, 0x54][..]);
        assert!(matches!(
            client.feed(&mut buf),
            Err(Error::HandshakeVersion { version: 0x48 })
        ));
    }
}
