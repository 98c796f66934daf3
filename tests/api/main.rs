//! Integration tests: the app on port 0, reached over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chat;
mod cluster;
mod http;
mod lifecycle;
mod support;
