//! The SMS gateway webhook: each delivery is an HTTP/1.1 `POST` of a JSON body to the gateway's
//! URL, answered 2xx when the gateway accepted the message. The directory holds no phone
//! numbers, so the body names the recipient and carries a `phone` placeholder
//! (`recipient:<id>`) that the gateway resolves from its own contact list.
//!
//! The client is hyper-util's pooled client (already in the build through tonic), plain HTTP
//! only: a gateway behind TLS is reached through a local TLS-terminating proxy.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use tianshan_core::dissemination::recipients::ChannelKind;

use super::{positive_duration_ms, Channel, ChannelError, ChannelFailure, OutboundMessage};
use crate::error::PipelineError;

/// The most characters of an error answer kept in [`ChannelFailure::Status`].
const ERROR_BODY_LIMIT: usize = 200;

/// Settings of an HTTP gateway (`[channels.sms-gateway]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WebhookConfig {
    /// The `http://` URL deliveries are posted to.
    pub url: String,
    /// How long one request may take, connection included, e.g. `"5s"`.
    pub timeout: String,
}

impl WebhookConfig {
    /// Checks the settings; `section` names them in errors.
    ///
    /// # Errors
    /// Returns a message naming the first bad field.
    pub fn validate(&self, section: &str) -> Result<(), String> {
        parse_url(&self.url).map_err(|e| format!("{section}.url: {e}"))?;
        positive_duration_ms(&format!("{section}.timeout"), &self.timeout)?;
        Ok(())
    }
}

/// Returns the URL if it is an absolute `http://` URL.
fn parse_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(format!(
            "{url:?} must be an absolute http:// URL (TLS goes through a local proxy)"
        ));
    }
    Ok(uri)
}

/// The JSON body posted for one delivery.
#[derive(Debug, Serialize)]
struct GatewayRequest<'a> {
    /// The recipient's id in the directory.
    recipient_id: &'a str,
    /// The recipient's display name.
    recipient_name: &'a str,
    /// The number to send to: a placeholder the gateway resolves, `recipient:<id>`.
    phone: String,
    /// The admin unit of the recipient.
    unit_code: &'a str,
    /// `sms`, `sms-broadcast` or `phone`.
    channel: ChannelKind,
    /// The message.
    text: &'a str,
    /// The warning thread.
    warning_id: &'a str,
    /// Its version.
    warning_version: u32,
    /// `blue`, `yellow`, `orange` or `red`.
    level: &'a str,
    /// The 1-based try of this recipient, so the gateway can tell a re-send.
    attempt: u32,
}

/// Posts deliveries to an HTTP gateway.
pub struct WebhookChannel {
    kind: ChannelKind,
    url: Uri,
    timeout: Duration,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl WebhookChannel {
    /// Returns a gateway channel for `kind`: [`ChannelKind::Sms`], [`ChannelKind::SmsBroadcast`]
    /// or [`ChannelKind::Phone`] (a voice-notification gateway takes the same body).
    ///
    /// # Errors
    /// Returns [`PipelineError::Setup`] for another kind or a bad setting.
    pub fn new(kind: ChannelKind, config: &WebhookConfig) -> Result<Self, PipelineError> {
        if !matches!(
            kind,
            ChannelKind::Sms | ChannelKind::SmsBroadcast | ChannelKind::Phone
        ) {
            return Err(PipelineError::Setup(format!(
                "a webhook cannot carry the {kind} channel"
            )));
        }
        config.validate("webhook").map_err(PipelineError::Setup)?;
        let url = parse_url(&config.url).map_err(PipelineError::Setup)?;
        let timeout_ms = positive_duration_ms("webhook.timeout", &config.timeout)
            .map_err(PipelineError::Setup)?;
        Ok(Self {
            kind,
            url,
            timeout: Duration::from_millis(timeout_ms),
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// Sends the request and reads the answer, without the timeout.
    async fn post(&self, message: &OutboundMessage) -> Result<(), ChannelFailure> {
        let key = &message.delivery.key;
        let body = GatewayRequest {
            recipient_id: key.recipient.as_str(),
            recipient_name: &message.recipient.name,
            phone: format!("recipient:{}", key.recipient),
            unit_code: message.recipient.unit.as_str(),
            channel: key.channel,
            text: &message.text,
            warning_id: key.warning.as_str(),
            warning_version: key.version,
            level: message.warning.level.name(),
            attempt: message.delivery.attempt,
        };
        let json = serde_json::to_vec(&body).expect("a struct of strings and numbers encodes");
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .header(
                hyper::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .body(Full::new(Bytes::from(json)))
            .expect("a POST to a checked URL with a fixed header is a valid request");
        let http_error = |detail: String| ChannelFailure::Http {
            url: self.url.to_string(),
            detail,
        };
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| http_error(describe(&e)))?;
        let status = response.status();
        // Reading the body to the end lets the pooled connection be reused.
        let answer = response
            .into_body()
            .collect()
            .await
            .map_err(|e| http_error(e.to_string()))?
            .to_bytes();
        if status.is_success() {
            return Ok(());
        }
        let body = String::from_utf8_lossy(&answer)
            .chars()
            .take(ERROR_BODY_LIMIT)
            .collect();
        Err(ChannelFailure::Status {
            url: self.url.to_string(),
            status: status.as_u16(),
            body,
        })
    }
}

/// Returns the error with its causes: hyper-util's errors say little at the top level
/// ("client error (Connect)") and the reason (connection refused) sits in the source.
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[async_trait::async_trait]
impl Channel for WebhookChannel {
    fn kind(&self) -> ChannelKind {
        self.kind
    }

    /// "Delivered" means the gateway answered 2xx within the timeout: it accepted the message
    /// for sending, which is all an SMS gateway can say synchronously.
    async fn deliver(&self, message: &OutboundMessage) -> Result<(), ChannelError> {
        match tokio::time::timeout(self.timeout, self.post(message)).await {
            Ok(result) => result.map_err(|failure| ChannelError::new(message, failure)),
            Err(_) => Err(ChannelError::new(
                message,
                ChannelFailure::Timeout {
                    waited_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
                },
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::post;
    use axum::Router;
    use serde_json::{json, Value};

    use super::*;
    use crate::error::RetryHint;

    type Received = Arc<Mutex<Vec<Value>>>;

    /// Starts a gateway on 127.0.0.1:0: `/sms` records the body and answers 200, `/busy`
    /// answers 503, `/reject` 400 with a reason, `/stall` never answers.
    async fn gateway() -> (String, Received) {
        let received: Received = Arc::default();
        let app = Router::new()
            .route(
                "/sms",
                post(|State(log): State<Received>, body: String| async move {
                    let body = serde_json::from_str(&body).expect("the channel posts JSON");
                    log.lock().expect("not poisoned").push(body);
                    StatusCode::OK
                }),
            )
            .route("/busy", post(|| async { StatusCode::SERVICE_UNAVAILABLE }))
            .route(
                "/reject",
                post(|| async { (StatusCode::BAD_REQUEST, "unknown recipient") }),
            )
            .route("/stall", post(std::future::pending::<StatusCode>))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let address = listener.local_addr().expect("bound");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{address}"), received)
    }

    fn channel(url: String, timeout: &str) -> WebhookChannel {
        let config = WebhookConfig {
            url,
            timeout: timeout.into(),
        };
        WebhookChannel::new(ChannelKind::Sms, &config).expect("valid settings")
    }

    #[tokio::test]
    async fn the_gateway_receives_the_json_body() {
        let (base, received) = gateway().await;
        let sms = channel(format!("{base}/sms"), "5s");
        let message = OutboundMessage::for_test(ChannelKind::Sms, "650102-002-v1");
        sms.deliver(&message)
            .await
            .expect("the gateway answers 200");
        let bodies = received.lock().expect("not poisoned").clone();
        assert_eq!(
            bodies,
            vec![json!({
                "recipient_id": "650102-002-v1",
                "recipient_name": "synthetic head of village 1",
                "phone": "recipient:650102-002-v1",
                "unit_code": "650102002",
                "channel": "sms",
                "text": "【红色山洪预警】天山区：请立即组织人员转移。",
                "warning_id": "FF-B650102-20240701T0000Z",
                "warning_version": 1,
                "level": "red",
                "attempt": 1,
            })]
        );
    }

    #[tokio::test]
    async fn non_2xx_answers_and_stalls_are_errors_with_the_reason() {
        let (base, received) = gateway().await;
        let message = OutboundMessage::for_test(ChannelKind::Sms, "650102-002-v1");

        let busy = channel(format!("{base}/busy"), "5s")
            .deliver(&message)
            .await;
        let busy = busy.expect_err("503");
        assert!(matches!(
            busy.failure,
            ChannelFailure::Status { status: 503, .. }
        ));
        assert_eq!(busy.retry_hint(), RetryHint::Retry);

        let reject = channel(format!("{base}/reject"), "5s")
            .deliver(&message)
            .await;
        let reject = reject.expect_err("400");
        assert_eq!(
            reject.failure,
            ChannelFailure::Status {
                url: format!("{base}/reject"),
                status: 400,
                body: "unknown recipient".into()
            }
        );
        assert_eq!(reject.retry_hint(), RetryHint::DoNotRetry);

        let stall = channel(format!("{base}/stall"), "200ms")
            .deliver(&message)
            .await;
        assert_eq!(
            stall.expect_err("no answer").failure,
            ChannelFailure::Timeout { waited_ms: 200 }
        );
        assert!(received.lock().expect("not poisoned").is_empty());
    }

    #[tokio::test]
    async fn a_closed_port_is_a_retryable_http_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let address = listener.local_addr().expect("bound");
        drop(listener);
        let message = OutboundMessage::for_test(ChannelKind::Sms, "650102-002-v1");
        let error = channel(format!("http://{address}/sms"), "5s")
            .deliver(&message)
            .await
            .expect_err("nobody listens");
        let ChannelFailure::Http { detail, .. } = &error.failure else {
            panic!("expected an http failure, got {error}");
        };
        assert!(detail.contains("refused"), "{detail}");
        assert_eq!(error.retry_hint(), RetryHint::Retry);
    }

    #[test]
    fn settings_are_checked() {
        let config = |url: &str, timeout: &str| WebhookConfig {
            url: url.into(),
            timeout: timeout.into(),
        };
        assert_eq!(
            config("http://127.0.0.1:9000/sms", "5s").validate("g"),
            Ok(())
        );
        assert!(config("https://gw.example/sms", "5s")
            .validate("g")
            .expect_err("https")
            .starts_with("g.url: "));
        assert!(config("/sms", "5s").validate("g").is_err());
        assert!(config("http://127.0.0.1/sms", "0s").validate("g").is_err());
        let loudspeaker =
            WebhookChannel::new(ChannelKind::Loudspeaker, &config("http://a/b", "1s"));
        assert!(loudspeaker.is_err());
    }
}
