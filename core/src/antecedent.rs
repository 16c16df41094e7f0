//! Antecedent precipitation index (API, 前期影响雨量 Pa) and the meteorological day (hazards.md §3).
//!
//! Two daily recursions are in use: form (a), today's rain included, `API_t = k·API_{t−1} + P_t`;
//! and the Chinese hydrological form (c), the state at the start of a day,
//! `Pa_{t+1} = K·(Pa_t + P_t)` capped at the basin capacity `Wm`. Sub-daily steps decay by
//! `k^(Δt/24)`, which matches the daily definition exactly at day boundaries.

use crate::time::{EventTime, BEIJING_OFFSET_MS, HOUR_MS};

/// Milliseconds in one day.
const DAY_MS: i64 = 24 * HOUR_MS;

/// Shift that moves the 20:00 Beijing-time day boundary onto midnight.
const MET_DAY_SHIFT_MS: i64 = BEIJING_OFFSET_MS + 4 * HOUR_MS;

/// Returns the meteorological day of an instant, as days since 1970-01-01 of the Beijing date on
/// which that day ends.
///
/// The Chinese meteorological day runs from 20:00 Beijing time (12:00 UTC) of the previous date
/// to 20:00 of its own date. Like every window here it is open at the start and closed at the end,
/// so an observation stamped exactly 20:00 belongs to the day that ends then.
pub fn met_day(t: EventTime) -> i64 {
    (t.millis() + MET_DAY_SHIFT_MS - 1).div_euclid(DAY_MS)
}

/// Returns the API at the end of the last day of `daily` (oldest first), form (a):
/// `API_t = k·API_{t−1} + P_t`, starting from 0 before the first day.
pub fn api_include_today(daily: &[f64], k: f64) -> f64 {
    daily.iter().fold(0.0, |api, &p| k * api + p)
}

/// Returns one step of form (c): the Pa at the start of the next day, `min(Wm, K·(Pa + P))`.
pub fn pa_step(pa: f64, p: f64, k: f64, wm: f64) -> f64 {
    (k * (pa + p)).min(wm)
}

/// Returns Pa at the start of the day that follows `daily_before_today` (oldest first), form (c),
/// starting from 0 and applying the cap `wm` at each step (`f64::INFINITY` for no cap).
pub fn pa_start_of_day(daily_before_today: &[f64], k: f64, wm: f64) -> f64 {
    daily_before_today
        .iter()
        .fold(0.0, |pa, &p| pa_step(pa, p, k, wm))
}

/// Returns the decay factor `k^(Δt/24)` for a step of `step_h` hours given the daily factor `k`.
pub fn decay_for(step_h: f64, k: f64) -> f64 {
    k.powf(step_h / 24.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
    }

    /// TV3.1 (hazards.md §3): k = 0.9, daily P = 10, 0, 20, 0, 0 mm.
    #[test]
    fn tv3_1_both_forms() {
        let daily = [10.0, 0.0, 20.0, 0.0, 0.0];
        let api = [10.0, 9.0, 28.1, 25.29, 22.761];
        let pa = [0.0, 9.0, 8.1, 25.29, 22.761];
        for day in 0..daily.len() {
            close(api_include_today(&daily[..=day], 0.9), api[day]);
            close(pa_start_of_day(&daily[..day], 0.9, f64::INFINITY), pa[day]);
        }
    }

    /// TV3.2 (hazards.md §3): Wm 25, Pa 20, P 15, K 0.9 → 31.5 capped to 25.0.
    #[test]
    fn tv3_2_cap_at_wm() {
        close(pa_step(20.0, 15.0, 0.9, 25.0), 25.0);
        close(pa_step(20.0, 15.0, 0.9, f64::INFINITY), 31.5);
        // The cap applies at every step, not only at the end: 40 → 25 → 0.9·(25 + 0).
        close(pa_start_of_day(&[100.0, 0.0], 0.9, 25.0), 22.5);
    }

    #[test]
    fn sub_daily_decay_matches_the_daily_factor() {
        close(decay_for(24.0, 0.9), 0.9);
        close(decay_for(1.0, 0.9).powi(24), 0.9);
        close(decay_for(10.0 / 60.0, 0.9).powi(144), 0.9);
    }

    /// The meteorological day ends at 20:00 Beijing time (hazards.md Conventions).
    #[test]
    fn met_day_turns_at_20_beijing() {
        let at = |text: &str| met_day(EventTime::parse_rfc3339(text).unwrap());
        let day = at("2024-07-01T12:00:00+08:00");
        assert_eq!(
            day,
            EventTime::parse_rfc3339("2024-07-01T00:00:00Z")
                .unwrap()
                .millis()
                / DAY_MS
        );
        assert_eq!(at("2024-06-30T20:00:01+08:00"), day);
        assert_eq!(at("2024-07-01T20:00:00+08:00"), day);
        assert_eq!(at("2024-07-01T12:00:00Z"), day);
        assert_eq!(at("2024-07-01T20:00:01+08:00"), day + 1);
        assert_eq!(at("2024-06-30T20:00:00+08:00"), day - 1);
        assert_eq!(met_day(EventTime(0)), 0);
    }
}
