//! `tianshan sql`: posts one query to a node's `POST /sql` and prints the answer, or runs it
//! here over Parquet files (`--parquet NAME=FILE`).

use anyhow::{bail, Context};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{header, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tianshan_pipelines::sql::{format_batches, ArchiveSql, OutputFormat};

/// How `tianshan sql` prints the answer.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SqlFormat {
    /// A text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// A JSON array of row objects.
    Json,
}

/// Runs `query` over the Parquet `files` (each `(table name, path)`) and prints the answer.
pub async fn run_sql_on_files(
    files: &[(String, std::path::PathBuf)],
    query: &str,
    format: SqlFormat,
) -> anyhow::Result<()> {
    let sql = ArchiveSql::new(files)?;
    let batches = sql.query(query).await?;
    let format = match format {
        SqlFormat::Table => OutputFormat::Table,
        SqlFormat::Csv => OutputFormat::Csv,
        SqlFormat::Json => OutputFormat::Json,
    };
    let text = format_batches(&batches, format)?;
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(())
}

/// Posts `query` to `node`'s `/sql` with `token` and prints the answer.
pub async fn run_sql(
    node: &str,
    token: Option<&str>,
    query: &str,
    format: SqlFormat,
) -> anyhow::Result<()> {
    let accept = match format {
        SqlFormat::Table => "text/plain",
        SqlFormat::Csv => "text/csv",
        SqlFormat::Json => "application/json",
    };
    let mut request = Request::post(format!("{}/sql", node.trim_end_matches('/')))
        .header(header::ACCEPT, accept)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request.body(Full::new(Bytes::from(query.to_owned())))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client
        .request(request)
        .await
        .with_context(|| format!("posting the query to {node}"))?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&body);
    if !status.is_success() {
        bail!("{node} answered {status}: {}", text.trim_end());
    }
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(())
}
