//! Errors of the pipelines crate.

use rdkafka::error::KafkaError;

/// Whether retrying the failed operation can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryHint {
    /// Retrying later may succeed (broker unavailable, timeouts).
    Retry,
    /// Retrying will fail the same way (bad configuration, bad input).
    DoNotRetry,
}

/// Where the fault lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorDomain {
    /// The caller's input or configuration.
    User,
    /// Kafka or another external system.
    External,
    /// A bug or broken invariant in Tianshan.
    Internal,
}

/// Errors of Kafka sources and sinks and of pipeline assembly.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A Kafka client call failed.
    #[error("kafka: could not {action}: {source}")]
    Kafka {
        /// What was being done.
        action: &'static str,
        /// The client error.
        source: KafkaError,
    },
    /// The pipeline could not be assembled.
    #[error("pipeline setup: {0}")]
    Setup(String),
    /// An actor failed or stopped answering.
    #[error("actor: {0}")]
    Actor(String),
    /// An input file could not be read or parsed.
    #[error("input {path}: {detail}")]
    Input {
        /// The file.
        path: String,
        /// What is wrong, with the line number where known.
        detail: String,
    },
    /// A SQL query did not parse, plan or run, or its answer could not be written.
    #[error("sql: {0}")]
    Sql(String),
}

impl PipelineError {
    /// Wraps a Kafka error with the action that failed.
    pub fn kafka(action: &'static str, source: KafkaError) -> Self {
        PipelineError::Kafka { action, source }
    }

    /// Returns whether a retry can help.
    pub fn retry_hint(&self) -> RetryHint {
        match self {
            PipelineError::Kafka { .. } | PipelineError::Actor(_) => RetryHint::Retry,
            PipelineError::Setup(_) | PipelineError::Input { .. } | PipelineError::Sql(_) => {
                RetryHint::DoNotRetry
            }
        }
    }

    /// Returns where the fault lies.
    pub fn domain(&self) -> ErrorDomain {
        match self {
            PipelineError::Kafka { .. } => ErrorDomain::External,
            PipelineError::Setup(_) | PipelineError::Input { .. } | PipelineError::Sql(_) => {
                ErrorDomain::User
            }
            PipelineError::Actor(_) => ErrorDomain::Internal,
        }
    }
}
