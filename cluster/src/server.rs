//! Binds the gRPC and HTTP listeners and serves them until the process stops.

use std::net::SocketAddr;
use std::sync::Arc;

use tianshan_core::region::Region;
use tianshan_pipelines::channels::cap_feed::CapFeed;
use tianshan_pipelines::node_pipeline::NodePipeline;
use tianshan_proto::v1::warning_service_server::WarningServiceServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tracing::{error, info};

use crate::error::ClusterError;
use crate::http_endpoints::{self, HttpState};
use crate::warning_service::WarningApi;

/// The addresses the servers actually bound (useful with port 0).
#[derive(Debug, Clone, Copy)]
pub struct BoundAddresses {
    /// gRPC listener.
    pub grpc: SocketAddr,
    /// HTTP listener.
    pub http: SocketAddr,
}

async fn bind(addr: &str) -> Result<TcpListener, ClusterError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| ClusterError::Serve {
            addr: addr.to_string(),
            detail: e.to_string(),
        })
}

/// Binds both listeners and serves them in the background; the HTTP port also serves
/// `cap_feed` when given.
///
/// # Errors
/// Returns [`ClusterError::Serve`] naming the address that could not be bound.
pub async fn serve(
    grpc_addr: &str,
    http_addr: &str,
    pipeline: &NodePipeline,
    region: Arc<Region>,
    cap_feed: Option<Arc<CapFeed>>,
) -> Result<BoundAddresses, ClusterError> {
    let grpc_listener = bind(grpc_addr).await?;
    let http_listener = bind(http_addr).await?;
    let local = |l: &TcpListener, addr: &str| {
        l.local_addr().map_err(|e| ClusterError::Serve {
            addr: addr.to_string(),
            detail: e.to_string(),
        })
    };
    let bound = BoundAddresses {
        grpc: local(&grpc_listener, grpc_addr)?,
        http: local(&http_listener, http_addr)?,
    };
    let service = WarningServiceServer::new(WarningApi::new(
        pipeline.publisher.clone(),
        pipeline.warnings.clone(),
    ));
    let http_state = HttpState {
        metrics: pipeline.metrics.clone(),
        publisher: pipeline.publisher.clone(),
        region,
    };
    tokio::spawn(async move {
        let incoming = TcpListenerStream::new(grpc_listener);
        if let Err(e) = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
        {
            error!(error = %e, "grpc server stopped");
        }
    });
    tokio::spawn(async move {
        if let Err(e) =
            axum::serve(http_listener, http_endpoints::router(http_state, cap_feed)).await
        {
            error!(error = %e, "http server stopped");
        }
    });
    info!(grpc = %bound.grpc, http = %bound.http, "serving");
    Ok(bound)
}
