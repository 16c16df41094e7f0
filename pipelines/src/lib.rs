//! Kafka sources and sinks of Tianshan (rdkafka), observation decoding, dead letters, metrics,
//! the embedded broker of the demo and tests, and the assembly of one node's pipeline.
//!
//! # Layout
//! - [`archive`]: Parquet archives of warnings and observations, written and read back.
//! - [`config`]: Kafka, topic and pipeline settings.
//! - [`channels`]: dissemination channels (log, SMS webhook, MQTT loudspeakers, CAP feed, app)
//!   and the courier that delivers each key once, journaled to Kafka.
//! - [`delivery_courier`]: the courier actor: renders CAP and text once per version, sends each key once.
//! - [`dissemination_stage`]: directory, channels, courier, dissemination tree and sign-off desk of a node.
//! - [`embedded_broker`]: librdkafka's mock cluster inside the process.
//! - [`state_journal`]: open acknowledgement books and the sign-off book on a compacted topic,
//!   read back at start.
//! - [`observation_source`]: the consumer-group source with rebuild on assignment.
//! - [`assignment`]: what a rebuilding consumer owns now, kept by its rebalance callback.
//! - `stop_signal`: the sources' polling threads stop when the source is stopped or dropped.
//! - [`basin_updates`]: the internal topic between the nodes of a sharded cluster: summaries, chain inputs, tick markers.
//! - [`sharded_ticks`]: a sharded node's upstream half: its stations, and what it sends on at each tick.
//! - [`basin_update_source`]: a sharded node's downstream half: basin-updates gated by tick into its basins and chains.
//! - [`release_router`]: a sharded node's desk releases through it to the shards of the tree.
//! - [`shard_dissemination`]: the shards of the tree a sharded node owns, and their releases replayed at a takeover.
//! - [`agency_alerts`]: other agencies' CAP alerts from Kafka to the sign-off desk, or the dead letters.
//! - [`dead_letters`]: the dead-letter writer.
//! - [`warning_publisher`]: the warnings topic writer with exactly-once-per-version publishing.
//! - [`warning_threads`]: the basin or chain a warning belongs to, and the partition deciding its owner.
//! - [`gateway`]: a sensor gateway: observation files and the storm scenario into Kafka.
//! - [`model_actors`]: the actors from observations to warnings, shared by node and replay.
//! - [`node_pipeline`]: starts the actors, the source and the sinks of one node.
//! - [`replay`]: observations from a file through the same actors, no Kafka.
//! - [`sql`]: DataFusion tables over snapshots of the actors' state, and queries over them.
//! - [`telemetry`]: metrics in the Prometheus text format.
//! - [`error`]: the crate's error type.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

pub mod agency_alerts;
pub mod archive;
pub mod assignment;
pub mod basin_update_source;
pub mod basin_updates;
pub mod channels;
pub mod config;
pub mod dead_letters;
pub mod delivery_courier;
pub mod dissemination_stage;
pub mod embedded_broker;
pub mod error;
mod final_commit;
pub mod gateway;
pub mod model_actors;
pub mod node_pipeline;
pub mod observation_source;
pub mod ownership_lease;
pub mod release_router;
pub mod replay;
pub mod shard_dissemination;
pub mod sharded_ticks;
pub mod sql;
pub mod state_journal;
mod stop_signal;
pub mod telemetry;
pub mod topic_setup;
pub mod warning_publisher;
pub mod warning_threads;
