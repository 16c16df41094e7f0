//! The bearer-token check every gRPC service of the node shares: the `authorization: Bearer
//! <token>` metadata of a call, decided by the [`TokenTable`] for one [`Operation`].

use tianshan_core::access::{bearer_token, Operation, Principal, TokenTable};
use tonic::metadata::MetadataMap;

use crate::error::ClusterError;

/// Returns the principal of the call carrying `metadata` when it may make `operation`.
///
/// # Errors
/// Returns [`ClusterError::Denied`]: unauthenticated without a known token, permission denied
/// for a principal that may not make `operation`.
pub(crate) fn authorize(
    tokens: &TokenTable,
    metadata: &MetadataMap,
    operation: Operation<'_>,
) -> Result<Principal, ClusterError> {
    let token = metadata
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token);
    Ok(tokens.authorize(token, operation)?)
}
