//! `tianshan.v1.WarningService`: active warnings, subscriptions that resume from a cursor,
//! acknowledgements routed down the dissemination tree, and the sign-off desk (list, approve,
//! reject, issue by hand). Every call is authorized by its bearer token through
//! [`TokenTable::authorize`]; errors become statuses in [`crate::error`].
//!
//! # Layout
//! - [`subscription`]: Subscribe over the warnings topic, with cursors.
//! - [`requests`]: checks of request fields and the warning an officer issues by hand.

mod requests;
mod subscription;

use std::sync::Arc;

use ractor::ActorRef;
use tianshan_actors::admin_unit::{AckRequest, AdminUnitMsg};
use tianshan_actors::ask::ask;
use tianshan_actors::sign_off_desk::SignOffDeskMsg;
use tianshan_core::access::{DenialReason, Denied, Operation, Principal, TokenTable};
use tianshan_core::dissemination::acknowledgement::Subject;
use tianshan_core::ids::{RecipientId, WarningId};
use tianshan_core::signoff::{Department, DraftOrigin, DraftScope, DutyOfficer, Submission};
use tianshan_pipelines::warning_publisher::WarningPublisherMsg;
use tianshan_proto::v1;
use tianshan_proto::v1::warning_service_server::WarningService;
use tonic::{Request, Response, Status};

pub use self::subscription::WarningsTopic;
use self::subscription::{Filter, Subscription};
use crate::error::ClusterError;

/// What the service talks to besides the warning publisher.
pub struct WarningApiSettings {
    /// The sign-off desk: drafts, approvals, rejections, manual warnings.
    pub sign_off_desk: ActorRef<SignOffDeskMsg>,
    /// The region unit at the top of the dissemination tree, where acknowledgements enter.
    pub region_unit: ActorRef<AdminUnitMsg>,
    /// Who each bearer token stands for.
    pub tokens: Arc<TokenTable>,
    /// The warnings topic subscriptions read.
    pub warnings_topic: WarningsTopic,
}

/// The service implementation.
pub struct WarningApi {
    publisher: ActorRef<WarningPublisherMsg>,
    settings: WarningApiSettings,
}

impl WarningApi {
    /// Serves the active warnings of `publisher` and the rest through `settings`.
    pub fn new(publisher: ActorRef<WarningPublisherMsg>, settings: WarningApiSettings) -> Self {
        Self {
            publisher,
            settings,
        }
    }

    /// Authorizes the call carrying `request`'s metadata for `operation`.
    fn authorize<T>(
        &self,
        request: &Request<T>,
        operation: Operation<'_>,
    ) -> Result<Principal, ClusterError> {
        crate::bearer::authorize(&self.settings.tokens, request.metadata(), operation)
    }

    /// Authorizes an approval or rejection of a draft of `warning`: first as a duty officer at
    /// all, so nobody else learns which drafts exist, then against the draft's department.
    async fn authorize_decision<T>(
        &self,
        request: &Request<T>,
        warning: &WarningId,
        operation: fn(Option<Department>) -> Operation<'static>,
    ) -> Result<DutyOfficer, ClusterError> {
        self.authorize(request, operation(None))?;
        let drafts = ask(
            &self.settings.sign_off_desk,
            |port| SignOffDeskMsg::ListDrafts(DraftScope::AllDepartments, port),
            "list drafts",
        )
        .await
        .map_err(ClusterError::actor)?;
        let department = drafts
            .iter()
            .find(|draft| &draft.event.id == warning)
            .map(|draft| draft.department);
        officer(
            self.authorize(request, operation(department))?,
            operation(department),
        )
    }

    async fn active(&self) -> Result<Vec<tianshan_core::warning::WarningEvent>, ClusterError> {
        ask(
            &self.publisher,
            WarningPublisherMsg::Active,
            "list active warnings",
        )
        .await
        .map_err(ClusterError::actor)
    }
}

/// Returns the duty officer a principal stands for; the operations that call it admit only
/// duty officers, so anything else is refused as such.
fn officer(principal: Principal, operation: Operation<'_>) -> Result<DutyOfficer, ClusterError> {
    match principal {
        Principal::DutyOfficer(officer) => Ok(officer),
        _ => Err(Denied::PermissionDenied {
            reason: DenialReason::DutyOfficersOnly {
                operation: operation.name(),
            },
        }
        .into()),
    }
}

fn reaches(event: &tianshan_core::warning::WarningEvent, prefix: &str) -> bool {
    prefix.is_empty()
        || event
            .area_codes
            .iter()
            .any(|code| code.as_str().starts_with(prefix))
}

#[tonic::async_trait]
impl WarningService for WarningApi {
    #[tracing::instrument(skip_all)]
    async fn list_active(
        &self,
        request: Request<v1::ListActiveRequest>,
    ) -> Result<Response<v1::ListActiveResponse>, Status> {
        self.authorize(&request, Operation::ListActive)?;
        let prefix = request.into_inner().area_code_prefix;
        requests::check_prefix(&prefix)?;
        let warnings = self
            .active()
            .await?
            .iter()
            .filter(|w| reaches(w, &prefix))
            .map(v1::Warning::from)
            .collect();
        Ok(Response::new(v1::ListActiveResponse { warnings }))
    }

    type SubscribeStream = Subscription;

    #[tracing::instrument(skip_all)]
    async fn subscribe(
        &self,
        request: Request<v1::SubscribeRequest>,
    ) -> Result<Response<Subscription>, Status> {
        self.authorize(&request, Operation::Subscribe)?;
        let request = request.into_inner();
        requests::check_prefix(&request.area_code_prefix)?;
        let filter = Filter {
            area_code_prefix: request.area_code_prefix,
            hazards: requests::hazards(&request.hazards)?,
            min_level: requests::min_level(request.min_level)?,
        };
        let stream =
            subscription::subscribe(self.settings.warnings_topic.clone(), request.cursor, filter)
                .await?;
        Ok(Response::new(stream))
    }

    #[tracing::instrument(skip_all)]
    async fn get_warning(
        &self,
        request: Request<v1::GetWarningRequest>,
    ) -> Result<Response<v1::GetWarningResponse>, Status> {
        self.authorize(&request, Operation::GetWarning)?;
        let id = requests::warning_id(&request.into_inner().warning_id)?;
        let published = self.active().await?.into_iter().find(|w| w.id == id);
        let signed = ask(
            &self.settings.sign_off_desk,
            |port| SignOffDeskMsg::Approved(id.clone(), port),
            "signed version",
        )
        .await
        .map_err(ClusterError::actor)?;
        let latest = match (&published, &signed) {
            (Some(event), Some(released)) if event.version > released.event.version => event,
            (_, Some(released)) => &released.event,
            (Some(event), None) => event,
            (None, None) => return Err(ClusterError::UnknownWarning(id.to_string()).into()),
        };
        let signed_version = signed.as_ref().map_or(0, |r| r.event.version);
        Ok(Response::new(v1::GetWarningResponse {
            warning: Some(v1::Warning::from(latest)),
            signed: signed_version == latest.version,
            signed_version,
            signed_message: signed
                .and_then(|released| released.message)
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn acknowledge(
        &self,
        request: Request<v1::AcknowledgeRequest>,
    ) -> Result<Response<v1::AcknowledgeResponse>, Status> {
        let addressee = RecipientId::new(request.get_ref().addressee.trim());
        let principal = self.authorize(
            &request,
            Operation::Acknowledge {
                recipient: &addressee,
            },
        )?;
        let Principal::ResponsiblePerson { recipient: by, .. } = principal else {
            return Err(ClusterError::from(Denied::PermissionDenied {
                reason: DenialReason::NotTheAddressee,
            })
            .into());
        };
        let body = request.into_inner();
        let subject = match body.handover_of.trim() {
            "" => Subject::Warning,
            unreached => Subject::Handover {
                unreached: RecipientId::new(unreached),
            },
        };
        let ack = AckRequest {
            warning: requests::warning_id(&body.warning_id)?,
            version: requests::version(body.version)?,
            addressee,
            subject,
            by,
        };
        let outcome = ask(
            &self.settings.region_unit,
            |port| AdminUnitMsg::Acknowledge(ack, port),
            "acknowledge",
        )
        .await
        .map_err(ClusterError::actor)?
        .map_err(ClusterError::from)?;
        Ok(Response::new(v1::AcknowledgeResponse {
            outcome: v1::AckOutcome::from(outcome).into(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_drafts(
        &self,
        request: Request<v1::ListDraftsRequest>,
    ) -> Result<Response<v1::ListDraftsResponse>, Status> {
        let principal = self.authorize(&request, Operation::ListDrafts)?;
        let Some(scope) = principal.draft_scope() else {
            return Err(ClusterError::from(Denied::PermissionDenied {
                reason: DenialReason::OfficersAndAdminsOnly {
                    operation: Operation::ListDrafts.name(),
                },
            })
            .into());
        };
        let drafts = ask(
            &self.settings.sign_off_desk,
            |port| SignOffDeskMsg::ListDrafts(scope, port),
            "list drafts",
        )
        .await
        .map_err(ClusterError::actor)?;
        Ok(Response::new(v1::ListDraftsResponse {
            drafts: drafts.iter().map(v1::Draft::from).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn approve(
        &self,
        request: Request<v1::ApproveRequest>,
    ) -> Result<Response<v1::ApproveResponse>, Status> {
        let warning = requests::warning_id(&request.get_ref().warning_id)?;
        let officer = self
            .authorize_decision(&request, &warning, |draft_department| Operation::Approve {
                draft_department,
            })
            .await?;
        let body = request.into_inner();
        let version = requests::version(body.version)?;
        let edit = body.edit.map(requests::edit).transpose()?;
        ask(
            &self.settings.sign_off_desk,
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
        Ok(Response::new(v1::ApproveResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn reject(
        &self,
        request: Request<v1::RejectRequest>,
    ) -> Result<Response<v1::RejectResponse>, Status> {
        let warning = requests::warning_id(&request.get_ref().warning_id)?;
        let officer = self
            .authorize_decision(&request, &warning, |draft_department| Operation::Reject {
                draft_department,
            })
            .await?;
        let body = request.into_inner();
        let version = requests::version(body.version)?;
        ask(
            &self.settings.sign_off_desk,
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
        Ok(Response::new(v1::RejectResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn issue_warning(
        &self,
        request: Request<v1::IssueWarningRequest>,
    ) -> Result<Response<v1::IssueWarningResponse>, Status> {
        let officer = officer(
            self.authorize(&request, Operation::IssueWarning)?,
            Operation::IssueWarning,
        )?;
        let (event, message) = requests::manual_warning(request.into_inner(), requests::now())?;
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
            &self.settings.sign_off_desk,
            |port| SignOffDeskMsg::Issue(submission, port),
            "issue a warning",
        )
        .await
        .map_err(ClusterError::actor)?
        .map_err(ClusterError::from)?;
        Ok(Response::new(response))
    }
}
