//! Arrow Flight SQL on the gRPC port, so standard clients (ADBC, JDBC, DBeaver) query the node:
//! `CommandStatementQuery` → `GetFlightInfo` (the answer's schema and one endpoint whose ticket
//! carries the query) → `DoGet` with that ticket, which runs the query over a fresh snapshot
//! through the [`SqlEngine`] and streams the answer. A query that does not plan is
//! `INVALID_ARGUMENT` with DataFusion's message.
//!
//! The metadata commands clients browse with (ADBC's `GetObjects` and `GetTableSchema`, JDBC's
//! `DatabaseMetaData`) answer from the catalog of the same engine: `GetCatalogs`,
//! `GetDbSchemas`, `GetTables` (with each table's Arrow schema on `include_schema`),
//! `GetTableTypes` and `GetSqlInfo`. Their `GetFlightInfo` only returns the answer's fixed
//! schema and a ticket carrying the command; `DoGet` lists the tables of a fresh snapshot of
//! this node (every node registers the same tables, so peers are not asked) and applies the
//! command's filters: the catalog by equality, schema and table names as SQL `LIKE` patterns
//! (`%`, `_`), table types by equality. Tables are `TABLE`s in the catalog `datafusion`, schema
//! `public`.
//!
//! Prepared statements, for queries with parameters (`?`, or DataFusion's `$1`, `$2`, …):
//! `CreatePreparedStatement` plans the query and answers with the schemas of its answer and of
//! its parameters (one field per placeholder, typed as DataFusion inferred it); `DoPut` binds
//! one row of values and answers with a new handle carrying them; `GetFlightInfo` on that
//! handle plans the query with its values (wrong count or type: `INVALID_ARGUMENT`), and
//! `DoGet` runs it. The handle carries the query and its values ([`prepared_handle`]), so
//! nothing is kept between calls and closing frees nothing.
//!
//! Every call needs a bearer token that may query SQL (duty officers and administrators, as
//! `POST /sql`). Keys, type information, Substrait and updates are not served
//! (`UNIMPLEMENTED`): the tables are read-only snapshots.

mod prepared_handle;

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandStatementQuery, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    SqlSupportedTransaction, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, IpcMessage, SchemaAsIpc,
    Ticket,
};
use prepared_handle::PreparedHandle;
use prost::Message;
use tianshan_core::access::{Operation, TokenTable};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::bearer::authorize;
use crate::error::ClusterError;
use crate::sql_engine::SqlEngine;

/// The Flight SQL service of one node.
pub struct FlightSqlApi {
    engine: SqlEngine,
    tokens: Arc<TokenTable>,
    sql_info: SqlInfoData,
}

impl FlightSqlApi {
    /// Answers with `engine` the calls whose bearer token `tokens` allows to query SQL.
    pub fn new(engine: SqlEngine, tokens: Arc<TokenTable>) -> Self {
        Self {
            engine,
            tokens,
            sql_info: server_sql_info(),
        }
    }

    /// Wraps the service for a tonic router.
    pub fn into_server(self) -> FlightServiceServer<Self> {
        FlightServiceServer::new(self)
    }

    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        authorize(&self.tokens, request.metadata(), Operation::SqlQuery)?;
        Ok(())
    }
}

/// Returns what `GetSqlInfo` answers: who the server is and what it supports. Only values
/// that hold are listed; a client treats a missing one as unknown.
fn server_sql_info() -> SqlInfoData {
    let mut info = SqlInfoDataBuilder::new();
    info.append(SqlInfo::FlightSqlServerName, "tianshan");
    info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    // The tables are snapshots; DDL and DML are refused when planned.
    info.append(SqlInfo::FlightSqlServerReadOnly, true);
    info.append(SqlInfo::FlightSqlServerSql, true);
    info.append(SqlInfo::FlightSqlServerSubstrait, false);
    info.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    info.append(SqlInfo::FlightSqlServerCancel, false);
    // DataFusion quotes identifiers as standard SQL does.
    info.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    info.build()
        .expect("fixed values of the types the SqlInfo union holds encode")
}

/// The stream of `DoGet` answers.
type FlightDataStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

/// Returns the `FlightInfo` of an answer with `schema`, fetched from this node by one `DoGet`
/// of `ticket`.
fn flight_info(
    schema: &Schema,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(ticket));
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("cannot encode the answer's schema: {e}")))?
        .with_endpoint(endpoint)
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// Returns the `FlightInfo` of a metadata command's answer: its ticket is the command itself,
/// which `DoGet` dispatches back to the command's `do_get_*`.
fn metadata_flight_info(
    command: &impl ProstMessageExt,
    schema: &Schema,
    request: Request<FlightDescriptor>,
) -> Result<Response<FlightInfo>, Status> {
    flight_info(
        schema,
        command.as_any().encode_to_vec(),
        request.into_inner(),
    )
}

/// Streams `batches` with `schema`, so an answer without rows still has its columns.
fn answer(schema: SchemaRef, batches: Vec<RecordBatch>) -> Response<FlightDataStream> {
    let stream: FlightDataStream = Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(tokio_stream::iter(batches.into_iter().map(Ok)))
            .map(|data| data.map_err(Status::from)),
    );
    Response::new(stream)
}

/// Returns `schema` as the Arrow IPC message prepared-statement answers carry.
fn schema_bytes(schema: &Schema) -> Result<prost::bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e| Status::internal(format!("cannot encode a schema: {e}")))?;
    Ok(bytes)
}

/// Streams one metadata batch.
fn metadata_answer(batch: RecordBatch) -> Response<FlightDataStream> {
    answer(batch.schema(), vec![batch])
}

#[tonic::async_trait]
impl FlightSqlService for FlightSqlApi {
    type FlightService = FlightSqlApi;

    #[tracing::instrument(skip_all)]
    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        // Planned now so a bad query fails here, and the client learns the columns.
        let schema = self
            .engine
            .local_session()
            .await?
            .schema_of(&query.query)
            .await
            .map_err(ClusterError::from)?;
        let handle = TicketStatementQuery {
            statement_handle: query.query.into_bytes().into(),
        };
        flight_info(
            &schema,
            handle.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    #[tracing::instrument(skip_all)]
    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request)?;
        let sql = String::from_utf8(ticket.statement_handle.to_vec()).map_err(|_| {
            Status::invalid_argument("ticket: the statement handle is not a UTF-8 query")
        })?;
        let (schema, batches) = self.engine.query(&sql).await?;
        Ok(answer(schema, batches))
    }

    #[tracing::instrument(skip_all)]
    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        self.authorize(&request)?;
        let prepared = self
            .engine
            .local_session()
            .await?
            .prepare(&query.query)
            .await
            .map_err(ClusterError::from)?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: PreparedHandle::unbound(query.query).encode_to_vec().into(),
            dataset_schema: schema_bytes(&prepared.answer)?,
            parameter_schema: schema_bytes(&prepared.parameters)?,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.authorize(&request)?;
        let handle = PreparedHandle::read(&query.prepared_statement_handle)?;
        let batches: Vec<RecordBatch> = FlightRecordBatchStream::new_from_flight_data(
            request
                .into_inner()
                .map(|data| data.map_err(FlightError::from)),
        )
        .collect::<Result<_, _>>()
        .await
        .map_err(|e| Status::invalid_argument(format!("the bound parameters: {e}")))?;
        // Checked against the query's placeholders when it is planned with them.
        let handle = match batches.first() {
            Some(first) => {
                let row = concat_batches(&first.schema(), &batches)
                    .map_err(|e| Status::invalid_argument(format!("the bound parameters: {e}")))?;
                handle.bound(&row)?
            }
            None => handle,
        };
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.encode_to_vec().into()),
        })
    }

    #[tracing::instrument(skip_all)]
    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        let handle = PreparedHandle::read(&query.prepared_statement_handle)?;
        // Planned with its values now, so missing or ill-typed ones fail here.
        let schema = self
            .engine
            .local_session()
            .await?
            .bound_schema(&handle.query, handle.parameter_row()?.as_ref())
            .await
            .map_err(ClusterError::from)?;
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    #[tracing::instrument(skip_all)]
    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request)?;
        let handle = PreparedHandle::read(&query.prepared_statement_handle)?;
        let (schema, batches) = self
            .engine
            .query_bound(&handle.query, handle.parameter_row()?.as_ref())
            .await?;
        Ok(answer(schema, batches))
    }

    /// Nothing to free: the handle carries the whole statement.
    #[tracing::instrument(skip_all)]
    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        self.authorize(&request)
    }

    #[tracing::instrument(skip_all)]
    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        let schema = query.into_builder().schema();
        metadata_flight_info(&query, &schema, request)
    }

    #[tracing::instrument(skip_all)]
    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request)?;
        let session = self.engine.local_session().await?;
        let mut catalogs = query.into_builder();
        for name in session.catalog_names() {
            catalogs.append(name);
        }
        Ok(metadata_answer(catalogs.build()?))
    }

    #[tracing::instrument(skip_all)]
    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        let schema = query.clone().into_builder().schema();
        metadata_flight_info(&query, &schema, request)
    }

    #[tracing::instrument(skip_all)]
    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request)?;
        let session = self.engine.local_session().await?;
        // The builder keeps the rows that pass the command's catalog and schema filters.
        let mut schemas = query.into_builder();
        for entry in session.catalog_schemas() {
            schemas.append(entry.catalog, entry.schema);
        }
        Ok(metadata_answer(schemas.build()?))
    }

    #[tracing::instrument(skip_all)]
    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        // With or without the `table_schema` column, as `include_schema` asks.
        let schema = query.clone().into_builder().schema();
        metadata_flight_info(&query, &schema, request)
    }

    #[tracing::instrument(skip_all)]
    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request)?;
        let session = self.engine.local_session().await?;
        let listed = session.catalog_tables().await.map_err(ClusterError::from)?;
        // The builder keeps the rows that pass the command's filters, and encodes each
        // table's schema as Arrow IPC only when `include_schema` asks for it.
        let mut tables = query.into_builder();
        for table in listed {
            tables.append(
                &table.catalog,
                &table.schema,
                &table.name,
                table.table_type,
                &table.columns,
            )?;
        }
        Ok(metadata_answer(tables.build()?))
    }

    #[tracing::instrument(skip_all)]
    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        let schema = query.into_builder().schema();
        metadata_flight_info(&query, &schema, request)
    }

    #[tracing::instrument(skip_all)]
    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request)?;
        let session = self.engine.local_session().await?;
        // The kinds of the tables there are, each once.
        let kinds: BTreeSet<&'static str> = session
            .catalog_tables()
            .await
            .map_err(ClusterError::from)?
            .iter()
            .map(|table| table.table_type)
            .collect();
        let mut types = query.into_builder();
        for kind in kinds {
            types.append(kind);
        }
        Ok(metadata_answer(types.build()?))
    }

    #[tracing::instrument(skip_all)]
    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        let schema = self.sql_info.schema();
        metadata_flight_info(&query, &schema, request)
    }

    #[tracing::instrument(skip_all)]
    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request)?;
        // The values asked for, or all of them when the command names none.
        let batch = query.into_builder(&self.sql_info).build()?;
        Ok(metadata_answer(batch))
    }

    /// Nothing to keep: `GetSqlInfo` answers the values fixed in [`FlightSqlApi::new`], and
    /// no caller of the service registers information at run time.
    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
