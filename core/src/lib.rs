//! The pure core of Tianshan: event time, sliding windows, quality control, basin aggregation,
//! hazard models, the warning lifecycle and region data. No async runtime, no Kafka, no gRPC.
//!
//! # Layout
//! - [`time`]: event time, durations, calendar formatting.
//! - [`ids`]: identifier newtypes.
//! - [`observation`]: typed observations and the outcome of applying one.
//! - [`region`]: region folders: admin units, stations, basins, gauge weights, thresholds, fire zones, slopes.
//! - [`boundaries`]: county shapes for point-in-county lookups: official polygons or coarse squares.
//! - [`scenario`]: the built-in storm scenario: a rain cell over a basin cluster, with bad messages mixed in.
//! - [`shard_coverage`]: whether the nodes that answered a scatter-gather query hold every partition of a sharded cluster once.
//! - [`slot_windows`]: incremental sliding sums over time slots.
//! - [`qc`]: rain-gauge and stage quality control with reason codes.
//! - [`station_windows`]: per-station state: dedupe, lateness, QC, rain windows, stages, weather.
//! - [`antecedent`]: antecedent precipitation index (Pa) and the meteorological day.
//! - [`rain_workload`]: the rainfall-windows benchmark job of `shared/bench/WORKLOAD.md` over CSV bytes.
//! - [`event_clock`]: event-time merge across partitions and the release of evaluation ticks.
//! - [`tick_gate`]: ticks across nodes: items of an internal topic held until every source partition finished the tick.
//! - [`partitioner`]: the partition of a keyed record as Kafka clients compute it (CRC-32, murmur2).
//! - [`areal`]: basin-average rainfall: arithmetic mean, IDW, renormalised gauge weights.
//! - [`flash_flood`]: flash-flood assessment per basin and tick: soil state, rain and stage levels.
//! - [`basin_snow`]: a basin's snowpack stepped per tick by its snow station; melt per rain duration.
//! - [`debris_flow`]: debris-flow levels from I–D curves, post-fire likelihood and effective rain; the flash-flood chain.
//! - [`debris_flow_chain`]: the storm → flash flood → debris flow chain of one gully, with its warning lifecycle.
//! - [`landslide`]: deformation windows, inverse-velocity and Saito forecasts, tangent-angle levels.
//! - [`landslide_chain`]: the landslide chain: deformation points into windows, rain on the slope, a warning thread per slope.
//! - [`slope_rain`]: the areal rain of each monitored slope's basin over the landslide rain window.
//! - [`fire_weather`]: fire weather: Canadian FWI System codes and indices, LY/T 1172 HZ, China's five levels.
//! - [`fuel_weather`]: fire zones' daily FWI fuel state from their nearest weather station and gauge; rain at strokes.
//! - [`lightning_fire`]: lightning strokes in fire zones: counts, holdover watch, combined ignition-risk level.
//! - [`lightning_fire_chain`]: the lightning → fire chain: strokes into zones, a warning thread per zone.
//! - [`snowmelt`]: snowpack SWE by degree-day and rain melt, warming spells, the snowmelt-flood grade.
//! - [`consolidation`]: one current warning per (hazard, target); per township the active hazards, highest first.
//! - [`lifecycle`]: the warning state machine: issue, upgrade, downgrade, renew, cancel.
//! - [`signoff`]: who issues is responsible: drafts, approval, edits, rejection, early release, audit.
//! - [`access`]: bearer tokens, principals and their roles; authorization of each API operation.
//! - [`dissemination`]: the admin tree, recipients, forced acknowledgement (叫应), delivery dedupe, coverage.
//! - [`verification`]: warnings scored against an events catalogue: hits, misses, false alarms, POD, FAR, CSI, lead times.
//! - [`warning`]: hazards, levels, actions, statuses, warning events and ids.
//! - [`cap`]: CAP 1.2 alerts: rendering of warning versions, checks beyond the schema, parsing of other agencies' alerts.
//! - [`agency_alert`]: other agencies' CAP alerts as warning versions for sign-off: hazard table, threads, refusals.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

pub mod access;
pub mod agency_alert;
pub mod antecedent;
pub mod areal;
pub mod basin_snow;
pub mod boundaries;
pub mod cap;
pub mod consolidation;
pub mod debris_flow;
pub mod debris_flow_chain;
pub mod dissemination;
pub mod event_clock;
pub mod fire_weather;
pub mod flash_flood;
pub mod fuel_weather;
pub mod ids;
pub mod landslide;
pub mod landslide_chain;
pub mod lifecycle;
pub mod lightning_fire;
pub mod lightning_fire_chain;
pub mod observation;
pub mod partitioner;
pub mod qc;
pub mod rain_workload;
pub mod region;
pub mod scenario;
pub mod shard_coverage;
pub mod signoff;
pub mod slope_rain;
pub mod slot_windows;
pub mod snowmelt;
pub mod station_windows;
pub mod tick_gate;
pub mod time;
pub mod verification;
pub mod warning;
