//! The HTTP origin: LL-HLS playlists with blocking reload, parts, segments and init
//! segments, preload-hint blocking.
//!
//! - [`store`]: the in-memory [`Store`] the packager's output is applied to (one
//!   [`StreamWriter`] per stream), with the retention of removed media [S §6.2.2] and a
//!   watch channel per rendition that wakes blocked requests.
//! - [`server`]: the axum [`router`] on the URLs of DESIGN.md and the accept loops
//!   ([`serve`]: HTTP/1.1; [`serve_tls`]: HTTP/2 and HTTP/1.1 by ALPN) with a connection
//!   limit and header/idle timeouts.
//! - blocking reload and preload-hint rules [S §6.2.5.2, §6.2.6] (`blocking`), response
//!   headers (`headers`), [`tls`] configuration (files or self-signed), [`metrics`].
//!
//! It does not package (the `packager` crate does), read the hub, or serve the player
//! page: the binary's driver feeds the store and adds its own routes through
//! [`HttpState::extra_routes`].
#![forbid(unsafe_code, clippy::print_stdout, clippy::print_stderr)]

mod blocking;
pub mod driver;
mod headers;
pub mod metrics;
mod routes;
pub mod server;
pub mod store;
pub mod tls;

pub use metrics::{OriginMetrics, RequestKind};
pub use server::{HttpConfig, HttpState, router, serve, serve_tls};
pub use store::{Store, StoreConfig, StreamSummary, StreamWriter};
pub use tls::TlsError;
