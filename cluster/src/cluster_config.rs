//! The `[cluster]` section: this node's id and the peers SQL queries gather from.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tianshan_core::time::parse_duration_ms;

/// Who this node is and which other nodes it gathers SQL tables from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's id in the cluster view; empty: the gRPC address it listens on.
    #[serde(default)]
    pub node_id: String,
    /// gRPC addresses (`host:port`) of the nodes; a SQL query gathers the other nodes' parts of
    /// the partial tables and fails when they miss part of the state (unsharded: any peer not
    /// answering; sharded: a partition no answering node owns), and a sharded node forwards
    /// acknowledgements and sign-off decisions of the warnings it does not own to the one
    /// that does. The list may name this node too
    /// (one list for every node, as the Helm chart writes it): an address whose host is
    /// `node-id`, or starts with `node-id.`, is this node and is not called. Empty: a single
    /// node. Calls carry the
    /// token of the first `peer` row of `node.tokens`; they use TLS, verified against `node.tls-ca`,
    /// when the node serves TLS, and plaintext otherwise.
    #[serde(default)]
    pub peers: Vec<String>,
    /// How long a peer has to answer one table snapshot, e.g. `"5s"`.
    #[serde(default = "default_peer_timeout")]
    pub peer_timeout: String,
}

fn default_peer_timeout() -> String {
    "5s".to_owned()
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_id: String::new(),
            peers: Vec::new(),
            peer_timeout: default_peer_timeout(),
        }
    }
}

impl ClusterConfig {
    /// Checks every peer address and the timeout.
    ///
    /// # Errors
    /// Returns a message naming the field (`cluster.peers[i]`, `cluster.peer-timeout`).
    pub fn validate(&self) -> Result<(), String> {
        for (index, peer) in self.peers.iter().enumerate() {
            let port = peer
                .rsplit_once(':')
                .filter(|(host, _)| !host.is_empty() && !host.contains('/'))
                .and_then(|(_, port)| port.parse::<u16>().ok())
                .filter(|port| *port > 0);
            if port.is_none() {
                return Err(format!(
                    "cluster.peers[{index}]: `{peer}` is not a host:port address"
                ));
            }
            if self.peers[..index].contains(peer) {
                return Err(format!("cluster.peers[{index}]: `{peer}` is listed twice"));
            }
        }
        self.peer_timeout()?;
        Ok(())
    }

    /// Returns the peers to gather from: `peers` without this node's own address.
    pub fn other_peers(&self) -> Vec<String> {
        self.peers
            .iter()
            .filter(|peer| !self.is_this_node(peer))
            .cloned()
            .collect()
    }

    fn is_this_node(&self, peer: &str) -> bool {
        if self.node_id.is_empty() {
            return false;
        }
        let host = peer.rsplit_once(':').map_or(peer, |(host, _)| host);
        host == self.node_id
            || host
                .strip_prefix(self.node_id.as_str())
                .is_some_and(|domain| domain.starts_with('.'))
    }

    /// Returns how long a peer has to answer.
    ///
    /// # Errors
    /// Returns a message naming `cluster.peer-timeout` when it is not a positive duration.
    pub fn peer_timeout(&self) -> Result<Duration, String> {
        match parse_duration_ms(&self.peer_timeout) {
            Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms.unsigned_abs())),
            Ok(ms) => Err(format!(
                "cluster.peer-timeout must be positive, got {ms} ms"
            )),
            Err(e) => Err(format!("cluster.peer-timeout: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_peers(peers: &[&str]) -> ClusterConfig {
        ClusterConfig {
            peers: peers.iter().map(|peer| (*peer).to_owned()).collect(),
            ..ClusterConfig::default()
        }
    }

    #[test]
    fn peers_are_host_and_port_and_the_bad_one_is_named() {
        assert_eq!(ClusterConfig::default().validate(), Ok(()));
        assert_eq!(
            with_peers(&["tianshan-1.tianshan:50051", "10.0.0.7:50051", "[::1]:50051"]).validate(),
            Ok(())
        );
        for (bad, why) in [
            ("tianshan-1", "is not a host:port"),
            (":50051", "is not a host:port"),
            ("node:0", "is not a host:port"),
            ("http://node:50051", "is not a host:port"),
            ("node:50051", "is listed twice"),
        ] {
            let error = with_peers(&["node:50051", bad]).validate().expect_err(bad);
            assert!(error.starts_with("cluster.peers[1]"), "{error}");
            assert!(error.contains(why), "{error}");
        }
        let slow = ClusterConfig {
            peer_timeout: "soon".to_owned(),
            ..ClusterConfig::default()
        };
        assert!(slow
            .validate()
            .expect_err("not a duration")
            .starts_with("cluster.peer-timeout"));
    }

    #[test]
    fn one_list_serves_every_node_each_leaving_itself_out() {
        let all = [
            "warn-tianshan-0.warn-tianshan-peers.hazards.svc:50051",
            "warn-tianshan-1.warn-tianshan-peers.hazards.svc:50051",
            "warn-tianshan-10.warn-tianshan-peers.hazards.svc:50051",
        ];
        let as_node = |node_id: &str| ClusterConfig {
            node_id: node_id.to_owned(),
            ..with_peers(&all)
        };
        assert_eq!(as_node("warn-tianshan-1").other_peers(), [all[0], all[2]]);
        assert_eq!(as_node("warn-tianshan-10").other_peers(), [all[0], all[1]]);
        assert_eq!(
            as_node("").other_peers(),
            all,
            "no id: every peer is another node"
        );
        let by_address = ClusterConfig {
            node_id: "10.0.0.7".to_owned(),
            ..with_peers(&["10.0.0.7:50051", "10.0.0.70:50051"])
        };
        assert_eq!(by_address.other_peers(), ["10.0.0.70:50051"]);
    }
}
