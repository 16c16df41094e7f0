//! Binds the gRPC and HTTP listeners and serves them until the process stops. The gRPC server
//! carries `tianshan.v1.WarningService`, Arrow Flight SQL, the peer API
//! (`tianshan.peer.v1.PeerService`), the standard health service (`grpc.health.v1.Health`)
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

use crate::cluster_config::ClusterConfig;
use crate::error::ClusterError;
use crate::flight_sql::FlightSqlApi;
use crate::forwarding::Forwarder;
use crate::http_endpoints::{self, HttpState};
use crate::peer_gather::{PeerGather, PeerTransport};
use crate::peer_service::{NodeIdentity, PeerApi};
use crate::sql_engine::{SnapshotSource, SqlEngine};
use crate::warning_service::{ThisNode, WarningApi, WarningApiSettings};

/// The addresses the servers actually bound (useful with port 0).
#[derive(Debug, Clone, Copy)]
pub struct BoundAddresses {
    /// gRPC listener.
    pub grpc: SocketAddr,
    /// HTTP listener.
    pub http: SocketAddr,
}

/// PEM files of the gRPC server's certificate chain and private key, and of the CA that the
/// peers' certificates chain to.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
    /// CA certificate, PEM, that peers are verified against; needed when there are peers.
    pub ca: Option<PathBuf>,
}

/// What the gRPC API needs besides the pipeline.
pub struct GrpcSettings {
    /// The sign-off desk, the dissemination tree, the token table and the warnings topic.
    pub api: WarningApiSettings,
    /// The node's id and the peers SQL gathers from.
    pub cluster: ClusterConfig,
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

fn read_tls_file(file: &PathBuf) -> Result<Vec<u8>, ClusterError> {
    std::fs::read(file).map_err(|e| ClusterError::TlsFile {
        file: file.clone(),
        detail: e.to_string(),
    })
}

/// Reads the certificate and key of `tls`.
///
/// # Errors
/// [`ClusterError::TlsFile`] naming the file that cannot be read.
fn load_identity(tls: &TlsSettings) -> Result<Identity, ClusterError> {
    Ok(Identity::from_pem(
        read_tls_file(&tls.cert)?,
        read_tls_file(&tls.key)?,
    ))
}

/// Returns how to call the peers: the way this node serves, since the nodes of a cluster share
/// one configuration.
///
/// # Errors
/// [`ClusterError::Config`] when the node serves TLS to peers without a CA to verify them by,
/// [`ClusterError::TlsFile`] naming a CA file that cannot be read.
fn peer_transport(
    tls: Option<&TlsSettings>,
    peers: &[String],
) -> Result<PeerTransport, ClusterError> {
    match tls {
        // Nobody to call: the transport is never used.
        _ if peers.is_empty() => Ok(PeerTransport::Plaintext),
        None => Ok(PeerTransport::Plaintext),
        Some(TlsSettings { ca: Some(ca), .. }) => Ok(PeerTransport::Tls {
            ca_pem: read_tls_file(ca)?,
        }),
        Some(TlsSettings { ca: None, .. }) => Err(ClusterError::Config(
            "node.tls-ca: the nodes serve TLS and cluster.peers is set; peers are called over \
             TLS and need the CA certificate their certificates chain to"
                .to_owned(),
        )),
    }
}

/// The node's own gRPC services.
pub struct GrpcServices {
    /// `tianshan.v1.WarningService`.
    pub warnings: WarningApi,
    /// Arrow Flight SQL; `None` serves none.
    pub flight_sql: Option<FlightSqlApi>,
    /// `tianshan.peer.v1.PeerService`; `None` serves none.
    pub peer: Option<PeerApi>,
}

/// Serves `services`, health and reflection on `listener` in the background.
///
/// # Errors
/// [`ClusterError::Serve`] when the TLS identity is unusable, [`ClusterError::TlsFile`] naming
/// a certificate or key file that cannot be read.
pub async fn serve_grpc(
    listener: TcpListener,
    services: GrpcServices,
    tls: Option<&TlsSettings>,
) -> Result<(), ClusterError> {
    serve_grpc_until(listener, services, tls, std::future::pending()).await
}

/// As [`serve_grpc`], until `stop` completes: then the server stops taking calls, lets the
/// calls in hand finish and closes the listener.
///
/// # Errors
/// As [`serve_grpc`].
pub async fn serve_grpc_until(
    listener: TcpListener,
    services: GrpcServices,
    tls: Option<&TlsSettings>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ClusterError> {
    let addr = listener
        .local_addr()
        .map_or_else(|_| "(unknown)".to_owned(), |addr| addr.to_string());
    let serve_error = |detail: String| ClusterError::Serve {
        addr: addr.clone(),
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
        .add_optional_service(services.flight_sql.map(FlightSqlApi::into_server))
        .add_optional_service(services.peer.map(PeerApi::into_server));
    tokio::spawn(async move {
        if let Err(e) = router
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop)
            .await
        {
            error!(error = %e, "grpc server stopped");
        }
    });
    Ok(())
}

/// Builds the gRPC services of `pipeline`'s node, listening on `grpc_bound`, and the SQL
/// engine behind them. A sharded node with peers forwards acknowledgements, decisions and
/// warnings issued by hand of the threads other nodes own to them, and takes those its peers
/// forward; without peers it handles every request itself.
///
/// # Errors
/// [`ClusterError::Config`] when the peers cannot be called as configured,
/// [`ClusterError::TlsFile`] naming a CA file that cannot be read.
pub fn node_services(
    pipeline: &NodePipeline,
    region: Arc<Region>,
    grpc: GrpcSettings,
    grpc_bound: SocketAddr,
) -> Result<(GrpcServices, SqlEngine), ClusterError> {
    let tokens = grpc.api.tokens.clone();
    let source = SnapshotSource::Live {
        sources: NodeSources::of(pipeline, region),
        clock: WallClock::system(),
    };
    let cluster = &grpc.cluster;
    let peer_timeout = cluster.peer_timeout().map_err(ClusterError::Config)?;
    let other_peers = cluster.other_peers();
    let transport = peer_transport(grpc.tls.as_ref(), &other_peers)?;
    let peers = PeerGather::new(&other_peers, tokens.peer_token(), peer_timeout, &transport)?;
    let sql = SqlEngine::new(source.clone(), peers.clone());
    let identity = NodeIdentity {
        node_id: if cluster.node_id.is_empty() {
            grpc_bound.to_string()
        } else {
            cluster.node_id.clone()
        },
        grpc_address: grpc_bound.to_string(),
        peers: other_peers,
    };
    let ownership = pipeline.ownership_reader();
    let this_node = ThisNode::new(
        pipeline.publisher.clone(),
        grpc.api.sign_off_desk.clone(),
        grpc.api.region_unit.clone(),
    );
    let mut warnings = WarningApi::new(pipeline.publisher.clone(), grpc.api);
    if ownership.is_sharded() && !peers.is_empty() {
        let forwarder = Forwarder::new(identity.node_id.clone(), ownership.clone(), peers);
        warnings = warnings.forwarding_to_owners(forwarder);
    }
    let services = GrpcServices {
        warnings,
        flight_sql: Some(FlightSqlApi::new(sql.clone(), tokens.clone())),
        peer: Some(PeerApi::new(identity, source, tokens).taking_forwarded(this_node, ownership)),
    };
    Ok((services, sql))
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
    let (grpc_listener, grpc_bound) = bind(grpc_addr).await?;
    let tls = grpc.tls.clone();
    let (services, sql) = node_services(pipeline, region.clone(), grpc, grpc_bound)?;
    serve_grpc(grpc_listener, services, tls.as_ref()).await?;
    let grpc = grpc_bound;
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
            ca: None,
        };
        let error = load_identity(&tls).expect_err("no such file");
        assert!(
            error.to_string().contains("/nonexistent/tianshan-cert.pem"),
            "{error}"
        );
    }

    #[test]
    fn peers_are_called_as_the_node_serves_and_under_tls_need_the_ca() {
        let peers = ["tianshan-1.tianshan-peers:50051".to_owned()];
        let without_ca = TlsSettings {
            cert: PathBuf::from("tls.crt"),
            key: PathBuf::from("tls.key"),
            ca: None,
        };
        assert!(matches!(
            peer_transport(None, &peers),
            Ok(PeerTransport::Plaintext)
        ));
        assert!(matches!(
            peer_transport(Some(&without_ca), &[]),
            Ok(PeerTransport::Plaintext)
        ));
        let error = peer_transport(Some(&without_ca), &peers).expect_err("no CA");
        assert!(error.to_string().contains("node.tls-ca"), "{error}");
        let unreadable = TlsSettings {
            ca: Some(PathBuf::from("/nonexistent/tianshan-ca.pem")),
            ..without_ca
        };
        let error = peer_transport(Some(&unreadable), &peers).expect_err("no such file");
        assert!(
            error.to_string().contains("/nonexistent/tianshan-ca.pem"),
            "{error}"
        );
    }
}
