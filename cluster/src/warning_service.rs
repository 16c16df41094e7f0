//! `tianshan.v1.WarningService`: lists the active warnings and streams new warning versions to
//! subscribers, filtered by area code prefix.

use std::pin::Pin;

use ractor::ActorRef;
use tianshan_actors::ask::{await_reply, reply_port};
use tianshan_core::warning::WarningEvent;
use tianshan_pipelines::error::PipelineError;
use tianshan_pipelines::warning_publisher::WarningPublisherMsg;
use tianshan_proto::v1;
use tianshan_proto::v1::warning_service_server::WarningService;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::error::ClusterError;

/// The service implementation.
pub struct WarningApi {
    publisher: ActorRef<WarningPublisherMsg>,
    warnings: broadcast::Sender<WarningEvent>,
}

impl WarningApi {
    /// Serves the warnings of `publisher`, streaming from `warnings`.
    pub fn new(
        publisher: ActorRef<WarningPublisherMsg>,
        warnings: broadcast::Sender<WarningEvent>,
    ) -> Self {
        Self {
            publisher,
            warnings,
        }
    }
}

fn check_prefix(prefix: &str) -> Result<(), ClusterError> {
    if prefix.len() > 12 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ClusterError::InvalidRequest(format!(
            "area_code_prefix must be up to 12 digits of a GB/T 2260 or township code, got {prefix:?}"
        )));
    }
    Ok(())
}

fn reaches(event: &WarningEvent, prefix: &str) -> bool {
    prefix.is_empty()
        || event
            .area_codes
            .iter()
            .any(|code| code.as_str().starts_with(prefix))
}

type WarningStream = Pin<Box<dyn Stream<Item = Result<v1::Warning, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl WarningService for WarningApi {
    async fn list_active(
        &self,
        request: Request<v1::ListActiveRequest>,
    ) -> Result<Response<v1::ListActiveResponse>, Status> {
        let prefix = request.into_inner().area_code_prefix;
        check_prefix(&prefix)?;
        let (port, receiver) = reply_port();
        self.publisher
            .cast(WarningPublisherMsg::Active(port))
            .map_err(|e| ClusterError::Pipeline(PipelineError::Actor(e.to_string())))?;
        let active = await_reply(receiver, "list active warnings")
            .await
            .map_err(|e| ClusterError::Pipeline(PipelineError::Actor(e.to_string())))?;
        let warnings = active
            .iter()
            .filter(|w| reaches(w, &prefix))
            .map(v1::Warning::from)
            .collect();
        Ok(Response::new(v1::ListActiveResponse { warnings }))
    }

    type SubscribeStream = WarningStream;

    async fn subscribe(
        &self,
        request: Request<v1::SubscribeRequest>,
    ) -> Result<Response<WarningStream>, Status> {
        let prefix = request.into_inner().area_code_prefix;
        check_prefix(&prefix)?;
        let stream = BroadcastStream::new(self.warnings.subscribe()).filter_map(move |item| match item {
            Ok(event) if reaches(&event, &prefix) => Some(Ok(v1::Warning::from(&event))),
            Ok(_) => None,
            Err(lagged) => Some(Err(Status::data_loss(format!(
                "subscriber fell behind and missed warnings ({lagged}); call ListActive and subscribe again"
            )))),
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_must_be_digits() {
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("6540").is_ok());
        assert!(check_prefix("65x").is_err());
        assert!(check_prefix("6540250010011").is_err());
    }
}
