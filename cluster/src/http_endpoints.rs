//! HTTP endpoints: `/metrics` (Prometheus text format), `/healthz` (the process answers) and
//! `/readyz` (partitions assigned and the consumer running) for SREs, and `/townships` (JSON: per
//! township, every active hazard with the highest level first) for duty officers.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use ractor::ActorRef;
use tianshan_actors::ask::ask;
use tianshan_core::consolidation::{current_warnings, township_summaries, valid_at};
use tianshan_core::region::Region;
use tianshan_core::time::EventTime;
use tianshan_pipelines::telemetry::Metrics;
use tianshan_pipelines::warning_publisher::WarningPublisherMsg;

/// What the endpoints read.
#[derive(Clone)]
pub struct HttpState {
    /// Pipeline metrics.
    pub metrics: Arc<Metrics>,
    /// The publisher, which knows the active warnings.
    pub publisher: ActorRef<WarningPublisherMsg>,
    /// The region, for township names.
    pub region: Arc<Region>,
}

/// Builds the router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readiness))
        .route("/townships", get(townships))
        .with_state(state)
}

async fn metrics_text(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render_prometheus(),
    )
}

async fn townships(State(state): State<HttpState>) -> impl IntoResponse {
    let active = match ask(
        &state.publisher,
        WarningPublisherMsg::Active,
        "active warnings",
    )
    .await
    {
        Ok(active) => active,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain")],
                format!("active warnings unavailable: {e}\n"),
            )
        }
    };
    let now = EventTime(state.metrics.watermark_ms());
    let summaries = township_summaries(&valid_at(current_warnings(&active), now), &state.region);
    match serde_json::to_string(&summaries) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            format!("cannot encode the summaries: {e}\n"),
        ),
    }
}

async fn readiness(State(state): State<HttpState>) -> impl IntoResponse {
    if state.metrics.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no partitions assigned yet\n",
        )
    }
}
