//! `tianshan.v1.WarningService`: active warnings, subscriptions that resume from a cursor,
//! acknowledgements routed down the dissemination tree, and the sign-off desk (list, approve,
//! reject, issue by hand). Every call is authorized by its bearer token through
//! [`TokenTable::authorize`]; errors become statuses in [`crate::error`]. A sharded node with
//! peers answers for the whole cluster: it lists every node's active warnings and drafts
//! ([`cluster_lists`]), and forwards a read, acknowledgement, approval or rejection of a
//! warning another node owns, and a warning issued by hand for a basin or chain another node
//! owns, to that node ([`crate::forwarding`]) and answers with the owner's answer.
//!
//! # Layout
//! - [`subscription`]: Subscribe over the warnings topic, with cursors.
//! - [`requests`]: checks of request fields and the warning an officer issues by hand.
//! - [`on_this_node`]: reads, acknowledgements and decisions answered by this node's
//!   publisher, tree and desk.
//! - [`cluster_lists`]: the active warnings and drafts of every node, merged.

mod cluster_lists;
mod on_this_node;
mod requests;
mod subscription;

use std::sync::Arc;

use ractor::ActorRef;
use tianshan_actors::admin_unit::AdminUnitMsg;
use tianshan_actors::sign_off_desk::SignOffDeskMsg;
use tianshan_core::access::{DenialReason, Denied, Operation, Principal, TokenTable};
use tianshan_core::ids::RecipientId;
use tianshan_core::signoff::DutyOfficer;
use tianshan_pipelines::warning_publisher::WarningPublisherMsg;
use tianshan_proto::v1;
use tianshan_proto::v1::warning_service_server::WarningService;
use tonic::{Request, Response, Status};

pub use self::on_this_node::ThisNode;
pub use self::subscription::WarningsTopic;
use self::subscription::{Filter, Subscription};
use crate::error::ClusterError;
use crate::forwarding::{obligation_holder, Forwarder, Route};

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
    settings: WarningApiSettings,
    this_node: ThisNode,
    /// Sharded: where requests about the warnings of other nodes go; `None` handles every
    /// request here.
    forwarder: Option<Forwarder>,
}

impl WarningApi {
    /// Serves the active warnings of `publisher` and the rest through `settings`, handling
    /// every acknowledgement and decision on this node.
    pub fn new(publisher: ActorRef<WarningPublisherMsg>, settings: WarningApiSettings) -> Self {
        Self {
            this_node: ThisNode::new(
                publisher,
                settings.sign_off_desk.clone(),
                settings.region_unit.clone(),
            ),
            settings,
            forwarder: None,
        }
    }

    /// Lists every node's warnings and drafts, and forwards reads, acknowledgements and
    /// decisions of warnings other nodes own, through `forwarder` (a sharded node).
    pub fn forwarding_to_owners(mut self, forwarder: Forwarder) -> Self {
        self.forwarder = Some(forwarder);
        self
    }

    /// Returns the forwarder and the peer that `route` names to handle a request, or `None`
    /// when it is handled here (or the node runs alone).
    ///
    /// # Errors
    /// The [`ClusterError`]s of `route`: no reachable node owns what the request is about.
    async fn handled_elsewhere<'s, F>(
        &'s self,
        route: impl FnOnce(&'s Forwarder) -> F,
    ) -> Result<Option<(&'s Forwarder, String)>, ClusterError>
    where
        F: std::future::Future<Output = Result<Route, ClusterError>>,
    {
        let Some(forwarder) = &self.forwarder else {
            return Ok(None);
        };
        Ok(match route(forwarder).await? {
            Route::Here => None,
            Route::Owner(peer) => Some((forwarder, peer)),
        })
    }

    /// Authorizes the call carrying `request`'s metadata for `operation`.
    fn authorize<T>(
        &self,
        request: &Request<T>,
        operation: Operation<'_>,
    ) -> Result<Principal, ClusterError> {
        crate::bearer::authorize(&self.settings.tokens, request.metadata(), operation)
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

fn reaches(warning: &v1::Warning, prefix: &str) -> bool {
    prefix.is_empty()
        || warning
            .area_codes
            .iter()
            .any(|code| code.starts_with(prefix))
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
        let warnings = match &self.forwarder {
            Some(forwarder) => cluster_lists::active_warnings(forwarder, &self.this_node).await?,
            None => self
                .this_node
                .active()
                .await?
                .iter()
                .map(Into::into)
                .collect(),
        };
        let warnings = warnings
            .into_iter()
            .filter(|w| reaches(w, &prefix))
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
        let body = request.into_inner();
        let id = requests::warning_id(&body.warning_id)?;
        let response = match self.handled_elsewhere(|f| f.route(&id)).await? {
            Some((forwarder, owner)) => forwarder.get_warning(&owner, body).await?,
            None => match self.this_node.get_warning(body.clone()).await {
                // A warning of no basin or chain is known to the node that has it only.
                Err(ClusterError::UnknownWarning(_)) => match &self.forwarder {
                    Some(forwarder) if forwarder.is_of_no_thread(&id) => {
                        forwarder.get_warning_from_any(body).await?
                    }
                    _ => return Err(ClusterError::UnknownWarning(id.to_string()).into()),
                },
                answer => answer?,
            },
        };
        Ok(Response::new(response))
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
        let warning = requests::warning_id(&body.warning_id)?;
        requests::version(body.version)?;
        let holder = obligation_holder(&body);
        let response = match self
            .handled_elsewhere(|f| f.route_acknowledgement(&warning, &holder))
            .await?
        {
            Some((forwarder, owner)) => forwarder.acknowledge(&owner, &by, body).await?,
            None => self.this_node.acknowledge(by, body).await?,
        };
        Ok(Response::new(response))
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
        let drafts = match &self.forwarder {
            Some(forwarder) => cluster_lists::drafts(forwarder, &self.this_node, scope).await?,
            None => self.this_node.drafts(scope).await?,
        };
        Ok(Response::new(v1::ListDraftsResponse { drafts }))
    }

    #[tracing::instrument(skip_all)]
    async fn approve(
        &self,
        request: Request<v1::ApproveRequest>,
    ) -> Result<Response<v1::ApproveResponse>, Status> {
        let warning = requests::warning_id(&request.get_ref().warning_id)?;
        // The draft's department is checked where the draft is.
        let operation = Operation::Approve {
            draft_department: None,
        };
        let officer = officer(self.authorize(&request, operation)?, operation)?;
        let body = request.into_inner();
        requests::version(body.version)?;
        let response = match self.handled_elsewhere(|f| f.route(&warning)).await? {
            Some((forwarder, owner)) => forwarder.approve(&owner, &officer, body).await?,
            None => self.this_node.approve(officer, body).await?,
        };
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all)]
    async fn reject(
        &self,
        request: Request<v1::RejectRequest>,
    ) -> Result<Response<v1::RejectResponse>, Status> {
        let warning = requests::warning_id(&request.get_ref().warning_id)?;
        let operation = Operation::Reject {
            draft_department: None,
        };
        let officer = officer(self.authorize(&request, operation)?, operation)?;
        let body = request.into_inner();
        requests::version(body.version)?;
        let response = match self.handled_elsewhere(|f| f.route(&warning)).await? {
            Some((forwarder, owner)) => forwarder.reject(&owner, &officer, body).await?,
            None => self.this_node.reject(officer, body).await?,
        };
        Ok(Response::new(response))
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
        let body = request.into_inner();
        // A warning issued for a basin (or of a chain's hazard) is that thread's: its owner
        // holds the draft and delivers it.
        let warning = ThisNode::manual_warning_id(&body)?;
        let response = match self.handled_elsewhere(|f| f.route(&warning)).await? {
            Some((forwarder, owner)) => forwarder.issue(&owner, &officer, &warning, body).await?,
            None => self.this_node.issue(officer, body).await?,
        };
        Ok(Response::new(response))
    }
}
