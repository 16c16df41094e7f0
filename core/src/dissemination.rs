//! Dissemination and forced acknowledgement (叫应), the pure part: which admin units a warning
//! reaches, who is responsible there, when to re-send and escalate, what was already delivered,
//! and how well a warning was covered. No clock is read: every decision takes an [`EventTime`]
//! argument, and every state is serde-serialisable so an actor can persist it and resume its
//! timers after a restart.
//!
//! [`EventTime`]: crate::time::EventTime
//!
//! # Layout
//! - [`tree`]: the admin tree Region → Prefecture → County → Township and the units a warning reaches.
//! - [`recipients`]: the recipient directory: responsible persons, public endpoints, escalation targets.
//! - [`acknowledgement`]: the forced-acknowledgement state machine of one warning version.
//! - [`ledger`]: delivery dedupe keyed by (warning, version, recipient, subject, channel).
//! - [`coverage`]: coverage and timeliness of delivered warnings.
//! - [`shards`]: how a sharded cluster shares the tree out, one shard per prefecture.
//! - [`simulation`]: seeded channel failures and simulated answers for the demo and tests.

pub mod acknowledgement;
pub mod coverage;
pub mod ledger;
pub mod recipients;
pub mod shards;
pub mod simulation;
pub mod tree;

/// Serde for a `BTreeMap` whose keys are structs, written as a list of `[key, value]` pairs
/// (JSON object keys must be strings).
mod map_as_pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<K, V, S>(map: &BTreeMap<K, V>, serializer: S) -> Result<S::Ok, S::Error>
    where
        K: Serialize,
        V: Serialize,
        S: Serializer,
    {
        serializer.collect_seq(map.iter())
    }

    pub(super) fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}
