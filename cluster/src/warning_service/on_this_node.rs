//! Reads, acknowledgements and sign-off decisions answered on this node, from the warnings its
//! publisher published and the books and drafts its dissemination tree and sign-off desk
//! hold. The caller is already authenticated: by this node's token table (a call of
//! `WarningService`), or by the peer that received the call and forwarded it here because this
//! node owns the warning (`PeerService.Forward*`) or gathers every node's list
//! (`PeerService.ActiveHere`, `DraftsHere`). What depends on the draft, its department, is
//! checked here, where the draft is.

use ractor::ActorRef;
use tianshan_actors::admin_unit::{AckRequest, AdminUnitMsg};
use tianshan_actors::ask::ask;
use tianshan_actors::sign_off_desk::SignOffDeskMsg;
use tianshan_core::access::{Denied, Operation, Principal};
use tianshan_core::dissemination::acknowledgement::Subject;
use tianshan_core::ids::{RecipientId, WarningId};
use tianshan_core::signoff::{Department, DraftOrigin, DraftScope, DutyOfficer, Submission};
use tianshan_core::warning::WarningEvent;
use tianshan_pipelines::warning_publisher::WarningPublisherMsg;
use tianshan_proto::v1;

use super::requests;
use crate::error::ClusterError;

/// The warning publisher, the sign-off desk and the dissemination tree of this node; cheap to
/// clone.
#[derive(Clone)]
pub struct ThisNode {
    publisher: ActorRef<WarningPublisherMsg>,
    sign_off_desk: ActorRef<SignOffDeskMsg>,
    region_unit: ActorRef<AdminUnitMsg>,
}

impl ThisNode {
    /// Answers from `publisher` and applies requests to `sign_off_desk` and the tree under
    /// `region_unit`.
    pub fn new(
        publisher: ActorRef<WarningPublisherMsg>,
        sign_off_desk: ActorRef<SignOffDeskMsg>,
        region_unit: ActorRef<AdminUnitMsg>,
    ) -> Self {
        Self {
            publisher,
            sign_off_desk,
            region_unit,
        }
    }

    /// Returns the last version of every active warning this node published, in id order.
    ///
    /// # Errors
    /// [`ClusterError::Pipeline`] when the publisher does not answer.
    pub async fn active(&self) -> Result<Vec<WarningEvent>, ClusterError> {
        ask(
            &self.publisher,
            WarningPublisherMsg::Active,
            "list active warnings",
        )
        .await
        .map_err(ClusterError::actor)
    }

    /// Returns the warning `body` names as this node knows it: its latest version, published
    /// or released by the desk, and the version signed.
    ///
    /// # Errors
    /// [`ClusterError::InvalidRequest`] for a blank id, [`ClusterError::UnknownWarning`] when
    /// this node has neither published nor signed it, [`ClusterError::Pipeline`] when the
    /// publisher or the desk does not answer.
    pub async fn get_warning(
        &self,
        body: v1::GetWarningRequest,
    ) -> Result<v1::GetWarningResponse, ClusterError> {
        let id = requests::warning_id(&body.warning_id)?;
        let published = self.active().await?.into_iter().find(|w| w.id == id);
        let signed = ask(
            &self.sign_off_desk,
            |port| SignOffDeskMsg::Approved(id.clone(), port),
            "signed version",
        )
        .await
        .map_err(ClusterError::actor)?;
        let latest = match (&published, &signed) {
            (Some(event), Some(released)) if event.version > released.event.version => event,
            (_, Some(released)) => &released.event,
            (Some(event), None) => event,
            (None, None) => return Err(ClusterError::UnknownWarning(id.to_string())),
        };
        let signed_version = signed.as_ref().map_or(0, |r| r.event.version);
        Ok(v1::GetWarningResponse {
            warning: Some(v1::Warning::from(latest)),
            signed: signed_version == latest.version,
            signed_version,
            signed_message: signed
                .and_then(|released| released.message)
                .unwrap_or_default(),
        })
    }

    /// Returns the drafts pending at this node's desk that `scope` lets the caller see.
    ///
    /// # Errors
    /// [`ClusterError::Pipeline`] when the desk does not answer.
    pub async fn drafts(&self, scope: DraftScope) -> Result<Vec<v1::Draft>, ClusterError> {
        let drafts = ask(
            &self.sign_off_desk,
            |port| SignOffDeskMsg::ListDrafts(scope, port),
            "list drafts",
        )
        .await
        .map_err(ClusterError::actor)?;
        Ok(drafts.iter().map(v1::Draft::from).collect())
    }

    /// Records the acknowledgement `body` of the responsible person `by`.
    ///
    /// # Errors
    /// [`ClusterError::InvalidRequest`] for a blank id or version 0,
    /// [`ClusterError::Acknowledgement`] when the tree refuses it (nothing to acknowledge, not
    /// the addressee), [`ClusterError::Pipeline`] when the tree does not answer.
    pub async fn acknowledge(
        &self,
        by: RecipientId,
        body: v1::AcknowledgeRequest,
    ) -> Result<v1::AcknowledgeResponse, ClusterError> {
        let subject = match body.handover_of.trim() {
            "" => Subject::Warning,
            unreached => Subject::Handover {
                unreached: RecipientId::new(unreached),
            },
        };
        let ack = AckRequest {
            warning: requests::warning_id(&body.warning_id)?,
            version: requests::version(body.version)?,
            addressee: RecipientId::new(body.addressee.trim()),
            subject,
            by,
        };
        let outcome = ask(
            &self.region_unit,
            |port| AdminUnitMsg::Acknowledge(ack, port),
            "acknowledge",
        )
        .await
        .map_err(ClusterError::actor)?
        .map_err(ClusterError::from)?;
        Ok(v1::AcknowledgeResponse {
            outcome: v1::AckOutcome::from(outcome).into(),
        })
    }

    /// Approves the draft `body` names as `officer`, who must be of the draft's department.
    ///
    /// # Errors
    /// [`ClusterError::Denied`] for an officer of another department,
    /// [`ClusterError::InvalidRequest`] for a bad field, [`ClusterError::SignOff`] when the
    /// desk refuses (no such draft, already decided), [`ClusterError::Pipeline`] when the desk
    /// does not answer.
    pub async fn approve(
        &self,
        officer: DutyOfficer,
        body: v1::ApproveRequest,
    ) -> Result<v1::ApproveResponse, ClusterError> {
        let warning = requests::warning_id(&body.warning_id)?;
        self.check_department(&officer, &warning, |draft_department| Operation::Approve {
            draft_department,
        })
        .await?;
        let version = requests::version(body.version)?;
        let edit = body.edit.map(requests::edit).transpose()?;
        ask(
            &self.sign_off_desk,
            |reply| SignOffDeskMsg::Approve {
                warning,
                version,
                officer,
                edit,
                reply,
            },
            "approve",
        )
        .await
        .map_err(ClusterError::actor)?
        .map_err(ClusterError::from)?;
        Ok(v1::ApproveResponse {})
    }

    /// Rejects the draft `body` names as `officer`, who must be of the draft's department.
    ///
    /// # Errors
    /// As [`ThisNode::approve`].
    pub async fn reject(
        &self,
        officer: DutyOfficer,
        body: v1::RejectRequest,
    ) -> Result<v1::RejectResponse, ClusterError> {
        let warning = requests::warning_id(&body.warning_id)?;
        self.check_department(&officer, &warning, |draft_department| Operation::Reject {
            draft_department,
        })
        .await?;
        let version = requests::version(body.version)?;
        ask(
            &self.sign_off_desk,
            |reply| SignOffDeskMsg::Reject {
                warning,
                version,
                officer,
                reason: body.reason,
                reply,
            },
            "reject",
        )
        .await
        .map_err(ClusterError::actor)?
        .map_err(ClusterError::from)?;
        Ok(v1::RejectResponse {})
    }

    /// Issues the warning `body` describes by hand as `officer`, now: a draft of the officer's
    /// department.
    ///
    /// # Errors
    /// [`ClusterError::InvalidRequest`] for a bad field, [`ClusterError::SignOff`] when the
    /// desk refuses it, [`ClusterError::Pipeline`] when the desk does not answer.
    pub async fn issue(
        &self,
        officer: DutyOfficer,
        body: v1::IssueWarningRequest,
    ) -> Result<v1::IssueWarningResponse, ClusterError> {
        let (event, message) = requests::manual_warning(body, requests::now())?;
        let response = v1::IssueWarningResponse {
            warning_id: event.id.to_string(),
            version: event.version,
        };
        let submission = Submission {
            event,
            origin: DraftOrigin::Manual(officer),
            message: Some(message),
        };
        ask(
            &self.sign_off_desk,
            |port| SignOffDeskMsg::Issue(submission, port),
            "issue a warning",
        )
        .await
        .map_err(ClusterError::actor)?
        .map_err(ClusterError::from)?;
        Ok(response)
    }

    /// Returns the id a warning issued by hand now as `body` describes gets (its thread
    /// decides which node owns it).
    ///
    /// # Errors
    /// [`ClusterError::InvalidRequest`] for a bad field.
    pub fn manual_warning_id(body: &v1::IssueWarningRequest) -> Result<WarningId, ClusterError> {
        let (event, _) = requests::manual_warning(body.clone(), requests::now())?;
        Ok(event.id)
    }

    /// Checks that `officer` may decide the pending draft of `warning`: one of its department.
    /// Without such a draft the check passes, and the desk answers that there is none.
    async fn check_department(
        &self,
        officer: &DutyOfficer,
        warning: &WarningId,
        operation: fn(Option<Department>) -> Operation<'static>,
    ) -> Result<(), ClusterError> {
        let drafts = ask(
            &self.sign_off_desk,
            |port| SignOffDeskMsg::ListDrafts(DraftScope::AllDepartments, port),
            "list drafts",
        )
        .await
        .map_err(ClusterError::actor)?;
        let department = drafts
            .iter()
            .find(|draft| &draft.event.id == warning)
            .map(|draft| draft.department);
        Principal::DutyOfficer(officer.clone())
            .permits(operation(department))
            .map_err(|reason| Denied::PermissionDenied { reason }.into())
    }
}
