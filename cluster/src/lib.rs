//! The Tianshan node's network face: the public gRPC API (tonic) and the HTTP endpoints for
//! Prometheus metrics and health probes.
//!
//! # Layout
//! - [`warning_service`]: `tianshan.v1.WarningService` (active warnings, subscriptions with
//!   cursors, acknowledgements, drafts and sign-off, manual warnings), behind bearer tokens.
//! - [`flight_sql`]: Arrow Flight SQL statement queries and catalog metadata on the gRPC port,
//!   behind bearer tokens.
//! - [`sql_engine`]: answers SQL over a fresh snapshot of the node and its peers' parts (for
//!   `/sql` and Flight SQL).
//! - [`peer_service`]: `tianshan.peer.v1.PeerService` (cluster view, table snapshots as Arrow
//!   IPC, forwarded acknowledgements and decisions), for tokens of role `peer` only.
//! - [`peer_gather`]: the scatter-gather client of the peers' table snapshots, active
//!   warnings and drafts.
//! - [`whole_answer`]: whether the nodes that answered a gather hold the whole cluster's state.
//! - [`forwarding`]: acknowledgements and decisions sent on to the node owning the warning.
//! - [`cluster_config`]: `[cluster]`: node id, peers, peer timeout.
//! - [`http_endpoints`]: `/metrics`, `/healthz`, `/readyz`, `/townships`, the CAP feed.
//! - [`server`]: binds and serves both, with gRPC health, reflection and optional TLS.
//! - [`error`]: the one conversion of errors into `tonic::Status`.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

mod arrow_ipc;
mod bearer;
pub mod cluster_config;
pub mod error;
pub mod flight_sql;
pub mod forwarding;
pub mod http_endpoints;
pub mod node_probe;
pub mod peer_gather;
pub mod peer_service;
pub mod server;
pub mod sql_engine;
pub mod warning_service;
pub mod whole_answer;
