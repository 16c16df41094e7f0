//! Binds the gRPC and HTTP listeners and serves them until the process stops. The gRPC server
//! carries `tianshan.v1.WarningService`, Arrow Flight SQL, the standard health service (`grpc.health.v1.Health`)
//! and server reflection in both its v1 and v1alpha versions, so grpcurl can list and describe
//! the services; with [`TlsSettings`] it speaks TLS (rustls).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tianshan_actors::wall_clock::WallClock;
use tianshan_core::region::Region;
use tianshan_pipelines::channels::cap_feed::CapFeed;
use tianshan_pipelines::node_pipeline::NodePipeline;
use tianshan_pipelines::sql::NodeSources;
use tianshan_proto::v1::warning_service_server::WarningServiceServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tracing::{error, info};

use crate::error::ClusterError;
use crate::flight_sql::FlightSqlApi;
use crate::http_endpoints::{self, HttpState};
use crate::sql_engine::SqlEngine;
use crate::warning_service::{WarningApi, WarningApiSettings};

/// The addresses the servers actually bound (useful with port 0).
#[derive(Debug, Clone, Copy)]
pub struct BoundAddresses {
    /// gRPC listener.
    pub grpc: SocketAddr,
    /// HTTP listener.
    pub http: SocketAddr,
}

/// PEM files of the gRPC server's certificate chain and private key.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

/// What the gRPC API needs besides the pipeline.
pub struct GrpcSettings {
    /// The sign-off desk, the dissemination tree, the token table and the warnings topic.
    pub api: WarningApiSettings,
    /// TLS; `None` serves plaintext.
    pub tls: Option<TlsSettings>,
}

async fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), ClusterError> {
    let serve_error = |e: std::io::Error| ClusterError::Serve {
        addr: addr.to_string(),
        detail: e.to_string(),
    };
    let listener = TcpListener::bind(addr).await.map_err(serve_error)?;
    let local = listener.local_addr().map_err(serve_error)?;
    Ok((listener, local))
}

/// Reads the certificate and key of `tls`.
///
/// # Errors
/// [`ClusterError::TlsFile`] naming the file that cannot be read.
fn load_identity(tls: &TlsSettings) -> Result<Identity, ClusterError> {
    let read = |file: &PathBuf| {
        std::fs::read(file).map_err(|e| ClusterError::TlsFile {
            file: file.clone(),
            detail: e.to_string(),
        })
    };
    Ok(Identity::from_pem(read(&tls.cert)?, read(&tls.key)?))
}

/// The node's own gRPC services.
pub struct GrpcServices {
    /// `tianshan.v1.WarningService`.
    pub warnings: WarningApi,
    /// Arrow Flight SQL.
    pub flight_sql: FlightSqlApi,
}

/// Binds `addr` and serves `services`, health and reflection on it in the background.
///
/// # Errors
/// [`ClusterError::Serve`] when the address cannot be bound or the TLS identity is unusable,
/// [`ClusterError::TlsFile`] naming a certificate or key file that cannot be read.
pub async fn serve_grpc(
    addr: &str,
    services: GrpcServices,
    tls: Option<&TlsSettings>,
) -> Result<SocketAddr, ClusterError> {
    let serve_error = |detail: String| ClusterError::Serve {
        addr: addr.to_string(),
        detail,
    };
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        let config = ServerTlsConfig::new().identity(load_identity(tls)?);
        builder = builder
            .tls_config(config)
            .map_err(|e| serve_error(format!("TLS: {e}")))?;
    }
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<WarningServiceServer<WarningApi>>()
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tianshan_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| serve_error(format!("reflection: {e}")))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| serve_error(format!("reflection: {e}")))?;
    let router = builder
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(WarningServiceServer::new(services.warnings))
        .add_service(services.flight_sql.into_server());
    let (listener, bound) = bind(addr).await?;
    tokio::spawn(async move {
        if let Err(e) = router
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
        {
            error!(error = %e, "grpc server stopped");
        }
    });
    Ok(bound)
}

/// Binds both listeners and serves them in the background; the HTTP port also serves
/// `cap_feed` (`/cap/feed.atom`) when given.
///
/// # Errors
/// Returns [`ClusterError::Serve`] naming the address that could not be bound, and
/// [`ClusterError::TlsFile`] naming a certificate or key file that cannot be read.
pub async fn serve(
    grpc_addr: &str,
    http_addr: &str,
    pipeline: &NodePipeline,
    region: Arc<Region>,
    grpc: GrpcSettings,
    cap_feed: Option<Arc<CapFeed>>,
) -> Result<BoundAddresses, ClusterError> {
    let (http_listener, http) = bind(http_addr).await?;
    let tokens = grpc.api.tokens.clone();
    let sql = SqlEngine::new(
        NodeSources::of(pipeline, region.clone()),
        WallClock::system(),
    );
    let services = GrpcServices {
        warnings: WarningApi::new(pipeline.publisher.clone(), grpc.api),
        flight_sql: FlightSqlApi::new(sql.clone(), tokens.clone()),
    };
    let grpc = serve_grpc(grpc_addr, services, grpc.tls.as_ref()).await?;
    let bound = BoundAddresses { grpc, http };
    let http_state = HttpState {
        metrics: pipeline.metrics.clone(),
        publisher: pipeline.publisher.clone(),
        sql,
        region,
        tokens,
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_tls_file_is_named() {
        let tls = TlsSettings {
            cert: PathBuf::from("/nonexistent/tianshan-cert.pem"),
            key: PathBuf::from("/nonexistent/tianshan-key.pem"),
        };
        let error = load_identity(&tls).expect_err("no such file");
        assert!(
            error.to_string().contains("/nonexistent/tianshan-cert.pem"),
            "{error}"
        );
    }
}
