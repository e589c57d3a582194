//! Hub names of transcoded renditions.
//!
//! A ladder publishes each rung of stream `live/alice` as its own hub stream named
//! `live/alice@720p`: the hub's fan-out, queues and snapshots work for rungs as for any
//! stream, and the packaging driver attaches every `<source>@<rung>` stream to the
//! source's program as rendition `<rung>`. `@` is not allowed in public stream names
//! (see `ingest::auth::validate_stream_name`), so a rung name never collides with a
//! published stream.

/// Separates the source stream name from the rung name in a rung's hub name.
pub const RUNG_SEPARATOR: char = '@';

/// The hub name of rung `rung` of stream `source`: `live/alice` + `720p` ->
/// `live/alice@720p`.
pub fn rung_stream_name(source: &str, rung: &str) -> String {
    format!("{source}{RUNG_SEPARATOR}{rung}")
}

/// Splits a rung's hub name into (source stream, rung); `None` for a source stream.
pub fn split_rung_stream(name: &str) -> Option<(&str, &str)> {
    let (source, rung) = name.split_once(RUNG_SEPARATOR)?;
    (!source.is_empty() && !rung.is_empty()).then_some((source, rung))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rung_names_round_trip() {
        let name = rung_stream_name("live/alice", "720p");
        assert_eq!(name, "live/alice@720p");
        assert_eq!(split_rung_stream(&name), Some(("live/alice", "720p")));
        assert_eq!(split_rung_stream("live/alice"), None);
        assert_eq!(split_rung_stream("live/alice@"), None);
        assert_eq!(split_rung_stream("@720p"), None);
    }
}
