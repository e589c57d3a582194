//! Playlist snapshots and their rendered forms, cached.
//!
//! A [`Snapshot`] is one rendition's playlist at one instant. Its full text and its
//! delta-update text are rendered at most once each, on first request, and gzipped at
//! most once each: a thousand clients woken by the same part share one rendering and
//! one compression.
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;
use packager::playlist::{MediaPlaylist, RenderOptions, RenditionReport, render_media};

/// One rendition's playlist at one instant, with its rendition reports.
#[derive(Debug)]
pub struct Snapshot {
    pub playlist: MediaPlaylist,
    pub reports: Vec<RenditionReport>,
    /// When the store received it (Last-Modified of the playlist).
    pub updated: SystemTime,
    full: OnceLock<Arc<Rendered>>,
    delta: OnceLock<Arc<Rendered>>,
}

impl Snapshot {
    pub fn new(
        playlist: MediaPlaylist,
        reports: Vec<RenditionReport>,
        updated: SystemTime,
    ) -> Snapshot {
        Snapshot {
            playlist,
            reports,
            updated,
            full: OnceLock::new(),
            delta: OnceLock::new(),
        }
    }

    /// The playlist text: a Playlist Delta Update when `skip` [S §6.2.5.1] (the renderer
    /// falls back to the full playlist when nothing can be skipped), else the full one.
    pub fn rendered(&self, skip: bool) -> Arc<Rendered> {
        let cell = if skip { &self.delta } else { &self.full };
        cell.get_or_init(|| {
            let text = render_media(
                &self.playlist,
                &RenderOptions {
                    skip,
                    reports: &self.reports,
                },
            );
            Arc::new(Rendered::new(Bytes::from(text), self.updated))
        })
        .clone()
    }
}

/// A rendered playlist: its bytes, a strong ETag, and its gzip form made on demand.
#[derive(Debug)]
pub struct Rendered {
    pub body: Bytes,
    /// Quoted strong ETag of the identity encoding (a hash of the body).
    pub etag: String,
    pub modified: SystemTime,
    gzip: OnceLock<Option<Bytes>>,
}

impl Rendered {
    pub fn new(body: Bytes, modified: SystemTime) -> Rendered {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        body.hash(&mut h);
        Rendered {
            etag: format!("\"{:016x}\"", h.finish()),
            body,
            modified,
            gzip: OnceLock::new(),
        }
    }

    /// The gzip form [A 10.1], compressed once; `None` if compression failed (then the
    /// identity form is served).
    pub fn gzip(&self) -> Option<Bytes> {
        self.gzip
            .get_or_init(|| {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(self.body.len() / 3 + 32),
                    flate2::Compression::default(),
                );
                enc.write_all(&self.body).ok()?;
                enc.finish().ok().map(Bytes::from)
            })
            .clone()
    }

    /// The ETag of the gzip form: a different representation needs a different strong
    /// validator (RFC 9110 §8.8.3).
    pub fn gzip_etag(&self) -> String {
        let inner = self.etag.trim_matches('"');
        format!("\"{inner}-gz\"")
    }
}
