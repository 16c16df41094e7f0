//! The opaque handle of a Flight SQL prepared statement. It carries the query and, once a
//! client has bound them, the parameter row as Arrow IPC, so the server keeps nothing between
//! calls: any node answers a handle another made, and a client that never closes its
//! statement leaks nothing. Binding returns a new handle (`DoPutPreparedStatementResult`),
//! which clients use from then on.

use arrow::array::RecordBatch;
use prost::Message;
use tonic::Status;

use crate::arrow_ipc;

/// A prepared query and its bound parameters.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct PreparedHandle {
    /// The query as the client wrote it.
    #[prost(string, tag = "1")]
    pub(crate) query: String,
    /// The bound parameter row as one Arrow IPC stream; empty while none is bound.
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) parameters: Vec<u8>,
}

impl PreparedHandle {
    /// A handle of `query` with nothing bound.
    pub(crate) fn unbound(query: String) -> Self {
        Self {
            query,
            parameters: Vec::new(),
        }
    }

    /// The same query with `row` bound in place of any row bound before.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a row that Arrow IPC cannot carry.
    pub(crate) fn bound(self, row: &RecordBatch) -> Result<Self, Status> {
        let parameters = arrow_ipc::encode(row).map_err(|e| {
            Status::invalid_argument(format!("the bound parameters cannot be encoded: {e}"))
        })?;
        Ok(Self { parameters, ..self })
    }

    /// Reads a handle a client sent back.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for bytes that no Tianshan node made.
    pub(crate) fn read(bytes: &[u8]) -> Result<Self, Status> {
        Self::decode(bytes).map_err(|_| {
            Status::invalid_argument(
                "prepared statement handle: not one this server made; prepare the query again",
            )
        })
    }

    /// The bound parameter row, if one is bound.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` when the handle's parameters are not one row of Arrow IPC.
    pub(crate) fn parameter_row(&self) -> Result<Option<RecordBatch>, Status> {
        if self.parameters.is_empty() {
            return Ok(None);
        }
        let mut batches = arrow_ipc::decode(&self.parameters).map_err(|e| {
            Status::invalid_argument(format!("prepared statement handle: parameters: {e}"))
        })?;
        match (batches.pop(), batches.is_empty()) {
            (Some(row), true) => Ok(Some(row)),
            _ => Err(Status::invalid_argument(
                "prepared statement handle: parameters are not one batch",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::StringArray;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn a_handle_carries_its_query_and_bound_row_through_its_bytes() {
        let handle = PreparedHandle::unbound("SELECT * FROM stations WHERE id = ?".into());
        let read = PreparedHandle::read(&handle.encode_to_vec()).expect("reads");
        assert_eq!(read, handle);
        assert_eq!(read.parameter_row().expect("nothing bound"), None);

        let row = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("0", DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec!["XJ0001"]))],
        )
        .expect("a row");
        let bound = read.bound(&row).expect("binds");
        let read = PreparedHandle::read(&bound.encode_to_vec()).expect("reads");
        assert_eq!(read.query, "SELECT * FROM stations WHERE id = ?");
        assert_eq!(read.parameter_row().expect("bound"), Some(row));

        let foreign = PreparedHandle::read(b"\xff\xff not a handle");
        assert_eq!(
            foreign.expect_err("refused").code(),
            tonic::Code::InvalidArgument
        );
    }
}
