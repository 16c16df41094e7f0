//! The storm → flash flood → debris flow chain of one gully: the gully's rain taken from its
//! basin's flash-flood assessment, its own debris-flow level (hazards.md §4), the raise by the
//! basin's active flash-flood warning with the caused-by link, and the warning lifecycle.

use crate::debris_flow::{assess, chain, DebrisFlowConfig, DebrisModel, DebrisRain, GullyProfile};
use crate::debris_flow::{DebrisAssessment, RainWindow};
use crate::flash_flood::Assessment;
use crate::ids::AreaCode;
use crate::lifecycle::{LifecyclePolicy, WarningThread};
use crate::warning::{Evidence, Hazard, WarningEvent};

/// Prefix of the flash-flood evidence that carries basin rainfall (`areal_rain_3h`).
const AREAL_RAIN: &str = "areal_rain_";

/// The debris-flow warning thread of one gully.
#[derive(Debug, Clone)]
pub struct DebrisFlowChain {
    gully: GullyProfile,
    thread: WarningThread,
}

impl DebrisFlowChain {
    /// Creates an idle chain for `gully`, reaching `area_codes` when it warns.
    pub fn new(gully: GullyProfile, area_codes: Vec<AreaCode>) -> Self {
        let thread = WarningThread::new(Hazard::DebrisFlow, gully.basin.as_str(), area_codes);
        Self { gully, thread }
    }

    /// Returns the last version of the active debris-flow warning, if any.
    pub fn active(&self) -> Option<&WarningEvent> {
        self.thread.active()
    }

    /// Advances the chain by the basin's flash-flood `assessment`, knowing the basin's active
    /// flash-flood warning (`flash_flood`, `None` when there is none), and returns the
    /// debris-flow warning version to emit, if any.
    ///
    /// The level has no deadband of its own: the lifecycle's off-delay and minimum dwell keep it
    /// from flapping, so the raw level is also the held one.
    pub fn on_assessment(
        &mut self,
        assessment: &Assessment,
        flash_flood: Option<&WarningEvent>,
        config: &DebrisFlowConfig,
        policy: &LifecyclePolicy,
    ) -> Option<WarningEvent> {
        let rain = debris_rain(assessment, config.effective_rain.k_decay);
        let own = assess(config, &self.gully, &rain);
        let linked = flash_flood.map(|warning| (&warning.id, warning.level));
        let chained = chain(own.level, linked, config.chain_step);
        let evidence = evidence_of(&own, assessment);
        let mut emitted = self.thread.on_assessment(
            assessment.tick,
            chained.level,
            chained.level,
            &evidence,
            policy,
        );
        // The link changes with the versions: the active version keeps the cause it was
        // published with until the next one.
        if let Some(event) = &mut emitted {
            self.thread.set_cause(chained.caused_by.clone());
            event.caused_by = chained.caused_by;
        }
        emitted
    }
}

/// The gully's rain from its basin's assessment: the areal accumulations per duration, the
/// largest of them as the event's rain `R_0`, and the basin's antecedent index `Pa` standing in
/// for the decayed rain of the previous days (`Pa = Σ K^i R_i`, hazards.md §3 and §4.3 share the
/// form), passed as `R_1 = Pa / K` so that `K · R_1 = Pa`.
pub fn debris_rain(assessment: &Assessment, k_decay: f64) -> DebrisRain {
    let windows: Vec<RainWindow> = assessment
        .evidence
        .iter()
        .filter_map(|e| {
            let hours: u32 = e
                .quantity
                .strip_prefix(AREAL_RAIN)?
                .strip_suffix('h')?
                .parse()
                .ok()?;
            Some(RainWindow {
                duration_min: hours * 60,
                mm: e.value,
            })
        })
        .collect();
    let today_mm = windows.iter().map(|w| w.mm).fold(0.0, f64::max);
    let days_before_mm = if k_decay > 0.0 && assessment.antecedent_mm > 0.0 {
        vec![assessment.antecedent_mm / k_decay]
    } else {
        Vec::new()
    };
    DebrisRain {
        windows,
        today_mm,
        days_before_mm,
    }
}

/// The debris-flow comparisons as warning evidence, with the completeness and stations of the
/// basin rainfall they were computed from.
fn evidence_of(own: &DebrisAssessment, assessment: &Assessment) -> Vec<Evidence> {
    own.evidence
        .iter()
        .map(|e| {
            let hours = e.duration_min / 60;
            let source = assessment
                .evidence
                .iter()
                .find(|f| f.quantity == format!("{AREAL_RAIN}{hours}h"));
            let model = match &e.model {
                DebrisModel::IntensityDuration(curve) => format!("id_{curve}"),
                DebrisModel::IntensityEffectiveRain => "ir_effective".to_owned(),
                DebrisModel::PostFire => "postfire_m1".to_owned(),
            };
            Evidence {
                quantity: format!("debris_{model}_{}min", e.duration_min),
                value: e.value,
                threshold: e.threshold,
                completeness: source.map_or(1.0, |f| f.completeness),
                stations: source.map(|f| f.stations.clone()).unwrap_or_default(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::BasinId;
    use crate::region::SoilState;
    use crate::time::{EventTime, HOUR_MS};
    use crate::warning::{warning_id, Level, Status};

    fn gully() -> GullyProfile {
        GullyProfile {
            basin: BasinId::new("B0003"),
            curve: None,
            ir_curve: None,
            burn_scar: None,
        }
    }

    fn assessment(tick: EventTime, rain_3h_mm: f64) -> Assessment {
        let rain = |hours: u32, mm: f64| Evidence {
            quantity: format!("areal_rain_{hours}h"),
            value: mm,
            threshold: 50.0,
            completeness: 0.9,
            stations: vec!["R00001".to_owned()],
        };
        Assessment {
            basin: BasinId::new("B0003"),
            tick,
            raw_level: None,
            held_level: None,
            soil_state: SoilState::Normal,
            antecedent_mm: 0.0,
            evidence: vec![rain(1, rain_3h_mm / 2.0), rain(3, rain_3h_mm)],
        }
    }

    fn flash_flood_warning(tick: EventTime, level: Level) -> WarningEvent {
        let mut thread = WarningThread::new(Hazard::FlashFlood, "B0003", Vec::new());
        thread
            .on_assessment(
                tick,
                Some(level),
                Some(level),
                &[],
                &LifecyclePolicy::default(),
            )
            .expect("a rising edge issues a warning")
    }

    #[test]
    fn basin_rain_becomes_gully_windows_with_the_antecedent_index() {
        let mut input = assessment(EventTime(0), 30.0);
        input.antecedent_mm = 8.0;
        let rain = debris_rain(&input, 0.8);
        assert_eq!(
            rain.windows,
            vec![
                RainWindow {
                    duration_min: 60,
                    mm: 15.0
                },
                RainWindow {
                    duration_min: 180,
                    mm: 30.0
                }
            ]
        );
        assert_eq!(rain.today_mm, 30.0);
        assert_eq!(rain.days_before_mm, vec![10.0]);
    }

    #[test]
    fn a_flash_flood_warning_raises_the_gully_and_is_named_as_the_cause() {
        let (config, policy) = (DebrisFlowConfig::default(), LifecyclePolicy::default());
        let tick = EventTime(10 * HOUR_MS);
        // Caine 1980 at 3 h: 14.82 · 3^-0.39 ≈ 9.91 mm/h; 27 mm in 3 h is 9 mm/h, ratio ≈ 0.91.
        let input = assessment(tick, 27.0);
        let mut alone = DebrisFlowChain::new(gully(), Vec::new());
        let own = alone
            .on_assessment(&input, None, &config, &policy)
            .expect("the gully's own rain warns");
        assert_eq!(own.caused_by, None);

        let flood = flash_flood_warning(tick, Level::Orange);
        let mut chained = DebrisFlowChain::new(gully(), Vec::new());
        let raised = chained
            .on_assessment(&input, Some(&flood), &config, &policy)
            .expect("warns");
        assert!(raised.level > own.level, "{raised:?} vs {own:?}");
        assert_eq!(raised.caused_by.as_ref(), Some(&flood.id));
        assert_eq!(raised.id, warning_id(Hazard::DebrisFlow, "B0003", tick));
        assert_eq!(raised.status, Status::Issued);
        assert!(raised
            .evidence
            .iter()
            .any(|e| e.quantity.starts_with("debris_id_")));
    }

    #[test]
    fn without_rain_of_its_own_a_flash_flood_does_not_start_a_debris_flow_warning() {
        let (config, policy) = (DebrisFlowConfig::default(), LifecyclePolicy::default());
        let tick = EventTime(10 * HOUR_MS);
        let flood = flash_flood_warning(tick, Level::Red);
        let mut chain = DebrisFlowChain::new(gully(), Vec::new());
        let emitted = chain.on_assessment(&assessment(tick, 1.0), Some(&flood), &config, &policy);
        assert_eq!(emitted, None);
        assert!(chain.active().is_none());
    }
}
