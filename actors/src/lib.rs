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
//! SignOffDesk                                         (WarningEvent, officers → releases)
//! AdminUnitActor(region) ── prefectures ── counties ── townships
//!                                                     (releases → deliveries, 叫应 deadlines, acks)
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
//! - [`sign_off_desk`]: `SignOffDesk`, drafts of the responsible department, approval, rejection.
//! - [`admin_unit`]: `AdminUnitActor`, one unit of the dissemination tree: targets, deliveries, 叫应.
//! - [`state_change`]: the books a restart must keep, as the tree and the desk report and restore them.
//! - [`wall_clock`]: the wall clock people's deadlines run on (tokio's clock, pausable in tests).
//! - [`warning_log`]: `WarningLog`, keeps warning versions for replay and tests.
//! - [`ask`]: bounded request/reply helpers.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

pub mod admin_unit;
pub mod ask;
pub mod basin;
pub mod basin_supervisor;
pub mod debris_flow_chain;
pub mod landslide_chain;
pub mod lightning_fire_chain;
pub mod sign_off_desk;
pub mod state_change;
pub mod station;
pub mod station_supervisor;
pub mod wall_clock;
pub mod warning_log;
pub mod warning_manager;
