//! The topics a node needs, with their partition counts, and creating them on a broker through
//! the Kafka admin API (the embedded broker, which has none, creates them its own way).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::config::TopicsConfig;
use crate::error::PipelineError;

/// Every topic a node reads or writes, with its partition count. Rainfall, the busiest, and
/// basin-updates (how far basins can be spread over nodes) get 12; the others 3. The agency-alerts
/// topic only when one is configured.
pub fn node_topics(topics: &TopicsConfig) -> Vec<(String, i32)> {
    let mut planned = vec![(topics.rainfall.clone(), 12)];
    for topic in [
        &topics.water_level,
        &topics.deformation,
        &topics.lightning,
        &topics.weather,
        &topics.warnings,
        &topics.deliveries,
        &topics.state,
    ] {
        planned.push((topic.clone(), 3));
    }
    planned.push((topics.basin_updates.clone(), 12));
    if !topics.agency_alerts.is_empty() {
        planned.push((topics.agency_alerts.clone(), 3));
    }
    planned.push((topics.dead_letters.clone(), 3));
    planned
}

/// Creates every topic of [`node_topics`] on the broker at `bootstrap_servers` with
/// `replication` copies of each partition; topics that exist already are left as they are.
///
/// # Errors
/// [`PipelineError::Kafka`] when the broker cannot be reached or refuses a topic for any other
/// reason than that it exists, naming the topic.
pub async fn create_node_topics(
    bootstrap_servers: &str,
    topics: &TopicsConfig,
    replication: i32,
) -> Result<(), PipelineError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .create()
        .map_err(|e| PipelineError::kafka("create an admin client", e))?;
    let planned = node_topics(topics);
    let new_topics: Vec<NewTopic<'_>> = planned
        .iter()
        .map(|(name, partitions)| {
            NewTopic::new(name, *partitions, TopicReplication::Fixed(replication))
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(|e| PipelineError::kafka("create the node's topics", e))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(PipelineError::Setup(format!(
                    "creating topic {topic}: the broker answered {code}"
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_configured_topic_is_planned_once() {
        let topics = TopicsConfig::default();
        let planned = node_topics(&topics);
        let names: std::collections::BTreeSet<_> = planned.iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), planned.len(), "no topic twice");
        assert!(names.contains(&topics.basin_updates));
        assert!(names.contains(&topics.dead_letters));
        assert_eq!(
            planned
                .iter()
                .find(|(n, _)| *n == topics.rainfall)
                .map(|p| p.1),
            Some(12)
        );
    }
}
