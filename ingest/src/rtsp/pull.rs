//! The pull tasks: one per `[[pull]]` entry, each a loop of RTSP sessions with a
//! reconnect backoff (see the module docs of [`crate::rtsp`]).
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use media::Codec;
use media::demand::{Demand, DemandWatch};
use media::hub::{Hub, Publisher, PublisherInfo};
use retina::client::{PlayOptions, Session, SessionOptions, SetupOptions};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::rtsp::convert::{Converter, RtpTime};
use crate::rtsp::{
    MEDIA_TIMEOUT, PROTOCOL, PullConfig, PullCounters, PullStatus, STEP_TIMEOUT, Target, Transport,
};
use crate::{Error, Result};

/// First reconnect delay.
pub const BACKOFF_START: Duration = Duration::from_millis(250);
/// Longest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Failures of one pull are logged at most once per this period (the first of a streak
/// always is; the next line says how many were not).
const FAILURE_LOG_PERIOD: Duration = Duration::from_secs(30);

/// Runs every pull until `shutdown` is cancelled, then ends their sessions (their
/// streams end) and returns once every task has stopped. Entries are expected to be
/// valid (the config checks them); one that is not is logged and skipped.
pub async fn run(
    hub: Hub,
    pulls: Vec<PullConfig>,
    demand: Demand,
    status: PullStatus,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    for pull in pulls {
        let target = match pull.target() {
            Ok(target) => target,
            Err(e) => {
                warn!(stream = %pull.name, key = e.key, reason = %e.reason, "rtsp pull skipped: invalid entry");
                continue;
            }
        };
        let watch = pull.on_demand.then(|| demand.register(&pull.name));
        let task = PullTask {
            counters: status.counters(&pull.name),
            hub: hub.clone(),
            shown: target.url.to_string(),
            target,
            pull,
            watch,
        };
        let span = info_span!("rtsp", stream = %task.pull.name, url = %task.shown);
        tracker.spawn(task.run(shutdown.clone()).instrument(span));
    }
    tracker.close();
    tracker.wait().await;
}

/// Why a session ended without an error.
#[derive(Debug)]
enum Ended {
    Shutdown,
    /// An on-demand pull nobody watched for its idle time.
    Idle,
    /// Another publisher took the stream name.
    TakenOver,
    /// The camera ended the presentation.
    EndOfStream,
}

struct PullTask {
    pull: PullConfig,
    target: Target,
    /// The URL without credentials, for logs and errors.
    shown: String,
    hub: Hub,
    counters: Arc<PullCounters>,
    watch: Option<DemandWatch>,
}

impl PullTask {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = BACKOFF_START;
        let mut failures = FailureLog::default();
        // Whether the next session is a reconnect (the previous one failed or was lost).
        let mut retry = false;
        loop {
            if let Some(watch) = self.watch.as_mut()
                && !watch.wanted(self.pull.idle())
            {
                if retry {
                    debug!("rtsp pull idle: nobody is watching");
                }
                retry = false;
                backoff = BACKOFF_START;
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = watch.requested() => info!("rtsp pull on demand: starting"),
                }
            }
            if retry {
                self.counters.reconnected();
            }
            let mut session = SessionRun::default();
            let ended = self.session(&shutdown, &mut session).await;
            self.counters.set_up(false);
            if session
                .published
                .is_some_and(|at| at.elapsed() >= Duration::from_secs(1))
            {
                backoff = BACKOFF_START;
            }
            match ended {
                Ok(Ended::Shutdown) => {
                    info!("rtsp pull stopped: shutting down");
                    return;
                }
                Ok(Ended::Idle) => {
                    info!(
                        idle_ms = self.pull.on_demand_idle_ms,
                        "rtsp pull stopped: no viewer"
                    );
                    retry = false;
                    continue;
                }
                Ok(Ended::TakenOver) => {
                    warn!(
                        "rtsp pull lost its stream name to another publisher; waiting for it to end"
                    );
                }
                Ok(Ended::EndOfStream) => {
                    failures.log("the camera ended the stream");
                }
                Err(error) => failures.log(&error.to_string()),
            }
            if session.published.is_some() {
                failures.reset_streak();
            }
            retry = true;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// One RTSP session: connect, play, publish until it ends.
    async fn session(
        &mut self,
        shutdown: &CancellationToken,
        run: &mut SessionRun,
    ) -> Result<Ended> {
        // Another publisher (an RTMP push of the same name, say) has the name: leave it
        // alone rather than take it over, and look again after the backoff without
        // bothering the camera.
        self.name_free()?;
        let options = SessionOptions::default()
            .creds(self.target.credentials.clone())
            .user_agent(format!("ferrocast/{}", env!("CARGO_PKG_VERSION")));
        let mut described = tokio::select! {
            () = shutdown.cancelled() => return Ok(Ended::Shutdown),
            r = self.step("DESCRIBE", Session::describe(self.target.url.clone(), options)) => r?,
        };
        let mut video = None;
        let mut audio = None;
        for (i, s) in described.streams().iter().enumerate() {
            match (s.media(), s.encoding_name()) {
                ("video", "h264" | "h265") if video.is_none() => video = Some(i),
                ("audio", "mpeg4-generic") if audio.is_none() => audio = Some(i),
                (media, encoding) => {
                    debug!(stream_index = i, media, encoding, "rtsp stream left out")
                }
            }
        }
        if video.is_none() && audio.is_none() {
            return Err(self
                .unusable("no H.264/H.265 video or AAC audio stream in the presentation".into()));
        }
        let transport = match self.pull.transport {
            Transport::Tcp => retina::client::Transport::Tcp(Default::default()),
            Transport::Udp => retina::client::Transport::Udp(Default::default()),
        };
        for i in [video, audio].into_iter().flatten() {
            let setup = SetupOptions::default()
                .transport(transport.clone())
                .frame_format(FrameFormat::MP4);
            tokio::select! {
                () = shutdown.cancelled() => return Ok(Ended::Shutdown),
                r = self.step("SETUP", described.setup(i, setup)) => r?,
            }
        }
        let mut converter = Converter::new(video.is_some(), audio.is_some());
        // Parameters from the SDP, when it has them (the video's may come with the first
        // frame instead).
        for (i, s) in described.streams().iter().enumerate() {
            if Some(i) == video || Some(i) == audio {
                let _ = self.apply_parameters(&mut converter, s.parameters(), Some(i) == video)?;
            }
        }
        let play = PlayOptions::default()
            .initial_timestamp(retina::client::InitialTimestampPolicy::Permissive);
        let playing = tokio::select! {
            () = shutdown.cancelled() => return Ok(Ended::Shutdown),
            r = self.step("PLAY", described.play(play)) => r?,
        };
        let mut demuxed = playing.demuxed().map_err(|e| self.rtsp_error(e))?;
        info!(
            video = video.is_some(),
            audio = audio.is_some(),
            transport = ?self.pull.transport,
            "rtsp session playing"
        );
        let mut publisher: Option<Publisher> = None;
        let idle = self.pull.idle();
        loop {
            let item = tokio::select! {
                () = shutdown.cancelled() => return Ok(Ended::Shutdown),
                () = taken_over(publisher.as_ref()) => return Ok(Ended::TakenOver),
                () = idle_watch(self.watch.as_mut(), idle) => return Ok(Ended::Idle),
                item = tokio::time::timeout(MEDIA_TIMEOUT, demuxed.next()) => item,
            };
            let item = match item {
                Err(_) => {
                    return Err(
                        self.unusable(format!("no media for {} s", MEDIA_TIMEOUT.as_secs()))
                    );
                }
                Ok(None) => return Ok(Ended::EndOfStream),
                Ok(Some(Err(e))) => return Err(self.rtsp_error(e)),
                Ok(Some(Ok(item))) => item,
            };
            let received = SystemTime::now();
            let events = match item {
                CodecItem::VideoFrame(frame) if Some(frame.stream_id()) == video => {
                    let mut events = Vec::new();
                    if frame.has_new_parameters() {
                        let params = demuxed
                            .streams()
                            .get(frame.stream_id())
                            .and_then(|s| s.parameters());
                        events = self.apply_parameters(&mut converter, params, true)?;
                    }
                    let time = RtpTime {
                        elapsed: frame.timestamp().elapsed(),
                        clock_rate: frame.timestamp().clock_rate().get(),
                    };
                    let keyframe = frame.is_random_access_point();
                    tracing::trace!(
                        random_access = keyframe,
                        elapsed = time.elapsed,
                        bytes = frame.data().len(),
                        loss = frame.loss(),
                        "rtsp video frame"
                    );
                    let data = Bytes::from(frame.into_data());
                    events.extend(converter.video(time, keyframe, data, received)?);
                    events
                }
                CodecItem::AudioFrame(frame) if Some(frame.stream_id()) == audio => {
                    let time = RtpTime {
                        elapsed: frame.timestamp().elapsed(),
                        clock_rate: frame.timestamp().clock_rate().get(),
                    };
                    converter.audio(time, Bytes::copy_from_slice(frame.data()), received)?
                }
                _ => continue,
            };
            if events.is_empty() {
                continue;
            }
            let publisher = match &publisher {
                Some(p) => p,
                None => publisher.insert(self.publish()?),
            };
            for event in events {
                if let media::StreamEvent::Frame(f) = &event {
                    publisher.add_bytes(f.data.len() as u64);
                }
                publisher.send(event);
            }
            if run.published.is_none() {
                run.published = Some(Instant::now());
                self.counters.set_up(true);
                info!(stream = %self.pull.name, "rtsp pull publishing");
            }
        }
    }

    /// Fails when another publisher has the stream name.
    fn name_free(&self) -> Result<()> {
        match self.hub.stream(&self.pull.name) {
            Some(other) => Err(self.unusable(format!(
                "stream name {} is live from another publisher ({} {})",
                self.pull.name, other.protocol, other.peer
            ))),
            None => Ok(()),
        }
    }

    /// Claims the stream name on the hub (unless another publisher has it).
    fn publish(&self) -> Result<Publisher> {
        self.name_free()?;
        let peer = self.peer();
        self.hub
            .publish(
                &self.pull.name,
                PublisherInfo {
                    protocol: PROTOCOL,
                    peer,
                },
            )
            .map_err(|busy| self.unusable(busy.to_string()))
    }

    /// The camera's address for the hub's snapshots: the URL's host when it is an IP
    /// (a name would need a lookup that retina already did), else unspecified.
    fn peer(&self) -> SocketAddr {
        let url = &self.target.url;
        let port = url.port().unwrap_or(554);
        // rtsp is not a "special" scheme to the URL standard: its host is opaque text.
        let ip = url
            .host_str()
            .and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse().ok())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        SocketAddr::new(ip, port)
    }

    /// Hands a stream's parameters to the converter.
    fn apply_parameters(
        &self,
        converter: &mut Converter,
        params: Option<ParametersRef<'_>>,
        is_video: bool,
    ) -> Result<Vec<media::StreamEvent>> {
        match params {
            Some(ParametersRef::Video(v)) if is_video => {
                let record = Bytes::copy_from_slice(v.extra_data());
                let codec = if v.rfc6381_codec().starts_with("avc1") {
                    Codec::h264(record)?
                } else {
                    Codec::h265(record)?
                };
                Ok(converter.set_video_codec(codec))
            }
            Some(ParametersRef::Audio(a)) if !is_video => {
                let codec = Codec::aac(Bytes::copy_from_slice(a.extra_data()))?;
                Ok(converter.set_audio_codec(codec))
            }
            _ => Ok(Vec::new()),
        }
    }

    async fn step<T>(
        &self,
        what: &'static str,
        fut: impl Future<Output = Result<T, retina::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(STEP_TIMEOUT, fut).await {
            Ok(r) => r.map_err(|e| self.rtsp_error(e)),
            Err(_) => Err(self.unusable(format!(
                "no answer to {what} within {} s",
                STEP_TIMEOUT.as_secs()
            ))),
        }
    }

    fn rtsp_error(&self, source: retina::Error) -> Error {
        Error::Rtsp {
            url: self.shown.clone(),
            source,
        }
    }

    fn unusable(&self, reason: String) -> Error {
        Error::RtspSession {
            url: self.shown.clone(),
            reason,
        }
    }
}

/// What one session reached.
#[derive(Default)]
struct SessionRun {
    /// When it first published media.
    published: Option<Instant>,
}

/// Resolves when `publisher` has been evicted by a takeover; never without one.
async fn taken_over(publisher: Option<&Publisher>) {
    match publisher {
        Some(publisher) => publisher.taken_over().await,
        None => std::future::pending().await,
    }
}

/// Resolves when an on-demand pull has had no request for `idle`; never for others.
async fn idle_watch(watch: Option<&mut DemandWatch>, idle: Duration) {
    match watch {
        Some(watch) => watch.idle(idle).await,
        None => std::future::pending().await,
    }
}

/// Rate-limited failure logging: the first failure of a streak is logged, then at most
/// one line per [`FAILURE_LOG_PERIOD`] with the count of those left out.
#[derive(Default)]
struct FailureLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl FailureLog {
    fn log(&mut self, reason: &str) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now - last < FAILURE_LOG_PERIOD)
        {
            self.suppressed += 1;
            debug!(%reason, "rtsp pull failed; reconnecting");
            return;
        }
        warn!(%reason, suppressed = self.suppressed, "rtsp pull failed; reconnecting");
        self.last = Some(now);
        self.suppressed = 0;
    }

    /// A session worked: the next failure starts a new streak and is logged.
    fn reset_streak(&mut self) {
        self.last = None;
        self.suppressed = 0;
    }
}
