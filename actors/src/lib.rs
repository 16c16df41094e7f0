//! The ractor actors of Tianshan. Each actor is thin: it receives a message, calls the pure core
//! (`tianshan-core`), and sends what the core says to emit to a downstream `DerivedActorRef`, so
//! this crate never depends on Kafka or gRPC and tests can pass in recorders.
//!
//! Supervision tree of one node (drawn in each supervisor's own docs too):
//! ```text
//! StationSupervisor ── StationActor × stations        (observations, ticks → StationSummary)
//! BasinSupervisor   ── BasinActor × basins            (StationSummary → Assessment)
//! WarningManager                                      (Assessment → WarningEvent, ChainInput)
//! DebrisFlowChainActor                                (ChainInput → debris-flow WarningEvent)
//! LightningFireChainActor                             (strokes, summaries, ticks → fire WarningEvent)
//! LandslideChainActor                                 (deformation, summaries, ticks → landslide WarningEvent)
//! ```
//!
//! # Layout
//! - [`station`]: `StationActor`, windows and QC of one station.
//! - [`station_supervisor`]: `StationSupervisor`, routes observations and ticks to stations.
//! - [`basin`]: `BasinActor`, areal rainfall and thresholds of one basin.
//! - [`basin_supervisor`]: `BasinSupervisor`, routes station summaries to basins.
//! - [`warning_manager`]: `WarningManager`, the warning lifecycle per basin.
//! - [`debris_flow_chain`]: `DebrisFlowChainActor`, the storm → flash flood → debris flow chain per gully.
//! - [`lightning_fire_chain`]: `LightningFireChainActor`, the lightning → fire chain of the fire zones.
//! - [`landslide_chain`]: `LandslideChainActor`, the deformation → landslide chain of the monitored slopes.
//! - [`warning_log`]: `WarningLog`, keeps warning versions for replay and tests.
//! - [`ask`]: bounded request/reply helpers.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

pub mod ask;
pub mod basin;
pub mod basin_supervisor;
pub mod debris_flow_chain;
pub mod landslide_chain;
pub mod lightning_fire_chain;
pub mod station;
pub mod station_supervisor;
pub mod warning_log;
pub mod warning_manager;
