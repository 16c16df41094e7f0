//! The release router of a sharded node: where its sign-off desk sends what it releases. It splits
//! each release into one part per shard of the dissemination tree it reaches
//! (`tianshan_core::dissemination::shards`) and writes each part to the basin-updates topic under
//! the shard's key, so the node owning that partition delivers it, whichever node signed it. A
//! withdrawal goes to every shard.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tianshan_actors::admin_unit::{Dissemination, TreeEntry};
use tianshan_core::dissemination::shards::{every_shard, split_by_shard};
use tracing::{debug, error};

use crate::basin_updates::{shard_record_key, BasinUpdate, BasinUpdatesWriter};

/// Start-up arguments of [`ReleaseRouter`].
pub struct ReleaseRouterArgs {
    /// The tree's shared data (the tree the shards are cut from).
    pub shared: Arc<Dissemination>,
    /// The writer of the basin-updates topic.
    pub writer: BasinUpdatesWriter,
}

/// The actor splitting releases by shard.
pub struct ReleaseRouter;

impl Actor for ReleaseRouter {
    type Msg = TreeEntry;
    type State = ReleaseRouterArgs;
    type Arguments = ReleaseRouterArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<TreeEntry>,
        args: ReleaseRouterArgs,
    ) -> Result<ReleaseRouterArgs, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _me: ActorRef<TreeEntry>,
        entry: TreeEntry,
        st: &mut ReleaseRouterArgs,
    ) -> Result<(), ActorProcessingErr> {
        let tree = &st.shared.tree;
        let (warning, version, records) = match entry {
            TreeEntry::Release(release) => {
                let event = &release.warning.event;
                let records: Vec<(Option<i32>, String, BasinUpdate)> =
                    split_by_shard(tree, &release.targets)
                        .into_iter()
                        .map(|(shard, targets)| {
                            (
                                None,
                                shard_record_key(&shard),
                                BasinUpdate::ShardRelease {
                                    shard,
                                    warning: (*release.warning).clone(),
                                    audience: release.audience,
                                    targets,
                                },
                            )
                        })
                        .collect();
                (event.id.clone(), event.version, records)
            }
            TreeEntry::Withdraw { warning, version } => {
                let records = every_shard(tree)
                    .into_iter()
                    .map(|shard| {
                        (
                            None,
                            shard_record_key(&shard),
                            BasinUpdate::ShardWithdraw {
                                shard,
                                warning: warning.clone(),
                                version,
                            },
                        )
                    })
                    .collect();
                (warning, version, records)
            }
        };
        match st.writer.write(&records).await {
            Ok(()) => {
                debug!(%warning, version, shards = records.len(), "sent to the shards of the tree");
            }
            Err(e) => {
                error!(%warning, version, error = %e, "a release did not reach the shards of the tree: their recipients do not get this version");
            }
        }
        Ok(())
    }
}
