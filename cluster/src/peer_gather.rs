//! The scatter-gather side of SQL and of the lists any node answers: asks every peer of
//! `[cluster] peers` at once for its parts of the partial tables (`TableSnapshot`, Arrow IPC),
//! handed over by table, one partition per peer that answered, in the configured order, or
//! for its active warnings or pending drafts (`ActiveHere`, `DraftsHere`), together with what
//! each answering peer owns and what went wrong with each peer that did not answer in time,
//! refused the call or sent what does not decode. Whether the answer may go without those
//! peers is [`crate::whole_answer`]'s call. Peers are called the way the nodes serve gRPC
//! ([`PeerTransport`]): plaintext, or TLS verified against the cluster's CA. The same clients
//! ask the peers what they own and carry requests forwarded to a warning's owner
//! ([`crate::forwarding`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use arrow::array::RecordBatch;
use tianshan_core::signoff::Department;
use tianshan_proto::peer::v1::peer_service_client::PeerServiceClient;
use tianshan_proto::peer::v1::{
    self as peer, ActiveHereRequest, ClusterViewRequest, DraftsHereRequest,
    ForwardGetWarningRequest, TableSnapshotRequest,
};
use tianshan_proto::v1;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

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

/// One peer's answer to a question of the lists, with what it owned and whether it was ready.
type OwnersAnswer<T> = (T, Option<peer::Ownership>, bool);

/// What every peer said to one question of the lists any node answers.
#[derive(Debug)]
pub struct PeerAnswers<T> {
    /// Each peer that answered, in configured order, with its answer.
    pub answered: Vec<(PeerPart, T)>,
    /// Each peer that did not answer, in configured order, with what went wrong.
    pub failed: Vec<(String, String)>,
}

impl<T> PeerAnswers<T> {
    /// Sorts `answers` (each with what the peer owned and whether it was ready) into those
    /// that came and those that did not.
    fn of(answers: Vec<(String, Result<OwnersAnswer<T>, String>)>) -> Self {
        let mut sorted = PeerAnswers {
            answered: Vec::new(),
            failed: Vec::new(),
        };
        for (peer, answer) in answers {
            match answer {
                Ok((answer, ownership, ready)) => sorted.answered.push((
                    PeerPart {
                        peer,
                        ownership,
                        ready,
                    },
                    answer,
                )),
                Err(detail) => sorted.failed.push((peer, detail)),
            }
        }
        sorted
    }

    /// The peers that answered, with the state their answers were taken in.
    pub fn parts(&self) -> Vec<PeerPart> {
        self.answered.iter().map(|(part, _)| part.clone()).collect()
    }
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
    #[tracing::instrument(skip_all, fields(peers = self.peers.len()))]
    pub async fn gather(&self) -> Gathered {
        let mut gathered = Gathered::default();
        for (peer, answer) in self.ask_each(snapshot_of).await {
            match answer {
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
        gathered
    }

    /// Asks every peer at once what it owns; returns, in configured order, each peer's
    /// basin-updates partitions or what went wrong asking it. A peer running unsharded claims
    /// nothing.
    #[tracing::instrument(skip_all, fields(peers = self.peers.len()))]
    pub async fn ownership_claims(&self) -> Vec<PeerClaim> {
        self.ask_each(|mut client, authorization| async move {
            let view = client
                .cluster_view(with_token(ClusterViewRequest {}, authorization))
                .await
                .map_err(said)?;
            Ok(view
                .into_inner()
                .ownership
                .map(|owned| owned.basin_update_partitions)
                .unwrap_or_default())
        })
        .await
        .into_iter()
        .map(|(peer, partitions)| PeerClaim { peer, partitions })
        .collect()
    }

    /// Asks every peer at once for the warning `body` names, as its desk knows it, in the name of
    /// node `received_by`; a peer without it answers `None`.
    #[tracing::instrument(skip_all, fields(peers = self.peers.len()))]
    pub async fn warning_anywhere(
        &self,
        body: v1::GetWarningRequest,
        received_by: String,
    ) -> Vec<(String, Result<Option<v1::GetWarningResponse>, String>)> {
        self.ask_each(|mut client, authorization| {
            let message = ForwardGetWarningRequest {
                request: Some(body.clone()),
                received_by: received_by.clone(),
            };
            async move {
                match client
                    .forward_get_warning(with_token(message, authorization))
                    .await
                {
                    Ok(answer) => Ok(Some(answer.into_inner())),
                    Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
                    Err(status) => Err(said(status)),
                }
            }
        })
        .await
    }

    /// Asks every peer at once for the active warnings it published.
    #[tracing::instrument(skip_all, fields(peers = self.peers.len()))]
    pub async fn active_warnings(&self) -> PeerAnswers<Vec<v1::Warning>> {
        let answers = self
            .ask_each(|mut client, authorization| async move {
                let answer = client
                    .active_here(with_token(ActiveHereRequest {}, authorization))
                    .await
                    .map_err(said)?
                    .into_inner();
                Ok((answer.warnings, answer.ownership, answer.ready))
            })
            .await;
        PeerAnswers::of(answers)
    }

    /// Asks every peer at once for the drafts pending at its desk, of `department` or, with
    /// `None`, of every department.
    #[tracing::instrument(skip_all, fields(peers = self.peers.len()))]
    pub async fn drafts(&self, department: Option<Department>) -> PeerAnswers<Vec<v1::Draft>> {
        let department = department.map_or(String::new(), |d| d.name().to_owned());
        let answers = self
            .ask_each(|mut client, authorization| {
                let request = with_token(
                    DraftsHereRequest {
                        department: department.clone(),
                    },
                    authorization,
                );
                async move {
                    let answer = client
                        .drafts_here(request)
                        .await
                        .map_err(said)?
                        .into_inner();
                    Ok((answer.drafts, answer.ownership, answer.ready))
                }
            })
            .await;
        PeerAnswers::of(answers)
    }

    /// Makes `call` to every peer at once, with a client of it and this node's peer token;
    /// returns each peer's answer, or what went wrong, in configured order.
    async fn ask_each<T, Answer>(
        &self,
        call: impl Fn(PeerServiceClient<Channel>, MetadataValue<Ascii>) -> Answer,
    ) -> Vec<(String, Result<T, String>)>
    where
        Answer: Future<Output = Result<T, String>> + Send + 'static,
        T: Send + 'static,
    {
        let calls: Vec<_> = self
            .peers
            .iter()
            .map(|(peer, client)| {
                let call = call(client.clone(), self.authorization.clone());
                (peer.clone(), tokio::spawn(call))
            })
            .collect();
        let mut answers = Vec::with_capacity(calls.len());
        for (peer, call) in calls {
            let answer = call
                .await
                .unwrap_or_else(|e| Err(format!("the call did not finish: {e}")));
            answers.push((peer, answer));
        }
        answers
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
        with_token(message, self.authorization.clone())
    }
}

/// `message` as a request carrying `authorization`.
fn with_token<T>(message: T, authorization: MetadataValue<Ascii>) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", authorization);
    request
}

/// What a peer's refusal or failure said.
fn said(status: Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

/// Asks one peer for its tables; the error says what went wrong with it.
async fn snapshot_of(
    mut client: PeerServiceClient<Channel>,
    authorization: MetadataValue<Ascii>,
) -> Result<PeerAnswer, String> {
    let request = with_token(TableSnapshotRequest { tables: Vec::new() }, authorization);
    let answer = client.table_snapshot(request).await.map_err(said)?;
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
