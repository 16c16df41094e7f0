//! The commit a consumer-group member makes as it stops, and which of its failures lose nothing.

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use tracing::warn;

use crate::error::PipelineError;

/// Commits the offsets stored so far. Nothing stored, or a group being re-formed (another
/// member left or joined as this one stops, or the coordinator moved), is not an error: the
/// partitions go to their next owner from the last automatic commit, which reads again what
/// came after it (at least once, as after a crash), so nothing is lost.
///
/// # Errors
/// Returns [`PipelineError::Kafka`] naming `action` for any other failure.
pub(crate) fn commit_at_shutdown<C: ConsumerContext, K: Consumer<C>>(
    consumer: &K,
    action: &'static str,
) -> Result<(), PipelineError> {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
        Err(KafkaError::ConsumerCommit(code)) if group_is_moving(code) => {
            warn!(error = %code, "{action}: not committed, the group is rebalancing; the next owner reads on from the last commit");
            Ok(())
        }
        Err(e) => Err(PipelineError::kafka(action, e)),
    }
}

/// Whether a failed commit only means the group is being re-formed.
fn group_is_moving(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::RebalanceInProgress
            | RDKafkaErrorCode::WaitingForCoordinator
            | RDKafkaErrorCode::NotCoordinator
            | RDKafkaErrorCode::CoordinatorNotAvailable
            | RDKafkaErrorCode::CoordinatorLoadInProgress
            | RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::UnknownMemberId
    )
}
