//! HTTP endpoints: `/metrics` (Prometheus text format), `/healthz` (the process answers) and
//! `/readyz` (partitions assigned and their state rebuilt from the log) for SREs, `/townships` (JSON: per
//! township, every active hazard with the highest level first) for duty officers, and, when the
//! node runs a CAP feed, `/cap/feed.atom` (Atom 1.0) and `/cap/<identifier>.xml` (one CAP 1.2
//! message) for the public, and `POST /sql` (the body is one query, run over a fresh snapshot
//! of the node's actors; bearer token with the SQL permission; `Accept: text/csv` (the default),
//! `application/json` or `text/plain` for a text table) for analysts.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use ractor::ActorRef;
use tianshan_actors::ask::ask;
use tianshan_core::access::{bearer_token, Denied, Operation, TokenTable};
use tianshan_core::consolidation::{current_warnings, township_summaries, valid_at};
use tianshan_core::region::Region;
use tianshan_core::time::EventTime;
use tianshan_pipelines::channels::cap_feed::CapFeed;
use tianshan_pipelines::error::PipelineError;
use tianshan_pipelines::sql::{format_batches, OutputFormat};
use tianshan_pipelines::telemetry::Metrics;
use tianshan_pipelines::warning_publisher::WarningPublisherMsg;

use crate::error::ClusterError;
use crate::sql_engine::SqlEngine;

/// What the endpoints read.
#[derive(Clone)]
pub struct HttpState {
    /// Pipeline metrics.
    pub metrics: Arc<Metrics>,
    /// The publisher, which knows the active warnings.
    pub publisher: ActorRef<WarningPublisherMsg>,
    /// The region, for township names.
    pub region: Arc<Region>,
    /// Answers `/sql`.
    pub sql: SqlEngine,
    /// Who each bearer token stands for.
    pub tokens: Arc<TokenTable>,
}

/// Builds the router; with a `cap_feed`, it also serves the feed's routes ([`cap_router`]).
pub fn router(state: HttpState, cap_feed: Option<Arc<CapFeed>>) -> Router {
    let router = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readiness))
        .route("/townships", get(townships))
        .route("/sql", post(sql))
        .with_state(state);
    match cap_feed {
        Some(feed) => router.merge(cap_router(feed)),
        None => router,
    }
}

/// Returns the routes of the CAP feed: `/cap/feed.atom` and `/cap/<identifier>.xml`.
pub fn cap_router(feed: Arc<CapFeed>) -> Router {
    Router::new()
        .route("/cap/feed.atom", get(cap_atom))
        .route("/cap/{file}", get(cap_message))
        .with_state(feed)
}

async fn cap_atom(State(feed): State<Arc<CapFeed>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        feed.render_atom(),
    )
}

/// Serves one CAP message; `file` is `<identifier>.xml` after percent-decoding (the feed's
/// links write the `%` of identifiers as `%25`).
async fn cap_message(
    State(feed): State<Arc<CapFeed>>,
    Path(file): Path<String>,
) -> impl IntoResponse {
    let message = file
        .strip_suffix(".xml")
        .and_then(|identifier| feed.message(identifier));
    match message {
        Some(xml) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/cap+xml; charset=utf-8")],
            xml,
        ),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no CAP message {file} in the feed\n"),
        ),
    }
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
            "not ready: partitions not assigned yet, or their state is still being rebuilt from the log\n",
        )
    }
}

/// Runs the body's query over a fresh snapshot when the bearer token may query SQL.
async fn sql(
    State(state): State<HttpState>,
    headers: HeaderMap,
    query: String,
) -> impl IntoResponse {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token);
    if let Err(denied) = state.tokens.authorize(token, Operation::SqlQuery) {
        let status = match denied {
            Denied::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Denied::PermissionDenied { .. } => StatusCode::FORBIDDEN,
        };
        return plain(status, format!("{denied}\n"));
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let (format, content_type) = if accept.contains("application/json") {
        (OutputFormat::Json, "application/json")
    } else if accept.contains("text/plain") {
        (OutputFormat::Table, "text/plain; charset=utf-8")
    } else {
        (OutputFormat::Csv, "text/csv; charset=utf-8")
    };
    let answer = async {
        let (_, batches) = state.sql.query(&query).await?;
        Ok::<_, ClusterError>(format_batches(&batches, format)?)
    };
    match answer.await {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body),
        Err(e @ ClusterError::Pipeline(PipelineError::Sql(_))) => {
            plain(StatusCode::BAD_REQUEST, format!("{e}\n"))
        }
        Err(e) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    }
}

fn plain(
    status: StatusCode,
    body: String,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], String) {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use tianshan_core::dissemination::acknowledgement::{Delivery, DeliveryKey, Subject};
    use tianshan_core::dissemination::recipients::{ChannelKind, Recipient, Role};
    use tianshan_core::ids::{AreaCode, RecipientId, WarningId};
    use tianshan_core::lifecycle::action_for;
    use tianshan_core::warning::{Hazard, Level, Status, WarningEvent};
    use tianshan_pipelines::channels::cap_feed::CapFeedConfig;
    use tianshan_pipelines::channels::{Channel, OutboundMessage};

    use super::*;

    /// Returns the feed message of version 1 of `warning`, with a stand-in CAP document (the
    /// feed stores what it is given; CAP rendering is tested in core).
    fn cap_message(warning: &str) -> OutboundMessage {
        let id = WarningId::new(warning);
        let recipient = RecipientId::new("650000-cap");
        OutboundMessage {
            delivery: Delivery {
                key: DeliveryKey {
                    warning: id.clone(),
                    version: 1,
                    recipient: recipient.clone(),
                    subject: Subject::Warning,
                    channel: ChannelKind::CapFeed,
                },
                attempt: 1,
            },
            recipient: Recipient {
                id: recipient,
                name: "CAP feed".into(),
                role: Role::Public,
                unit: AreaCode::new("650000"),
                channels: vec![ChannelKind::CapFeed],
            },
            warning: WarningEvent {
                id: id.clone(),
                version: 1,
                hazard: Hazard::FlashFlood,
                level: Level::Orange,
                action: action_for(Hazard::FlashFlood, Level::Orange),
                status: Status::Issued,
                target: "B1".into(),
                area_codes: vec![AreaCode::new("650102")],
                onset: EventTime(0),
                issued: EventTime(0),
                expires: EventTime(3_600_000),
                evidence: Vec::new(),
                caused_by: None,
            },
            text: "橙色山洪预警".into(),
            cap_xml: Some(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<alert \
                 xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>{warning}-v1\
                 </identifier></alert>"
            )),
        }
    }

    /// Serves the CAP routes on 127.0.0.1:0 and returns the base URL.
    async fn serve(feed: Arc<CapFeed>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let address = listener.local_addr().expect("bound");
        tokio::spawn(async move { axum::serve(listener, cap_router(feed)).await });
        format!("http://{address}")
    }

    /// Returns the status, content type and body of a GET of `url`.
    async fn get(url: &str) -> (u16, String, String) {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let response = client
            .get(url.parse().expect("a URL"))
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).expect("utf-8"),
        )
    }

    #[tokio::test]
    async fn the_feed_and_its_messages_are_served() {
        let feed = Arc::new(CapFeed::new(&CapFeedConfig::default()).expect("valid settings"));
        for warning in ["FF-B1-20240701T0000Z", "FF-天山-20240701T0000Z"] {
            feed.deliver(&cap_message(warning)).await.expect("has CAP");
        }
        let base = serve(feed.clone()).await;

        let (status, content_type, atom) = get(&format!("{base}/cap/feed.atom")).await;
        assert_eq!(status, 200);
        assert_eq!(content_type, "application/atom+xml; charset=utf-8");
        assert_eq!(atom, feed.render_atom());
        assert_eq!(atom.matches("<entry>").count(), 2);

        // Follow every link of the feed: each answers its CAP document.
        let links: Vec<&str> = atom
            .split("rel=\"alternate\" type=\"application/cap+xml\" href=\"")
            .skip(1)
            .filter_map(|rest| rest.split_once('"').map(|(href, _)| href))
            .collect();
        assert_eq!(links.len(), 2);
        for (link, identifier) in links.iter().zip(feed.identifiers()) {
            let path = link
                .strip_prefix("http://127.0.0.1:8080")
                .expect("the configured base URL");
            let (status, content_type, xml) = get(&format!("{base}{path}")).await;
            assert_eq!(status, 200, "{path}");
            assert_eq!(content_type, "application/cap+xml; charset=utf-8");
            assert_eq!(Some(xml), feed.message(&identifier));
        }

        for missing in ["/cap/FF-B9-v1.xml", "/cap/FF-B1-20240701T0000Z-v1"] {
            let (status, _, body) = get(&format!("{base}{missing}")).await;
            assert_eq!(status, 404, "{missing}");
            assert!(body.starts_with("no CAP message"), "{body}");
        }
    }
}
