//! Areal (basin-average) rainfall from gauge values (hazards.md §2.4): arithmetic mean,
//! inverse-distance weighting, and precomputed (Thiessen) weights renormalised when gauges
//! are missing or incomplete.

/// A basin-average value built from weighted gauges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArealValue {
    /// Basin-average depth in millimetres, over the gauges that were kept.
    pub mm: f64,
    /// Fraction of the total weight held by the gauges that were kept (0..=1).
    pub weight_present: f64,
    /// Basin-weighted fraction of expected reports that made it into the value:
    /// `Σ_kept wᵢ·cᵢ / Σ_all wᵢ` (0..=1). It is 1 only when every gauge reported completely.
    pub completeness: f64,
    /// True when at least one gauge was dropped and the remaining weights were renormalised
    /// (hazards.md §2.4, `degraded=true` [UNCONFIRMED policy]).
    pub degraded: bool,
}

/// Returns the arithmetic mean of the gauge values, or `None` when there are none.
pub fn arithmetic_mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(values.iter().sum::<f64>() / values.len() as f64)
}

/// Returns the inverse-distance-weighted value `Σ wᵢPᵢ / Σ wᵢ` with `wᵢ = dᵢ^(−power)` from
/// `(distance_km, value)` pairs, or `None` when there are none.
///
/// A gauge at distance zero is an exact hit: the mean of the zero-distance values is returned,
/// since its weight would be infinite.
pub fn idw(gauges: &[(f64, f64)], power: f64) -> Option<f64> {
    let exact: Vec<f64> = gauges
        .iter()
        .filter(|(distance, _)| *distance <= 0.0)
        .map(|&(_, value)| value)
        .collect();
    if !exact.is_empty() {
        return arithmetic_mean(&exact);
    }
    let (weighted, total) =
        gauges
            .iter()
            .fold((0.0, 0.0), |(weighted, total), &(distance, value)| {
                let weight = distance.powf(-power);
                (weighted + weight * value, total + weight)
            });
    (total > 0.0).then(|| weighted / total)
}

/// Returns true when a gauge reading with this completeness is used in an areal value.
pub(crate) fn is_usable(completeness: f64, min_completeness: f64) -> bool {
    completeness >= min_completeness
}

/// Returns the weighted basin average of `(weight, Option<(value_mm, completeness)>)` gauges.
///
/// Gauges that are missing (`None`) or whose completeness is below `min_completeness` are
/// dropped and the remaining weights renormalised to sum to one; the result is then marked
/// degraded. Returns `None` when no gauge is left or the kept weights do not sum to a positive
/// number.
pub fn weighted_areal(
    gauges: &[(f64, Option<(f64, f64)>)],
    min_completeness: f64,
) -> Option<ArealValue> {
    let total_weight: f64 = gauges.iter().map(|(weight, _)| weight).sum();
    let mut kept_weight = 0.0;
    let mut weighted_mm = 0.0;
    let mut weighted_completeness = 0.0;
    let mut degraded = false;
    for &(weight, reading) in gauges {
        match reading {
            Some((mm, completeness)) if is_usable(completeness, min_completeness) => {
                kept_weight += weight;
                weighted_mm += weight * mm;
                weighted_completeness += weight * completeness;
            }
            _ => degraded = true,
        }
    }
    if kept_weight <= 0.0 || total_weight <= 0.0 {
        return None;
    }
    Some(ArealValue {
        mm: weighted_mm / kept_weight,
        weight_present: kept_weight / total_weight,
        completeness: weighted_completeness / total_weight,
        degraded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    /// TV2.4 (hazards.md §2.4, Dingman, *Physical Hydrology*): six gauges inside the basin, then
    /// with the three outside gauges. The reference states 59.56 mm for the nine gauges, but its
    /// own values sum to 546 mm, whose mean is 60.67 mm (59.56 × 9 = 536); the test asserts the
    /// arithmetic of the stated values.
    #[test]
    fn tv2_4_arithmetic_mean() {
        let inside = [28.0, 37.0, 68.0, 114.0, 75.0, 126.0];
        assert_close(arithmetic_mean(&inside).unwrap(), 74.67, 0.005);
        let all = [28.0, 37.0, 68.0, 114.0, 75.0, 126.0, 16.0, 38.0, 44.0];
        assert_close(arithmetic_mean(&all).unwrap(), 60.67, 0.005);
        assert_eq!(arithmetic_mean(&[]), None);
    }

    /// TV2.5 (hazards.md §2.4): p = 2, distances 1, 2, 4 km, values 10, 20, 40 mm → 13.33 mm.
    #[test]
    fn tv2_5_inverse_distance() {
        let gauges = [(1.0, 10.0), (2.0, 20.0), (4.0, 40.0)];
        assert_close(idw(&gauges, 2.0).unwrap(), 13.33, 0.005);
        assert_eq!(idw(&[(0.0, 7.0), (3.0, 50.0)], 2.0), Some(7.0));
        assert_eq!(idw(&[], 2.0), None);
    }

    #[test]
    fn complete_gauges_give_the_weighted_mean() {
        let gauges = [
            (0.5, Some((10.0, 1.0))),
            (0.3, Some((20.0, 1.0))),
            (0.2, Some((40.0, 1.0))),
        ];
        let value = weighted_areal(&gauges, 0.5).unwrap();
        assert_close(value.mm, 19.0, 1e-9);
        assert_close(value.weight_present, 1.0, 1e-9);
        assert_close(value.completeness, 1.0, 1e-9);
        assert!(!value.degraded);
    }

    /// Renormalisation (hazards.md §2.4): the 0.3 gauge is missing and the 0.2 gauge is too
    /// incomplete, so the 0.5 gauge alone carries the basin: 10 mm, half the weight present.
    #[test]
    fn missing_and_incomplete_gauges_are_dropped_and_weights_renormalised() {
        let gauges = [
            (0.5, Some((10.0, 0.8))),
            (0.3, None),
            (0.2, Some((40.0, 0.4))),
        ];
        let value = weighted_areal(&gauges, 0.5).unwrap();
        assert_close(value.mm, 10.0, 1e-9);
        assert_close(value.weight_present, 0.5, 1e-9);
        assert_close(value.completeness, 0.4, 1e-9);
        assert!(value.degraded);

        // Dropping only the missing gauge: (0.5·10 + 0.2·40) / 0.7 = 18.57 mm.
        let value = weighted_areal(&gauges, 0.3).unwrap();
        assert_close(value.mm, 13.0 / 0.7, 1e-9);
        assert_close(value.weight_present, 0.7, 1e-9);
        assert!(value.degraded);
    }

    #[test]
    fn nothing_left_gives_none() {
        assert_eq!(
            weighted_areal(&[(1.0, None), (1.0, Some((5.0, 0.1)))], 0.5),
            None
        );
        assert_eq!(weighted_areal(&[], 0.5), None);
    }
}
