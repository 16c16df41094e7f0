//! The people of the demo, simulated: duty officers who sign every draft of their department
//! shortly after it arrives, and responsible persons who answer the app's forced call after a
//! seeded delay, or never (a seeded share stays silent, so re-sends and handovers show). Both act
//! only through the node's own interfaces (the sign-off desk and the dissemination tree), as the
//! gRPC API would.

use std::collections::BTreeSet;
use std::time::Duration;

use tianshan_actors::admin_unit::{AckRequest, AdminUnitMsg};
use tianshan_actors::ask::ask;
use tianshan_actors::sign_off_desk::SignOffDeskMsg;
use tianshan_core::dissemination::simulation::SimulatedAnswers;
use tianshan_core::ids::{OfficerId, WarningId};
use tianshan_core::signoff::{DraftScope, DutyOfficer};
use tianshan_pipelines::dissemination_stage::DisseminationStage;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tracing::warn;

/// How often the simulated officers look at their desks.
const DESK_ROUNDS: Duration = Duration::from_millis(500);

/// Starts the simulated duty officers: each round, every pending draft is approved by an
/// officer of its department.
pub fn start_duty_officers(stage: &DisseminationStage) -> JoinHandle<()> {
    let desk = stage.desk.clone();
    tokio::spawn(async move {
        let mut decided: BTreeSet<(WarningId, u32)> = BTreeSet::new();
        loop {
            tokio::time::sleep(DESK_ROUNDS).await;
            let drafts = match ask(
                &desk,
                |port| SignOffDeskMsg::ListDrafts(DraftScope::AllDepartments, port),
                "list drafts",
            )
            .await
            {
                Ok(drafts) => drafts,
                Err(_) => return,
            };
            for draft in drafts {
                let key = (draft.event.id.clone(), draft.event.version);
                if !decided.insert(key) {
                    continue;
                }
                let officer = DutyOfficer {
                    id: OfficerId::new(format!("demo-duty-{}", draft.department.name())),
                    department: draft.department,
                };
                let result = ask(
                    &desk,
                    |reply| SignOffDeskMsg::Approve {
                        warning: draft.event.id.clone(),
                        version: draft.event.version,
                        officer,
                        edit: None,
                        reply,
                    },
                    "approve",
                )
                .await;
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => warn!(error = %e, "demo officer's approval refused"),
                    Err(_) => return,
                }
            }
        }
    })
}

/// Starts the simulated responsible persons: every person reached on the app answers after a
/// delay drawn from `answers`, or not at all.
pub fn start_responders(stage: &DisseminationStage, answers: SimulatedAnswers) -> JoinHandle<()> {
    let mut deliveries = stage.app.subscribe();
    let region_unit = stage.region_unit.clone();
    tokio::spawn(async move {
        loop {
            let delivery = match deliveries.recv().await {
                Ok(delivery) => delivery,
                Err(RecvError::Lagged(missed)) => {
                    warn!(missed, "demo responders fell behind the app stream");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let message = delivery.message;
            if !message.recipient.is_person() {
                continue;
            }
            let key = &message.delivery.key;
            let Some(delay_ms) = answers.answer_delay_ms(&key.recipient, &key.subject) else {
                continue;
            };
            let request = AckRequest {
                warning: key.warning.clone(),
                version: key.version,
                addressee: key.recipient.clone(),
                subject: key.subject.clone(),
                by: key.recipient.clone(),
            };
            let region_unit = region_unit.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay_ms.unsigned_abs())).await;
                let answer = ask(
                    &region_unit,
                    |port| AdminUnitMsg::Acknowledge(request, port),
                    "acknowledge",
                )
                .await;
                if let Ok(Err(e)) = answer {
                    warn!(error = %e, "demo acknowledgement refused");
                }
            });
        }
    })
}
