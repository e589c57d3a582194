//! The multivariant playlist renderer: a pure function from a [`Multivariant`] to text.
//!
//! Written by hand rather than with `m3u8-rs`'s writer, although that writer knows every
//! attribute used here (AVERAGE-BANDWIDTH, FRAME-RATE, CHANNELS), because:
//! - it writes FRAME-RATE with `f64`'s `Display` (`29.97`, `30`), and Apple asks for the
//!   value rounded to three decimals (`29.970`, `30.000`) [A 9.15];
//! - it would make `m3u8-rs` (with `nom` and `chrono`) a runtime dependency of the
//!   library for some thirty lines of output.
//!
//! The tests parse the output back with `m3u8-rs` and compare it field by field.
//!
//! URIs are relative to the multivariant playlist: `<rendition>/index.m3u8` (DESIGN.md).
use std::fmt::Write as _;

use super::model::{AudioRendition, Multivariant, Variant};

/// URI of a rendition's media playlist, relative to the multivariant playlist.
pub fn media_playlist_uri(rendition: &str) -> String {
    format!("{rendition}/index.m3u8")
}

/// Renders the multivariant playlist [S §4.4.6].
pub fn render_multivariant(m: &Multivariant) -> String {
    let mut out = String::with_capacity(256 + 192 * m.variants.len());
    out.push_str("#EXTM3U\n");
    if m.independent_segments {
        // [S §4.4.2.1, A 9.11]: applies to every media playlist.
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    if let Some(audio) = &m.audio {
        write_audio(&mut out, audio);
    }
    for variant in &m.variants {
        write_variant(&mut out, variant, m.audio.as_ref());
    }
    out
}

/// EXT-X-MEDIA for the audio rendition [S §4.4.6.1]. It is the only member of its group,
/// so it is the default, and DEFAULT=YES requires AUTOSELECT=YES.
fn write_audio(out: &mut String, audio: &AudioRendition) {
    let _ = write!(
        out,
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{}\",NAME=\"{}\"",
        audio.group_id, audio.name
    );
    if let Some(language) = &audio.language {
        let _ = write!(out, ",LANGUAGE=\"{language}\"");
    }
    // CHANNELS: the count of audio channels as a quoted string [S §4.4.6.1, A 9.14].
    let _ = writeln!(
        out,
        ",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"{}\",URI=\"{}\"",
        audio.channels,
        media_playlist_uri(&audio.name)
    );
}

/// EXT-X-STREAM-INF [S §4.4.6.2, A 9.1, 9.2]: peak and average bandwidth, the codecs of
/// the variant and of its audio group, resolution, frame rate and the audio group.
fn write_variant(out: &mut String, v: &Variant, audio: Option<&AudioRendition>) {
    let _ = write!(
        out,
        "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={}",
        v.bandwidth, v.average_bandwidth
    );
    if !v.codecs.is_empty() {
        let _ = write!(out, ",CODECS=\"{}\"", v.codecs.join(","));
    }
    if let Some((w, h)) = v.resolution {
        let _ = write!(out, ",RESOLUTION={w}x{h}");
    }
    if let Some(fps) = v.frame_rate {
        // Three decimals [S §4.4.6.2: "rounded to three decimal places"].
        let _ = write!(out, ",FRAME-RATE={fps:.3}");
    }
    if let Some(audio) = audio {
        let _ = write!(out, ",AUDIO=\"{}\"", audio.group_id);
    }
    out.push('\n');
    out.push_str(&media_playlist_uri(&v.name));
    out.push('\n');
}
