//! The scatter-gather side of SQL across nodes: asks every peer of `[cluster] peers` for its
//! parts of the partial tables at once (`TableSnapshot`, Arrow IPC) and hands them over by
//! table, one partition per peer that answered, in the configured order, together with what
//! each answering peer owns and what went wrong with each peer that did not answer in time,
//! refused the call or sent what does not decode. Whether the answer may go without those
//! peers is the [`crate::sql_engine`]'s call. Peers are called the way the nodes serve gRPC
//! ([`PeerTransport`]): plaintext, or TLS verified against the cluster's CA. The same clients
//! ask the peers what they own and carry requests forwarded to a warning's owner
//! ([`crate::forwarding`]).

use std::collections::BTreeMap;
use std::time::Duration;

use arrow::array::RecordBatch;
use tianshan_proto::peer::v1::peer_service_client::PeerServiceClient;
use tianshan_proto::peer::v1::{self as peer, ClusterViewRequest, TableSnapshotRequest};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::Request;

use crate::arrow_ipc;
use crate::error::ClusterError;
use crate::forwarding::PeerClaim;

/// Tables gathered from peers: by table name, one partition (list of batches) per peer.
pub type GatheredParts = BTreeMap<String, Vec<Vec<RecordBatch>>>;

/// What one gather brought back.
#[derive(Debug, Default)]
pub struct Gathered {
    /// The tables of the peers that answered.
    pub parts: GatheredParts,
    /// Each peer that answered, in configured order.
    pub answered: Vec<PeerPart>,
    /// Each peer that did not answer, in configured order, with what went wrong.
    pub failed: Vec<(String, String)>,
}

/// A peer that answered a gather, and the state its part was taken in.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerPart {
    /// The peer's address.
    pub peer: String,
    /// What it owned when it took its snapshot (`None` when it runs unsharded).
    pub ownership: Option<peer::Ownership>,
    /// Whether its state of what it owns was rebuilt then.
    pub ready: bool,
}

/// One peer's answer: its tables, what it owned and whether it was ready.
type PeerAnswer = (
    Vec<(String, Vec<RecordBatch>)>,
    Option<peer::Ownership>,
    bool,
);

/// How this node calls its peers: the way the nodes of the cluster serve gRPC.
#[derive(Debug, Clone)]
pub enum PeerTransport {
    /// Plaintext HTTP/2.
    Plaintext,
    /// TLS: each peer's certificate must chain to this CA certificate (PEM) and name the host
    /// the peer is called by.
    Tls {
        /// The CA certificate, PEM.
        ca_pem: Vec<u8>,
    },
}

/// Clients of every peer, with the token this node presents.
#[derive(Clone)]
pub struct PeerGather {
    peers: Vec<(String, PeerServiceClient<Channel>)>,
    authorization: MetadataValue<Ascii>,
}

impl PeerGather {
    /// Prepares clients of `peers` (`host:port`) over `transport`; each call may take
    /// `timeout`. Connections are opened on first use and reopened after a failure.
    ///
    /// # Errors
    /// Returns [`ClusterError::Config`] when there are peers but no `peer_token` (no `peer`
    /// row in the token table), or when an address, the token or the CA cannot be used.
    pub fn new(
        peers: &[String],
        peer_token: Option<&str>,
        timeout: Duration,
        transport: &PeerTransport,
    ) -> Result<Self, ClusterError> {
        let token =
            match (peers.is_empty(), peer_token) {
                (_, Some(token)) => token,
                (true, None) => "",
                (false, None) => return Err(ClusterError::Config(
                    "cluster.peers is set, but node.tokens has no row of role peer for the nodes \
                     to present to each other"
                        .to_owned(),
                )),
            };
        let authorization = format!("Bearer {token}")
            .parse()
            .map_err(|_| ClusterError::Config("node.tokens: the peer token is not ASCII".into()))?;
        let peers = peers
            .iter()
            .enumerate()
            .map(|(index, peer)| {
                let unusable = |e: tonic::transport::Error| {
                    ClusterError::Config(format!("cluster.peers[{index}]: {e}"))
                };
                let endpoint = match transport {
                    PeerTransport::Plaintext => {
                        Endpoint::from_shared(format!("http://{peer}")).map_err(unusable)?
                    }
                    PeerTransport::Tls { ca_pem } => {
                        let tls = ClientTlsConfig::new()
                            .ca_certificate(Certificate::from_pem(ca_pem.clone()));
                        Endpoint::from_shared(format!("https://{peer}"))
                            .and_then(|endpoint| endpoint.tls_config(tls))
                            .map_err(unusable)?
                    }
                }
                .connect_timeout(timeout)
                .timeout(timeout);
                Ok((
                    peer.clone(),
                    PeerServiceClient::new(endpoint.connect_lazy()),
                ))
            })
            .collect::<Result<_, ClusterError>>()?;
        Ok(Self {
            peers,
            authorization,
        })
    }

    /// Returns whether there is anyone to gather from.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Asks every peer at once for its parts of the partial tables.
    ///
    /// # Errors
    /// [`ClusterError::Actor`] when a call's task fails; a peer that does not answer is listed
    /// in [`Gathered::failed`].
    #[tracing::instrument(skip_all, fields(peers = self.peers.len()))]
    pub async fn gather(&self) -> Result<Gathered, ClusterError> {
        let calls: Vec<_> = self
            .peers
            .iter()
            .map(|(peer, client)| {
                let (client, authorization) = (client.clone(), self.authorization.clone());
                (
                    peer.clone(),
                    tokio::spawn(snapshot_of(client, authorization)),
                )
            })
            .collect();
        let mut gathered = Gathered::default();
        for (peer, call) in calls {
            match call.await.map_err(ClusterError::actor)? {
                Ok((tables, ownership, ready)) => {
                    for (name, batches) in tables {
                        gathered.parts.entry(name).or_default().push(batches);
                    }
                    gathered.answered.push(PeerPart {
                        peer,
                        ownership,
                        ready,
                    });
                }
                Err(detail) => gathered.failed.push((peer, detail)),
            }
        }
        Ok(gathered)
    }
}

impl PeerGather {
    /// Asks every peer at once what it owns; returns, in configured order, each peer's
    /// basin-updates partitions or what went wrong asking it. A peer running unsharded claims
    /// nothing.
    #[tracing::instrument(skip_all, fields(peers = self.peers.len()))]
    pub async fn ownership_claims(&self) -> Vec<PeerClaim> {
        let calls: Vec<_> =
            self.peers
                .iter()
                .map(|(peer, client)| {
                    let mut client = client.clone();
                    let request = self.authorized(ClusterViewRequest {});
                    let peer = peer.clone();
                    let call = tokio::spawn(async move {
                        let view = client.cluster_view(request).await.map_err(|status| {
                            format!("{:?}: {}", status.code(), status.message())
                        })?;
                        Ok(view
                            .into_inner()
                            .ownership
                            .map(|owned| owned.basin_update_partitions)
                            .unwrap_or_default())
                    });
                    (peer, call)
                })
                .collect();
        let mut claims = Vec::with_capacity(calls.len());
        for (peer, call) in calls {
            let partitions = call
                .await
                .unwrap_or_else(|e| Err(format!("the call did not finish: {e}")));
            claims.push(PeerClaim { peer, partitions });
        }
        claims
    }

    /// Returns a client of `peer` and `message` as a request carrying this node's peer token.
    ///
    /// # Errors
    /// [`ClusterError::Config`] when `peer` is not one of the configured peers.
    pub(crate) fn request_to<T>(
        &self,
        peer: &str,
        message: T,
    ) -> Result<(PeerServiceClient<Channel>, Request<T>), ClusterError> {
        let (_, client) = self
            .peers
            .iter()
            .find(|(address, _)| address == peer)
            .ok_or_else(|| ClusterError::Config(format!("{peer} is not in cluster.peers")))?;
        Ok((client.clone(), self.authorized(message)))
    }

    fn authorized<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        request
    }
}

/// Asks one peer for its tables; the error says what went wrong with it.
async fn snapshot_of(
    mut client: PeerServiceClient<Channel>,
    authorization: MetadataValue<Ascii>,
) -> Result<PeerAnswer, String> {
    let mut request = Request::new(TableSnapshotRequest { tables: Vec::new() });
    request
        .metadata_mut()
        .insert("authorization", authorization);
    let answer = client
        .table_snapshot(request)
        .await
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))?;
    let answer = answer.into_inner();
    let tables = answer
        .tables
        .into_iter()
        .map(|table| {
            let batches = arrow_ipc::decode(&table.arrow_ipc_stream)
                .map_err(|e| format!("table {} does not decode: {e}", table.name))?;
            Ok((table.name, batches))
        })
        .collect::<Result<_, String>>()?;
    Ok((tables, answer.ownership, answer.ready))
}
