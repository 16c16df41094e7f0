//! Arrow Flight SQL on the gRPC port, so standard clients (ADBC, JDBC, DBeaver) query the node:
//! `CommandStatementQuery` → `GetFlightInfo` (the answer's schema and one endpoint whose ticket
//! carries the query) → `DoGet` with that ticket, which runs the query over a fresh snapshot
//! through the [`SqlEngine`] and streams the answer. Both calls need a bearer token that may
//! query SQL (duty officers and administrators, as `POST /sql`); a query that does not plan is
//! `INVALID_ARGUMENT` with DataFusion's message. Prepared statements, catalogs and updates are
//! not served (`UNIMPLEMENTED`): the tables are read-only snapshots.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::server::FlightSqlService;
use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt, SqlInfo, TicketStatementQuery};
use arrow_flight::{FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
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
}

impl FlightSqlApi {
    /// Answers with `engine` the calls whose bearer token `tokens` allows to query SQL.
    pub fn new(engine: SqlEngine, tokens: Arc<TokenTable>) -> Self {
        Self { engine, tokens }
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

/// The stream of `DoGet` answers.
type FlightDataStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

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
        let endpoint =
            FlightEndpoint::new().with_ticket(Ticket::new(handle.as_any().encode_to_vec()));
        let info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|e| Status::internal(format!("cannot encode the answer's schema: {e}")))?
            .with_endpoint(endpoint)
            .with_descriptor(request.into_inner());
        Ok(Response::new(info))
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
        let stream: FlightDataStream = Box::pin(
            FlightDataEncoderBuilder::new()
                .with_schema(schema)
                .build(tokio_stream::iter(batches.into_iter().map(Ok)))
                .map(|data| data.map_err(Status::from)),
        );
        Ok(Response::new(stream))
    }

    /// Nothing to keep: `GetSqlInfo` is not served (`UNIMPLEMENTED`), and no caller of the
    /// service registers information at run time.
    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
