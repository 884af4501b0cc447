//! Integration tests: a real [`stampede_sut::Server`] on port 0, hit with hyper's own
//! HTTP/1.1 and HTTP/2 clients over real sockets.

mod client;
mod lifecycle;
mod protocols;
mod routes;
mod snap;
mod stall;
mod tls;
mod workspaces;
mod ws_client;
