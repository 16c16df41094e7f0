//! The shards of the dissemination tree on a sharded node: which basin-updates partition carries
//! each shard's releases (its owner delivers them, holds their acknowledgement books and answers
//! their acknowledgements), and the releases a node applies to its tree. A partition gained in a
//! rebalance is re-read from the start of its log; its releases are held until the re-read is
//! done and then only the newest version of each warning is replayed
//! (`tianshan_core::dissemination::shards::releases_to_replay`), after the books journaled of
//! the shard were taken over, so nothing already acknowledged is asked again and no outdated
//! version is sent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ractor::ActorRef;
use tianshan_actors::admin_unit::{AdminUnitMsg, Dissemination, Release};
use tianshan_core::dissemination::shards::{
    every_shard, releases_to_replay, shard_of, ShardLogEntry,
};
use tianshan_core::ids::{AreaCode, RecipientId, WarningId};
use tianshan_core::signoff::{Audience, ReleasedWarning};
use tracing::info;

use crate::basin_updates::{shard_record_key, BasinUpdatesWriter};
use crate::error::PipelineError;
use crate::model_actors::actor_error;

/// The basin-updates partition of every shard of the dissemination tree.
#[derive(Clone)]
pub struct ShardPartitions {
    shared: Arc<Dissemination>,
    by_shard: BTreeMap<AreaCode, i32>,
}

impl ShardPartitions {
    /// The partitions `writer` sends the shards of `shared`'s tree to.
    pub fn new(writer: &BasinUpdatesWriter, shared: Arc<Dissemination>) -> Self {
        let by_shard = every_shard(&shared.tree)
            .into_iter()
            .map(|shard| {
                let partition = writer.partition_of(&shard_record_key(&shard));
                (shard, partition)
            })
            .collect();
        Self { shared, by_shard }
    }

    /// The partition of the shard `unit` lies in.
    pub fn of_unit(&self, unit: &AreaCode) -> Option<i32> {
        self.by_shard
            .get(&shard_of(&self.shared.tree, unit))
            .copied()
    }

    /// The partition of the shard whose books hold `recipient`'s obligations; `None` for a
    /// recipient not in the directory.
    pub fn of_recipient(&self, recipient: &RecipientId) -> Option<i32> {
        self.of_unit(&self.shared.directory.get(recipient)?.unit)
    }

    /// The shards whose releases land on `partitions`.
    pub fn shards_on(&self, partitions: &BTreeSet<i32>) -> BTreeSet<AreaCode> {
        self.by_shard
            .iter()
            .filter(|(_, partition)| partitions.contains(partition))
            .map(|(shard, _)| shard.clone())
            .collect()
    }
}

/// A release or withdrawal of one shard, as read from the basin-updates topic.
pub enum ShardRecord {
    /// A version released to the shard.
    Release {
        /// The version.
        warning: Arc<ReleasedWarning>,
        /// Who gets it.
        audience: Audience,
        /// The shard's recipients, by the unit they are filed under.
        targets: BTreeMap<AreaCode, Vec<RecipientId>>,
    },
    /// A version withdrawn.
    Withdraw {
        /// The warning.
        warning: WarningId,
        /// The version.
        version: u32,
    },
}

impl ShardRecord {
    fn log_entry(&self) -> ShardLogEntry<'_> {
        match self {
            ShardRecord::Release { warning, .. } => {
                ShardLogEntry::Release(&warning.event.id, warning.event.version)
            }
            ShardRecord::Withdraw { warning, version } => {
                ShardLogEntry::Withdraw(warning, *version)
            }
        }
    }
}

/// Applies the releases of the shards a node owns to its tree.
pub struct ShardReleases {
    partitions: ShardPartitions,
    tree: ActorRef<AdminUnitMsg>,
    /// Per partition being re-read, its shard records so far.
    rereading: BTreeMap<i32, Vec<ShardRecord>>,
}

impl ShardReleases {
    /// Applies to `tree` the releases of the shards of `partitions`.
    pub fn new(partitions: ShardPartitions, tree: ActorRef<AdminUnitMsg>) -> Self {
        Self {
            partitions,
            tree,
            rereading: BTreeMap::new(),
        }
    }

    /// Starts over the shards of the partitions that `moved` (given up, or gained and about to
    /// be re-read): their units drop their books, and what was held of a partition re-read is
    /// dropped.
    ///
    /// # Errors
    /// [`PipelineError::Actor`] when the tree does not answer.
    pub async fn forget(&mut self, moved: &BTreeSet<i32>) -> Result<(), PipelineError> {
        self.rereading
            .retain(|partition, _| !moved.contains(partition));
        let shards = self.partitions.shards_on(moved);
        if shards.is_empty() {
            return Ok(());
        }
        let forgotten = crate::model_actors::ask(
            &self.tree,
            |port| AdminUnitMsg::Forget(Arc::new(shards), port),
            "forget shards of the tree",
        )
        .await?;
        info!(
            shards = forgotten,
            "shards of the dissemination tree that moved start over"
        );
        Ok(())
    }

    /// Holds a record of `partition` read while its log is re-read.
    pub fn hold(&mut self, partition: i32, record: ShardRecord) {
        self.rereading.entry(partition).or_default().push(record);
    }

    /// Replays what was held of every partition re-read: the newest release of each warning.
    ///
    /// # Errors
    /// [`PipelineError::Actor`] when the tree is gone.
    pub fn replay_held(&mut self) -> Result<(), PipelineError> {
        let partitions: Vec<i32> = self.rereading.keys().copied().collect();
        for partition in partitions {
            self.replay(partition)?;
        }
        Ok(())
    }

    /// Applies a record of `partition` read live, after replaying what was held of the
    /// partition's re-read.
    ///
    /// # Errors
    /// [`PipelineError::Actor`] when the tree is gone.
    pub fn apply(&mut self, partition: i32, record: ShardRecord) -> Result<(), PipelineError> {
        self.replay(partition)?;
        self.send(record)
    }

    fn replay(&mut self, partition: i32) -> Result<(), PipelineError> {
        let Some(held) = self.rereading.remove(&partition) else {
            return Ok(());
        };
        let log: Vec<ShardLogEntry<'_>> = held.iter().map(ShardRecord::log_entry).collect();
        let replayed: BTreeSet<usize> = releases_to_replay(&log).into_iter().collect();
        info!(
            partition,
            read = held.len(),
            replayed = replayed.len(),
            "shard releases re-read: replaying the newest version of each warning"
        );
        for (position, record) in held.into_iter().enumerate() {
            if replayed.contains(&position) {
                self.send(record)?;
            }
        }
        Ok(())
    }

    fn send(&self, record: ShardRecord) -> Result<(), PipelineError> {
        let msg = match record {
            ShardRecord::Release {
                warning,
                audience,
                targets,
            } => AdminUnitMsg::Release(Arc::new(Release::reaching(
                &self.partitions.shared.tree,
                warning,
                audience,
                targets,
            ))),
            ShardRecord::Withdraw { warning, version } => {
                AdminUnitMsg::Withdraw { warning, version }
            }
        };
        self.tree
            .cast(msg)
            .map_err(|e| actor_error("the dissemination tree", e))
    }
}
