//! The lightning → forest/grassland fire chain of a node's fire zones: strokes from the lightning
//! location network placed in zones (hazards.md §6), the combined ignition-risk level per zone at
//! every tick, and one warning thread per zone.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::AreaCode;
use crate::lifecycle::{LifecyclePolicy, WarningThread};
use crate::lightning_fire::{
    FireZone, FireZoneId, LightningFireConfig, LightningFireError, LightningFireTracker, Polarity,
    Stroke, StrokeRain,
};
use crate::observation::{Observation, Outcome, Reading, RejectReason};
use crate::time::EventTime;
use crate::warning::{Hazard, WarningEvent};

/// The fire warnings of a set of zones.
#[derive(Debug, Clone)]
pub struct LightningFireChain {
    tracker: LightningFireTracker,
    threads: BTreeMap<FireZoneId, WarningThread>,
    /// (event time ms, locator network, sequence) of the strokes taken within the retention, so
    /// a stroke read again (a re-send, a rewind after a rebalance) counts once.
    seen: BTreeSet<(i64, String, u64)>,
    retention_ms: i64,
}

impl LightningFireChain {
    /// Creates the chain of `zones`, each with the area codes its warnings reach.
    ///
    /// # Errors
    /// Returns [`LightningFireError`] for a bad configuration or a duplicate zone.
    pub fn try_new(
        config: LightningFireConfig,
        zones: Vec<(FireZone, Vec<AreaCode>)>,
    ) -> Result<Self, LightningFireError> {
        let threads = zones
            .iter()
            .map(|(zone, areas)| {
                let thread =
                    WarningThread::new(Hazard::LightningFire, zone.id.as_str(), areas.clone());
                (zone.id.clone(), thread)
            })
            .collect();
        let retention_ms = config.retention_ms();
        let tracker =
            LightningFireTracker::try_new(config, zones.into_iter().map(|(z, _)| z).collect())?;
        Ok(Self {
            tracker,
            threads,
            seen: BTreeSet::new(),
            retention_ms,
        })
    }

    /// Takes one lightning observation: a stroke outside every zone is applied and kept by no
    /// zone; one already taken (same time, network and sequence) is rejected as a duplicate; an
    /// impossible one (position, current) is rejected as out of range. The rain at the stroke is
    /// not known from the locator, so the stroke counts as dry (the cautious reading of §6.5).
    pub fn observe(&mut self, observation: &Observation) -> Outcome {
        let Reading::Lightning {
            lon,
            lat,
            peak_current_ka,
            positive,
            cloud_to_ground,
        } = observation.reading
        else {
            return Outcome::rejected(
                RejectReason::Malformed,
                format!(
                    "a {} reading is not a lightning stroke",
                    observation.reading.kind()
                ),
            );
        };
        let stroke = Stroke {
            time: observation.event_time,
            lon,
            lat,
            peak_current_ka: peak_current_ka.abs(),
            polarity: if positive {
                Polarity::Positive
            } else {
                Polarity::Negative
            },
            cloud_to_ground,
        };
        let key = (
            observation.event_time.millis(),
            observation.station.to_string(),
            observation.sequence,
        );
        if self.seen.contains(&key) {
            return Outcome::rejected(
                RejectReason::Duplicate,
                format!(
                    "stroke {} #{} at {} already taken",
                    observation.station,
                    observation.sequence,
                    observation.event_time.to_beijing_rfc3339()
                ),
            );
        }
        match self.tracker.observe_stroke(&stroke, &StrokeRain::default()) {
            Ok(_) => {
                self.seen.insert(key);
                Outcome::Applied
            }
            Err(e) => Outcome::rejected(RejectReason::OutOfRange, e.to_string()),
        }
    }

    /// Assesses every zone at `tick` and returns the warning versions to emit, in zone order.
    pub fn on_tick(&mut self, tick: EventTime, policy: &LifecyclePolicy) -> Vec<WarningEvent> {
        let mut emitted = Vec::new();
        for assessment in self.tracker.assess_all(tick) {
            if let Some(thread) = self.threads.get_mut(&assessment.zone) {
                emitted.extend(thread.on_assessment(
                    tick,
                    assessment.level,
                    assessment.level,
                    &assessment.evidence,
                    policy,
                ));
            }
        }
        self.tracker.prune(tick);
        let oldest = tick.millis() - self.retention_ms;
        self.seen = self.seen.split_off(&(oldest, String::new(), 0));
        emitted
    }

    /// Returns the last version of every active fire warning, in zone order.
    pub fn active(&self) -> Vec<WarningEvent> {
        self.threads
            .values()
            .filter_map(|t| t.active().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{GatewayId, StationId};
    use crate::lightning_fire::FuelKind;
    use crate::time::MINUTE_MS;
    use crate::warning::Level;

    fn zone() -> FireZone {
        let ring = vec![
            (82.0, 43.0),
            (82.2, 43.0),
            (82.2, 43.2),
            (82.0, 43.2),
            (82.0, 43.0),
        ];
        FireZone::new(
            FireZoneId::new("FZ-TEST"),
            FuelKind::Forest,
            vec![vec![ring]],
        )
    }

    fn stroke(at: EventTime, lon: f64, ka: f64, positive: bool) -> Observation {
        Observation {
            station: StationId::new("LLS-XJ"),
            event_time: at,
            gateway: GatewayId::new("GW-LLS"),
            sequence: 1,
            reading: Reading::Lightning {
                lon,
                lat: 43.1,
                peak_current_ka: ka,
                positive,
                cloud_to_ground: true,
            },
        }
    }

    #[test]
    fn a_burst_of_strong_positive_strokes_on_a_dry_forest_warns_its_zone() {
        let mut chain = LightningFireChain::try_new(
            LightningFireConfig::default(),
            vec![(zone(), vec![AreaCode::new("654024")])],
        )
        .expect("valid chain");
        let t0 = EventTime(1_719_820_800_000);
        for i in 0..30 {
            let outcome = chain.observe(&stroke(t0.plus_ms(i * MINUTE_MS), 82.1, 80.0, true));
            assert_eq!(outcome, Outcome::Applied);
        }
        let emitted = chain.on_tick(t0.plus_ms(30 * MINUTE_MS), &LifecyclePolicy::default());
        assert_eq!(emitted.len(), 1, "{emitted:?}");
        let warning = &emitted[0];
        assert_eq!(warning.hazard, Hazard::LightningFire);
        assert_eq!(warning.target, "FZ-TEST");
        assert!(warning.level >= Level::Yellow, "{warning:?}");
        assert!(!warning.evidence.is_empty());
        assert_eq!(chain.active().len(), 1);
    }

    #[test]
    fn strokes_outside_every_zone_are_applied_and_warn_no_one() {
        let mut chain =
            LightningFireChain::try_new(LightningFireConfig::default(), vec![(zone(), Vec::new())])
                .expect("valid chain");
        let t0 = EventTime(1_719_820_800_000);
        assert_eq!(
            chain.observe(&stroke(t0, 85.0, 80.0, true)),
            Outcome::Applied
        );
        assert!(chain
            .on_tick(t0.plus_ms(5 * MINUTE_MS), &LifecyclePolicy::default())
            .is_empty());
    }

    #[test]
    fn a_stroke_read_twice_counts_once() {
        let mut chain =
            LightningFireChain::try_new(LightningFireConfig::default(), vec![(zone(), Vec::new())])
                .expect("valid chain");
        let once = stroke(EventTime(1_719_820_800_000), 82.1, 80.0, true);
        assert_eq!(chain.observe(&once), Outcome::Applied);
        assert!(matches!(
            chain.observe(&once),
            Outcome::Rejected {
                reason: RejectReason::Duplicate,
                ..
            }
        ));
    }

    #[test]
    fn an_impossible_stroke_is_rejected_with_the_reason() {
        let mut chain =
            LightningFireChain::try_new(LightningFireConfig::default(), vec![(zone(), Vec::new())])
                .expect("valid chain");
        let outcome = chain.observe(&stroke(EventTime(0), 182.0, 10.0, false));
        assert!(
            matches!(
                outcome,
                Outcome::Rejected {
                    reason: RejectReason::OutOfRange,
                    ..
                }
            ),
            "{outcome:?}"
        );
    }
}
