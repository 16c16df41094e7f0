//! Errors of the node's services, and their one conversion into `tonic::Status`.

use tianshan_pipelines::error::{ErrorDomain, PipelineError};

/// Errors a gRPC or HTTP handler can meet.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The request is invalid.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The pipeline behind the service failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// A server could not bind or serve.
    #[error("could not serve on {addr}: {detail}")]
    Serve {
        /// The address.
        addr: String,
        /// What failed.
        detail: String,
    },
}

impl From<ClusterError> for tonic::Status {
    fn from(error: ClusterError) -> Self {
        match error {
            ClusterError::InvalidRequest(detail) => tonic::Status::invalid_argument(detail),
            ClusterError::Pipeline(e) => match e.domain() {
                ErrorDomain::External => {
                    tonic::Status::unavailable("the message broker is unavailable; retry later")
                }
                ErrorDomain::User | ErrorDomain::Internal => {
                    tracing::error!(error = %e, "request failed inside the pipeline");
                    tonic::Status::internal("internal error")
                }
            },
            ClusterError::Serve { .. } => tonic::Status::internal("internal error"),
        }
    }
}
