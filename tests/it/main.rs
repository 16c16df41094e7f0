//! Integration tests of the `tianshan` package: one binary, one module per area.

mod backtest;
mod bench_workload;
mod broker_proxy;
mod cluster_changes;
mod deadline;
mod flight_sql;
mod forwarding;
mod golden_warnings;
mod helm_chart;
mod kafka_under_test;
mod replay_equals_live;
mod scatter_gather;
mod sharded_cluster;
mod signed_warnings_reach_the_public;
mod sql_over_http;
mod storm_on_embedded_broker;
mod takeover;
