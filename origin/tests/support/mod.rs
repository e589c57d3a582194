//! The in-process harness: a store fed by a real `packager::Program` from the synthetic
//! publisher, the origin serving it on 127.0.0.1:0, and a reqwest client.
//!
//! Frames are pushed either up front (`prefill`), step by step (`Harness::push_until`),
//! or in real time by a task (`Harness::go_live`). The time each part was applied is
//! recorded (just before the apply that makes it servable), so tests can check that a
//! blocked request was answered promptly after its part existed.
#![allow(dead_code)]

pub mod synth;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use media::StreamEvent;
use origin::{HttpConfig, HttpState, OriginMetrics, Store, StoreConfig, StreamWriter};
use packager::{Output, Program};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use synth::Synth;

pub const STREAM: &str = "live/test";

/// The program, its writer and the publisher.
pub struct Feed {
    pub program: Program,
    pub writer: StreamWriter,
    pub synth: Synth,
    /// When each (rendition, msn, part) was applied.
    pub published: HashMap<(String, u64, u32), Instant>,
    /// When each (rendition, msn) segment was applied.
    pub segments: HashMap<(String, u64), Instant>,
}

impl Feed {
    pub fn push(&mut self, event: &StreamEvent) {
        let out = self.program.push(event);
        let now = Instant::now();
        for o in &out {
            match o {
                Output::Part {
                    rendition,
                    msn,
                    index,
                    ..
                } => {
                    self.published
                        .insert((rendition.clone(), *msn, *index), now);
                }
                Output::Segment { rendition, msn, .. } => {
                    self.segments.insert((rendition.clone(), *msn), now);
                }
                _ => {}
            }
        }
        self.writer.apply(&self.program, &out);
    }

    pub fn push_until(&mut self, media: Duration) {
        for e in self.synth.frames_until(media) {
            self.push(&e);
        }
    }
}

pub struct Options {
    pub http: HttpConfig,
    pub store: StoreConfig,
    /// Media pushed before the server starts, in seconds.
    pub prefill: f64,
    pub audio: bool,
    pub extra_routes: Option<axum::Router>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            http: HttpConfig::default(),
            store: StoreConfig::default(),
            prefill: 8.0,
            audio: true,
            extra_routes: None,
        }
    }
}

pub struct Harness {
    pub base: String,
    pub addr: SocketAddr,
    pub store: Store,
    pub metrics: OriginMetrics,
    pub feed: Arc<Mutex<Feed>>,
    pub client: reqwest::Client,
    pub shutdown: CancellationToken,
    live: Option<(CancellationToken, JoinHandle<()>)>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl Harness {
    pub async fn start(opts: Options) -> Harness {
        let store = Store::new(opts.store.clone());
        let metrics = OriginMetrics::new();
        let synth = Synth::new(opts.audio);
        let mut feed = Feed {
            program: Program::new(synth::packager_config()),
            writer: store.writer(STREAM),
            synth,
            published: HashMap::new(),
            segments: HashMap::new(),
        };
        let tracks = feed.synth.tracks();
        feed.push(&tracks);
        feed.push_until(Duration::from_secs_f64(opts.prefill));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let mut state = HttpState::new(store.clone(), opts.http, metrics.clone());
        state.extra_routes = opts.extra_routes;
        let server = tokio::spawn(origin::serve(listener, state, shutdown.clone()));
        Harness {
            base: format!("http://{addr}"),
            addr,
            store,
            metrics,
            feed: Arc::new(Mutex::new(feed)),
            client: reqwest::Client::builder().build().expect("client"),
            shutdown,
            live: None,
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{STREAM}/{path}", self.base)
    }

    pub fn push_until(&self, media: f64) {
        self.feed
            .lock()
            .expect("feed")
            .push_until(Duration::from_secs_f64(media));
    }

    pub fn push(&self, event: &StreamEvent) {
        self.feed.lock().expect("feed").push(event);
    }

    /// Media time already pushed.
    pub fn position(&self) -> f64 {
        self.feed
            .lock()
            .expect("feed")
            .synth
            .position()
            .as_secs_f64()
    }

    /// Pushes frames as media time passes in real time, from the current position.
    pub fn go_live(&mut self) {
        let stop = CancellationToken::new();
        let feed = self.feed.clone();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let from = feed.lock().expect("feed").synth.position();
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = token.cancelled() => return,
                }
                let to = from + start.elapsed();
                feed.lock().expect("feed").push_until(to);
            }
        });
        self.live = Some((stop, task));
    }

    /// Stops the real-time publisher (frames stop: a stalled publisher).
    pub async fn stop_live(&mut self) {
        if let Some((stop, task)) = self.live.take() {
            stop.cancel();
            let _ = task.await;
        }
    }

    /// When the part was applied, if it was.
    pub fn published(&self, rendition: &str, msn: u64, part: u32) -> Option<Instant> {
        self.feed
            .lock()
            .expect("feed")
            .published
            .get(&(rendition.to_owned(), msn, part))
            .copied()
    }

    pub fn playlist(&self, rendition: &str) -> packager::playlist::MediaPlaylist {
        self.store.playlist(STREAM, rendition).expect("playlist")
    }

    /// The preload hint of a rendition's current playlist.
    pub fn hint(&self, rendition: &str) -> (u64, u32) {
        packager::playlist::preload_hint(&self.playlist(rendition)).expect("live playlist")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// Polls `f` every 10 ms until it holds, for at most `limit`.
    pub async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + limit;
        loop {
            if f() {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn stop(mut self) {
        self.stop_live().await;
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let r = tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("server stops within the drain timeout");
            r.expect("server task").expect("serve result");
        }
    }
}

/// Sends raw bytes on a fresh connection and returns everything the server sent back
/// until it closed the connection or `limit` passed.
pub async fn raw(addr: SocketAddr, request: &[u8], limit: Duration) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, s.read_to_end(&mut out)).await;
    out
}

/// The status code of a raw HTTP/1.1 response.
pub fn raw_status(response: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(response.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}
