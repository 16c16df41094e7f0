//! SQL over one node's live state (DataFusion). A [`NodeSnapshot`] asks each actor for its
//! state, which the actors answer between two messages, so nothing is stopped; [`NodeSql`]
//! registers the snapshot as in-memory Arrow tables and answers queries over them.
//!
//! Each table is consistent in itself (one actor's answer, or one fan-out of a supervisor
//! over its children); the tables are asked one after the other, so they are not one cut of
//! the whole pipeline. The time the snapshot was taken travels with it.
//!
//! Tables (times are `Timestamp(ms, UTC)`): see [`tables`]. In a cluster each node holds a part
//! of the [`PARTIAL_TABLES`] (its stations, basins, warnings, books and dead letters); the node
//! asked gathers the others' parts and registers the union ([`NodeSql::with_parts`]). The
//! region's tables, `stations` and `admin_units`, are the same on every node and not gathered.

#[cfg(any(test, feature = "testsuite"))]
pub mod known_state;
pub mod parameters;
pub mod tables;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::json::writer::{make_encoder, EncoderOptions};
use arrow::util::pretty::pretty_format_batches;
use datafusion::datasource::{MemTable, TableType};
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{DataFrame, SessionContext};
use ractor::ActorRef;
use tianshan_actors::admin_unit::AdminUnitMsg;
use tianshan_actors::basin_supervisor::BasinSupervisorMsg;
use tianshan_actors::station_supervisor::StationSupervisorMsg;
use tianshan_core::dissemination::acknowledgement::ForcedAcknowledgement;
use tianshan_core::flash_flood::Assessment;
use tianshan_core::observation::RejectReason;
use tianshan_core::region::Region;
use tianshan_core::station_windows::StationSummary;
use tianshan_core::time::EventTime;
use tianshan_core::warning::WarningEvent;

use crate::error::PipelineError;
use crate::model_actors::{ask, ModelActors};
use crate::node_pipeline::{NodePipeline, Ownership, OwnershipReader};
use crate::telemetry::Metrics;
use crate::warning_publisher::WarningPublisherMsg;

/// The tables that hold one node's share of the cluster's state; a query on a cluster runs over
/// their union across nodes. `dead_letters` then has one row per node and reason.
pub const PARTIAL_TABLES: [&str; 5] = [
    "station_windows",
    "basin_state",
    "warnings",
    "deliveries",
    "dead_letters",
];

/// The state of one node at one moment, as the actors reported it.
#[derive(Debug, Clone)]
pub struct NodeSnapshot {
    /// When the snapshot was taken.
    pub taken_at: EventTime,
    /// The region: stations and admin units.
    pub region: Arc<Region>,
    /// The summary at the last tick of every station that has one (a station no tick reaches:
    /// once it has reported).
    pub station_summaries: Vec<StationSummary>,
    /// The latest assessment of every basin that has one.
    pub assessments: Vec<Assessment>,
    /// The last version of every active warning.
    pub warnings: Vec<WarningEvent>,
    /// The acknowledgement books in force in the dissemination tree.
    pub books: Vec<ForcedAcknowledgement>,
    /// Observations sent to the dead-letter topic, by reason.
    pub rejected: BTreeMap<RejectReason, u64>,
}

impl NodeSnapshot {
    /// Asks the station and basin supervisors of `models` for their state; warnings, books and
    /// dead letters are left empty (a replay has no publisher and no dissemination tree).
    ///
    /// # Errors
    /// Returns [`PipelineError::Actor`] when a supervisor does not answer.
    pub async fn of_models(
        models: &ModelActors,
        region: Arc<Region>,
        taken_at: EventTime,
    ) -> Result<Self, PipelineError> {
        let station_summaries = ask(
            &models.stations,
            StationSupervisorMsg::SnapshotAll,
            "snapshot stations",
        )
        .await?;
        let assessments = ask(
            &models.basins,
            BasinSupervisorMsg::Snapshot,
            "snapshot basins",
        )
        .await?;
        Ok(Self {
            taken_at,
            region,
            station_summaries,
            assessments,
            warnings: Vec::new(),
            books: Vec::new(),
            rejected: BTreeMap::new(),
        })
    }

    /// Asks every stage of a running node for its state: stations, basins, the publisher's
    /// active warnings, the tree's acknowledgement books and the dead-letter counts.
    ///
    /// # Errors
    /// Returns [`PipelineError::Actor`] when an actor does not answer.
    pub async fn of_node(node: &NodeSources, taken_at: EventTime) -> Result<Self, PipelineError> {
        let mut snapshot = Self::of_models(&node.models, node.region.clone(), taken_at).await?;
        snapshot.warnings = ask(
            &node.publisher,
            WarningPublisherMsg::Active,
            "list active warnings",
        )
        .await?;
        snapshot.books = ask(
            &node.region_unit,
            AdminUnitMsg::Books,
            "acknowledgement books",
        )
        .await?;
        snapshot.rejected = node.metrics.rejected_by_reason();
        Ok(snapshot)
    }
}

/// The actors and metrics of a running node that a snapshot asks, cheap to clone (handles
/// only), so an HTTP handler can hold them.
#[derive(Clone)]
pub struct NodeSources {
    region: Arc<Region>,
    models: ModelActors,
    publisher: ActorRef<WarningPublisherMsg>,
    region_unit: ActorRef<AdminUnitMsg>,
    metrics: Arc<Metrics>,
    ownership: OwnershipReader,
}

impl NodeSources {
    /// Returns whether the node has its partitions assigned and its state rebuilt.
    pub fn is_ready(&self) -> bool {
        self.metrics.is_ready()
    }

    /// Returns what the node owns now; `None` when it runs unsharded (it owns everything).
    pub fn ownership(&self) -> Option<Ownership> {
        self.ownership.read()
    }

    /// Takes the handles of `pipeline`, which runs `region`.
    pub fn of(pipeline: &NodePipeline, region: Arc<Region>) -> Self {
        Self {
            region,
            models: pipeline.models.clone(),
            publisher: pipeline.publisher.clone(),
            region_unit: pipeline.dissemination.region_unit.clone(),
            metrics: pipeline.metrics.clone(),
            ownership: pipeline.ownership_reader(),
        }
    }
}

/// How query answers are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// A bordered text table for people.
    Table,
    /// CSV with a header row. A list (or struct or map) column, which CSV has no form for, is
    /// written as its JSON text, e.g. `area_codes` as `["650102","650103"]` (quoted as CSV
    /// quotes any value with commas or quotes); a null is an empty field.
    Csv,
    /// One JSON array of row objects.
    Json,
}

impl OutputFormat {
    /// Parses `table`, `csv` or `json`; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "table" => Some(Self::Table),
            "csv" => Some(Self::Csv),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// A schema of a session's catalog, as metadata clients (Flight SQL's `GetDbSchemas`) list it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CatalogSchema {
    /// The catalog that holds the schema (DataFusion's default catalog is `datafusion`).
    pub catalog: String,
    /// The schema's name (DataFusion's default schema is `public`).
    pub schema: String,
}

/// A table of a session's catalog, as metadata clients (Flight SQL's `GetTables`) list it.
#[derive(Debug, Clone)]
pub struct CatalogTable {
    /// The catalog that holds the table.
    pub catalog: String,
    /// The schema that holds the table.
    pub schema: String,
    /// The table's name, as queries name it.
    pub name: String,
    /// The table's kind in JDBC's words: `TABLE`, `VIEW` or `LOCAL TEMPORARY`.
    pub table_type: &'static str,
    /// The table's columns.
    pub columns: SchemaRef,
}

/// The table types [`CatalogTable::table_type`] can take, in JDBC's words (`DatabaseMetaData
/// .getTableTypes`), which DBeaver and JDBC's Flight SQL driver expect rather than
/// DataFusion's `BASE TABLE` of `information_schema`.
fn table_type_name(table_type: TableType) -> &'static str {
    match table_type {
        TableType::Base => "TABLE",
        TableType::View => "VIEW",
        TableType::Temporary => "LOCAL TEMPORARY",
    }
}

/// A DataFusion session over one [`NodeSnapshot`].
pub struct NodeSql {
    context: SessionContext,
    taken_at: EventTime,
}

impl NodeSql {
    /// Registers every table of `snapshot` in a new session.
    ///
    /// # Errors
    /// Returns [`PipelineError::Sql`] when a table cannot be built or registered.
    pub fn new(snapshot: &NodeSnapshot) -> Result<Self, PipelineError> {
        Self::with_parts(snapshot, BTreeMap::new())
    }

    /// Registers every table of `snapshot`, each of the [`PARTIAL_TABLES`] together with the
    /// parts other nodes hold (`parts` by table name, one partition per node).
    ///
    /// # Errors
    /// Returns [`PipelineError::Sql`] when a table cannot be built or registered, when a part
    /// names a table that is not partial, or when a part's schema differs from this node's.
    pub fn with_parts(
        snapshot: &NodeSnapshot,
        mut parts: BTreeMap<String, Vec<Vec<RecordBatch>>>,
    ) -> Result<Self, PipelineError> {
        if let Some(name) = parts
            .keys()
            .find(|name| !PARTIAL_TABLES.contains(&name.as_str()))
        {
            return Err(PipelineError::Sql(format!(
                "a part of table {name} was gathered, but only {PARTIAL_TABLES:?} are partial"
            )));
        }
        let context = SessionContext::new();
        for (name, batch) in tables::all(snapshot).map_err(sql_error)? {
            let schema = batch.schema();
            let mut partitions = vec![vec![batch]];
            partitions.extend(parts.remove(name).unwrap_or_default());
            let table = MemTable::try_new(schema, partitions)
                .map_err(|e| PipelineError::Sql(format!("table {name}: {e}")))?;
            context
                .register_table(name, Arc::new(table))
                .map_err(sql_error)?;
        }
        Ok(Self {
            context,
            taken_at: snapshot.taken_at,
        })
    }

    /// Returns when the snapshot behind the tables was taken.
    pub fn taken_at(&self) -> EventTime {
        self.taken_at
    }

    /// Plans and runs `sql` over the snapshot.
    ///
    /// # Errors
    /// Returns [`PipelineError::Sql`] for a query that does not parse, plan or run.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, PipelineError> {
        Ok(self.query_with_schema(sql).await?.1)
    }

    /// Plans and runs `sql` over the snapshot; returns the answer's schema with its batches,
    /// so an answer without rows still has its columns.
    ///
    /// # Errors
    /// Returns [`PipelineError::Sql`] for a query that does not parse, plan or run.
    pub async fn query_with_schema(
        &self,
        sql: &str,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), PipelineError> {
        self.query_bound(sql, None).await
    }

    /// Plans `sql` with `parameters` (one row, one value per placeholder) bound, runs it, and
    /// returns the answer's schema with its batches.
    ///
    /// # Errors
    /// Returns [`PipelineError::Sql`] for a query that does not parse, plan or run, and for
    /// parameters that do not fit its placeholders ([`parameters::bind`]), none bound to a
    /// query that has placeholders included.
    pub async fn query_bound(
        &self,
        sql: &str,
        parameters: Option<&RecordBatch>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), PipelineError> {
        let frame = self.bound(sql, parameters).await?;
        let schema = frame.schema().inner().clone();
        Ok((schema, frame.collect().await.map_err(sql_error)?))
    }

    /// Plans `sql` without running it and returns the schema of its answer.
    ///
    /// # Errors
    /// Returns [`PipelineError::Sql`] for a query that does not parse or plan.
    pub async fn schema_of(&self, sql: &str) -> Result<SchemaRef, PipelineError> {
        Ok(self.prepare(sql).await?.answer)
    }

    /// Plans `sql` with `parameters` bound, without running it, and returns the schema of its
    /// answer.
    ///
    /// # Errors
    /// As [`NodeSql::query_bound`], except for errors that only running shows.
    pub async fn bound_schema(
        &self,
        sql: &str,
        parameters: Option<&RecordBatch>,
    ) -> Result<SchemaRef, PipelineError> {
        Ok(self.bound(sql, parameters).await?.schema().inner().clone())
    }

    /// Plans `sql` without running it, placeholders unbound, and returns the schema of its
    /// answer and of the parameters it expects.
    ///
    /// # Errors
    /// Returns [`PipelineError::Sql`] for a query that does not parse or plan, or that has
    /// named placeholders.
    pub async fn prepare(&self, sql: &str) -> Result<PreparedQuery, PipelineError> {
        let frame = self.plan(&parameters::numbered_placeholders(sql)?).await?;
        Ok(PreparedQuery {
            parameters: Arc::new(parameters::parameter_schema(frame.logical_plan())?),
            answer: frame.schema().inner().clone(),
        })
    }

    /// Plans `sql` with `parameters` bound (see [`NodeSql::query_bound`]).
    async fn bound(
        &self,
        sql: &str,
        parameters: Option<&RecordBatch>,
    ) -> Result<DataFrame, PipelineError> {
        let frame = self.plan(&parameters::numbered_placeholders(sql)?).await?;
        let expected = parameters::parameter_schema(frame.logical_plan())?;
        match parameters {
            Some(row) => {
                let values = parameters::bind(row, &expected)?;
                frame.with_param_values(values).map_err(sql_error)
            }
            None if expected.fields().is_empty() => Ok(frame),
            None => Err(PipelineError::Sql(format!(
                "the query has {} parameters and none were bound",
                expected.fields().len()
            ))),
        }
    }

    /// Returns the session's catalogs, sorted.
    pub fn catalog_names(&self) -> Vec<String> {
        let mut names = self.context.catalog_names();
        names.sort_unstable();
        names
    }

    /// Returns the schemas of every catalog, sorted.
    pub fn catalog_schemas(&self) -> Vec<CatalogSchema> {
        let mut schemas = Vec::new();
        for catalog in self.context.catalog_names() {
            let Some(provider) = self.context.catalog(&catalog) else {
                continue;
            };
            for schema in provider.schema_names() {
                schemas.push(CatalogSchema {
                    catalog: catalog.clone(),
                    schema,
                });
            }
        }
        schemas.sort_unstable();
        schemas
    }

    /// Returns every table queries can name, with its columns, sorted by catalog, schema and
    /// name. (`information_schema` is off, so it is not listed: queries cannot name it.)
    ///
    /// # Errors
    /// Returns [`PipelineError::Sql`] when a listed table cannot be opened.
    pub async fn catalog_tables(&self) -> Result<Vec<CatalogTable>, PipelineError> {
        let mut tables = Vec::new();
        for CatalogSchema { catalog, schema } in self.catalog_schemas() {
            let Some(provider) = self
                .context
                .catalog(&catalog)
                .and_then(|provider| provider.schema(&schema))
            else {
                continue;
            };
            for name in provider.table_names() {
                let table = provider
                    .table(&name)
                    .await
                    .map_err(|e| PipelineError::Sql(format!("table {name}: {e}")))?;
                // Deregistered between the listing and the lookup: nothing to list.
                let Some(table) = table else { continue };
                tables.push(CatalogTable {
                    catalog: catalog.clone(),
                    schema: schema.clone(),
                    table_type: table_type_name(table.table_type()),
                    columns: table.schema(),
                    name,
                });
            }
        }
        tables.sort_unstable_by(|a, b| {
            (&a.catalog, &a.schema, &a.name).cmp(&(&b.catalog, &b.schema, &b.name))
        });
        Ok(tables)
    }

    /// Plans `sql` as a read-only query: the tables are snapshots, so statements that would
    /// write to them (DML) or change the catalog (DDL) are refused.
    async fn plan(&self, sql: &str) -> Result<DataFrame, PipelineError> {
        let read_only = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        self.context
            .sql_with_options(sql, read_only)
            .await
            .map_err(sql_error)
    }
}

/// What a prepared query answers with and what it needs bound before it runs.
#[derive(Debug, Clone)]
pub struct PreparedQuery {
    /// The schema of the answer.
    pub answer: SchemaRef,
    /// One field per placeholder, `$1`, `$2`, … ([`parameters::parameter_schema`]).
    pub parameters: SchemaRef,
}

/// A DataFusion session over Parquet files (observation and warning archives, or any other),
/// each read whole into an in-memory table: SQL over archives without a node.
pub struct ArchiveSql {
    context: SessionContext,
}

impl ArchiveSql {
    /// Registers each `(name, file)` as table `name`.
    ///
    /// # Errors
    /// Returns [`PipelineError::Input`] for a file that is not Parquet, and
    /// [`PipelineError::Sql`] for a name that cannot be registered (twice, say).
    pub fn new(files: &[(String, std::path::PathBuf)]) -> Result<Self, PipelineError> {
        let context = SessionContext::new();
        for (name, path) in files {
            let batches = crate::archive::read_parquet(path)?;
            let schema = match batches.first() {
                Some(batch) => batch.schema(),
                None => crate::archive::parquet_schema(path)?,
            };
            let table = MemTable::try_new(schema, vec![batches]).map_err(sql_error)?;
            if context.table_exist(name.as_str()).map_err(sql_error)? {
                return Err(PipelineError::Sql(format!("table `{name}` is given twice")));
            }
            context
                .register_table(name.as_str(), Arc::new(table))
                .map_err(sql_error)?;
        }
        Ok(Self { context })
    }

    /// Plans and runs `sql` over the files.
    ///
    /// # Errors
    /// Returns [`PipelineError::Sql`] for a query that does not parse, plan or run.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, PipelineError> {
        let frame = self.context.sql(sql).await.map_err(sql_error)?;
        frame.collect().await.map_err(sql_error)
    }
}

/// Writes `batches` as `format`.
///
/// # Errors
/// Returns [`PipelineError::Sql`] when a value cannot be written.
pub fn format_batches(
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<String, PipelineError> {
    match format {
        OutputFormat::Table => Ok(pretty_format_batches(batches)
            .map_err(sql_error)?
            .to_string()),
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .with_timestamp_tz_format(CSV_TIMESTAMP_FORMAT.to_owned())
                .build(Vec::new());
            for batch in batches {
                writer
                    .write(&nested_columns_as_json(batch)?)
                    .map_err(sql_error)?;
            }
            String::from_utf8(writer.into_inner()).map_err(sql_error)
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::ArrayWriter::new(Vec::new());
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            writer.write_batches(&refs).map_err(sql_error)?;
            writer.finish().map_err(sql_error)?;
            let mut text = String::from_utf8(writer.into_inner()).map_err(sql_error)?;
            // An answer without rows is still one JSON array.
            if text.is_empty() {
                text.push_str("[]");
            }
            Ok(text)
        }
    }
}

/// How CSV answers write UTC timestamps, inside JSON-written lists too.
const CSV_TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

/// Returns `batch` with each nested column (lists, structs, maps), which the CSV writer refuses,
/// replaced by a text column of each value's JSON; a null value stays null.
fn nested_columns_as_json(batch: &RecordBatch) -> Result<RecordBatch, PipelineError> {
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| f.data_type().is_nested()) {
        return Ok(batch.clone());
    }
    let options =
        EncoderOptions::default().with_timestamp_tz_format(CSV_TIMESTAMP_FORMAT.to_owned());
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if !field.data_type().is_nested() {
            fields.push(field.clone());
            columns.push(column.clone());
            continue;
        }
        let mut encoder = make_encoder(field, column.as_ref(), &options).map_err(sql_error)?;
        let mut texts = StringBuilder::new();
        let mut json = Vec::new();
        for row in 0..column.len() {
            if encoder.is_null(row) {
                texts.append_null();
                continue;
            }
            json.clear();
            encoder.encode(row, &mut json);
            texts.append_value(std::str::from_utf8(&json).map_err(sql_error)?);
        }
        fields.push(Arc::new(Field::new(
            field.name(),
            DataType::Utf8,
            field.is_nullable(),
        )));
        columns.push(Arc::new(texts.finish()) as ArrayRef);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(sql_error)
}

fn sql_error(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Sql(e.to_string())
}

#[cfg(test)]
mod tests;
