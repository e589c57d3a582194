//! LL-HLS playlists: the model and its pure renderers.
//!
//! - [`MediaPlaylist`] and friends: plain data, one snapshot per rendition.
//! - [`render_media`]: full playlist or Playlist Delta Update; [`render_multivariant`].
//! - [`last_part`], [`preload_hint`], [`request_satisfied`]: the one definition of the
//!   playlist's position shared by rendition reports, preload hints and blocking reload.
mod media;
mod model;
mod multivariant;

pub use media::{
    RenderOptions, VERSION, VERSION_DELTA, format_date_time, init_uri, last_part, part_uri,
    preload_hint, render_media, rendition_report, request_satisfied, segment_uri, skip_boundary,
    skipped_segments,
};
pub use model::*;
pub use multivariant::{media_playlist_uri, render_multivariant};
