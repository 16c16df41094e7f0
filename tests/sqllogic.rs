//! Runs every `.slt` file of tests/sql/ (sqllogictest) over the SQL tables of a node with known
//! state (`tianshan_pipelines::sql::known_state`): each file gets fresh connections over the same
//! snapshot. Column types: `I` integers, `R` floats, `T` everything else; NULL prints `NULL`.
//! Prints one line per file and `N passed, N failed`; exits non-zero when a file fails.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use sqllogictest::{strict_column_validator, AsyncDB, DBOutput, DefaultColumnType, Runner};
use tianshan_pipelines::error::PipelineError;
use tianshan_pipelines::sql::known_state::known_state;
use tianshan_pipelines::sql::{NodeSnapshot, NodeSql};

/// One sqllogictest connection: a session over the known snapshot.
struct SnapshotDb(NodeSql);

fn column_type(data_type: &DataType) -> DefaultColumnType {
    if data_type.is_integer() {
        DefaultColumnType::Integer
    } else if data_type.is_floating() {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

/// Returns the rows of `batches` as text, NULL as `NULL`.
fn rows(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, PipelineError> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PipelineError::Sql(e.to_string()))?;
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|formatter| formatter.value(row).to_string())
                    .collect(),
            );
        }
    }
    Ok(rows)
}

#[async_trait::async_trait]
impl AsyncDB for SnapshotDb {
    type Error = PipelineError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, PipelineError> {
        let (schema, batches) = self.0.query_with_schema(sql).await?;
        let types = schema
            .fields()
            .iter()
            .map(|field| column_type(field.data_type()))
            .collect();
        Ok(DBOutput::Rows {
            types,
            rows: rows(&batches)?,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "tianshan"
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt file in {}", dir.display());
    files
}

async fn run_file(snapshot: &NodeSnapshot, file: &Path) -> Result<(), String> {
    let snapshot = snapshot.clone();
    let mut runner = Runner::new(move || {
        let session = NodeSql::new(&snapshot).map(SnapshotDb);
        async move { session }
    });
    runner.with_column_validator(strict_column_validator);
    runner
        .run_file_async(file)
        .await
        .map_err(|e| e.display(false).to_string())
}

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (passed, failed) = runtime.block_on(async {
        let state = known_state().await;
        let (mut passed, mut failed) = (0, 0);
        for file in slt_files() {
            let name = file.file_name().expect("a file name").to_string_lossy();
            match run_file(&state.snapshot, &file).await {
                Ok(()) => {
                    println!("{name} ... ok");
                    passed += 1;
                }
                Err(error) => {
                    println!("{name} ... FAILED\n{error}");
                    failed += 1;
                }
            }
        }
        (passed, failed)
    });
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
