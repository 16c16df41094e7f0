//! Two sharded nodes against the embedded broker: a responsible person acknowledges a warning
//! and a duty officer approves it at the node that owns its basin and the shard of the tree its
//! township lies in; that node stops, and the node that takes both over carries on from the journaled state (issue 5, "state follows
//! ownership"): its book holds the acknowledgement, so the person is not asked again, and its
//! desk holds the signed version, so no officer has to approve it twice.

use std::time::{Duration, Instant};

use tianshan_actors::admin_unit::{AckRequest, AdminUnitMsg};
use tianshan_actors::ask::ask;
use tianshan_actors::sign_off_desk::SignOffDeskMsg;
use tianshan_core::dissemination::acknowledgement::{AckOutcome, ObligationState, Subject};
use tianshan_core::ids::{OfficerId, RecipientId, WarningId};
use tianshan_core::signoff::{Department, DutyOfficer};
use tianshan_pipelines::state_journal::{rebuild_state, RestoredState};

use crate::deadline::{finishes_within, STORM_TEST_LIMIT};
use crate::forwarding::{
    acknowledgements, books_of, flash_flood, obligation_state, owner_of, publish,
    responsible_person, shard_owner_of, signed_version,
};
use crate::sharded_cluster::start_sharded_nodes;
use crate::storm_on_embedded_broker::{storm_fixture, StormFixture};

const WAIT: Duration = Duration::from_secs(60);

/// Reads the state topic back until `done` holds for it.
async fn wait_for_journal(bootstrap: &str, topic: &str, done: impl Fn(&RestoredState) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
        let journaled = tokio::task::spawn_blocking(move || rebuild_state(&bootstrap, &topic))
            .await
            .expect("the reader runs")
            .expect("the state topic reads");
        if done(&journaled) {
            return;
        }
        assert!(Instant::now() < deadline, "the journal never got there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `person` is acknowledged in a journaled book of `warning`.
fn journaled_acknowledgement(
    state: &RestoredState,
    warning: &WarningId,
    person: &RecipientId,
) -> bool {
    state.books.iter().any(|(key, saved)| {
        key.warning == *warning
            && saved
                .ack
                .obligation(person, &Subject::Warning)
                .is_some_and(|o| matches!(o.state, ObligationState::Acknowledged { .. }))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_taking_over_a_basin_carries_on_from_its_previous_owners_books_and_sign_off() {
    finishes_within(STORM_TEST_LIMIT, async {
        let StormFixture {
            broker: _broker,
            mut settings,
            region,
            ..
        } = storm_fixture();
        settings.kafka.sharded = true;
        let mut nodes = start_sharded_nodes(&settings, &region, 2).await;
        let basin = region
            .basins
            .keys()
            .find(|basin| {
                let area = &flash_flood(&region, basin).area_codes[0];
                owner_of(&nodes, basin) == shard_owner_of(&nodes, area)
            })
            .expect("some node owns a basin and the shard of its first township")
            .clone();
        let owner = owner_of(&nodes, &basin);
        let event = flash_flood(&region, &basin);
        assert_eq!(publish(&nodes, owner, &event).await, owner);

        // A responsible person acknowledges, and the water officer signs, at the owner.
        let head = responsible_person(&nodes[owner], &event.id).await;
        let acknowledged = ask(
            &nodes[owner].dissemination.region_unit,
            |port| {
                AdminUnitMsg::Acknowledge(
                    AckRequest {
                        warning: event.id.clone(),
                        version: 1,
                        addressee: head.clone(),
                        subject: Subject::Warning,
                        by: head.clone(),
                    },
                    port,
                )
            },
            "acknowledge",
        )
        .await
        .expect("the tree answers");
        assert_eq!(acknowledged, Ok(AckOutcome::InTime));
        let approved = ask(
            &nodes[owner].dissemination.desk,
            |reply| SignOffDeskMsg::Approve {
                warning: event.id.clone(),
                version: 1,
                officer: DutyOfficer {
                    id: OfficerId::new("duty-water"),
                    department: Department::WaterResources,
                },
                edit: None,
                reply,
            },
            "approve",
        )
        .await
        .expect("the desk answers");
        assert_eq!(approved, Ok(()));
        let taker = 1 - owner;
        assert_eq!(signed_version(&nodes[taker], &event.id).await, None);
        assert!(books_of(&nodes[taker], &event.id).await.is_empty());

        // Once both are on the state topic, the owner stops.
        let (bootstrap, topic) = (
            settings.kafka.bootstrap_servers.clone(),
            settings.kafka.topics.state.clone(),
        );
        wait_for_journal(&bootstrap, &topic, |state| {
            journaled_acknowledgement(state, &event.id, &head)
                && state
                    .sign_off
                    .as_ref()
                    .and_then(|book| book.approved(&event.id))
                    .is_some()
        })
        .await;
        nodes.remove(owner).stop().await.expect("the owner stops");
        let taker = nodes.pop().expect("the other node");

        // The other node takes the basin over and carries on from what was journaled.
        let deadline = Instant::now() + WAIT;
        loop {
            let seen = (
                taker
                    .ownership()
                    .is_some_and(|owned| owned.basins.contains(&basin)),
                signed_version(&taker, &event.id).await,
                acknowledgements(&taker, &event.id, &head).await,
            );
            if seen == (true, Some(1), 1) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the basin's new owner did not take over its books and sign-off: \
                 (owns the basin, signed version, acknowledgements) = {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let state = obligation_state(&taker, &event.id, &head)
            .await
            .expect("the new owner's book holds the obligation");
        assert!(
            matches!(state, ObligationState::Acknowledged { .. }),
            "acknowledged at the old owner, so not asked again: {state:?}"
        );
        taker.stop().await.expect("the new owner stops");
    })
    .await;
}
