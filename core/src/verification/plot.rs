//! The SVG of a backtest, written by hand: POD, FAR and CSI against the rain-threshold factor
//! (top), and the lead times of each hazard's hits as dots with their median (bottom).

use std::fmt::Write;

use crate::warning::{Hazard, Level};

use super::Scores;

const WIDTH: f64 = 790.0;
const LEFT: f64 = 130.0;
const RIGHT: f64 = 720.0;
const SCORES_TOP: f64 = 60.0;
const SCORES_BOTTOM: f64 = 280.0;
const LEADS_TOP: f64 = 360.0;
const LEAD_ROW: f64 = 40.0;

/// How a series reads its score from a group's scores.
type ScoreOf = fn(&Scores) -> Option<f64>;

/// The three score series: name, colour, score.
const SERIES: [(&str, &str, ScoreOf); 3] = [
    ("POD", "#1f77b4", Scores::pod),
    ("FAR", "#d62728", Scores::far),
    ("CSI", "#2ca02c", Scores::csi),
];

/// Returns an SVG document: the scores at threshold `level` for each `(factor, scores)` of a
/// sweep (in factor order), and the lead times (ms) of each hazard's hits at `leads_factor`.
pub fn backtest_svg(
    level: Level,
    sweep: &[(f64, Scores)],
    leads_factor: f64,
    leads: &[(Hazard, Vec<i64>)],
) -> String {
    let leads_bottom = LEADS_TOP + LEAD_ROW * leads.len().max(1) as f64;
    let height = leads_bottom + 60.0;
    let mut svg = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    scores_panel(&mut svg, level, sweep);
    leads_panel(&mut svg, level, leads_factor, leads, leads_bottom);
    svg.push_str("</svg>\n");
    svg
}

fn scores_panel(svg: &mut String, level: Level, sweep: &[(f64, Scores)]) {
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="30" font-size="15">Scores of warnings at ≥ {level} against the rain-threshold factor</text>"#
    );
    let (low, high) = match (sweep.first(), sweep.last()) {
        (Some((first, _)), Some((last, _))) if last > first => (*first, *last),
        (Some((only, _)), _) => (only - 0.1, only + 0.1),
        _ => (0.9, 1.1),
    };
    let x = |factor: f64| LEFT + (factor - low) / (high - low) * (RIGHT - LEFT);
    let y = |score: f64| SCORES_BOTTOM - score * (SCORES_BOTTOM - SCORES_TOP);
    axes(svg, SCORES_TOP, SCORES_BOTTOM);
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{0:.1}" x2="{RIGHT}" y2="{0:.1}" stroke="#ddd"/><text x="{1}" y="{2:.1}" text-anchor="end">{tick:.2}</text>"##,
            y(tick),
            LEFT - 6.0,
            y(tick) + 4.0
        );
    }
    // At most about 15 labels, so a fine sweep stays readable.
    let every = sweep.len().div_ceil(15).max(1);
    for (factor, _) in sweep.iter().step_by(every) {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{factor:.2}</text>"#,
            x(*factor),
            SCORES_BOTTOM + 16.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">rain-threshold factor</text>"#,
        (LEFT + RIGHT) / 2.0,
        SCORES_BOTTOM + 34.0
    );
    for (index, (name, colour, score)) in SERIES.iter().enumerate() {
        // A score undefined at some factor breaks its line there.
        let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (factor, scores) in sweep {
            match score(scores) {
                Some(value) => segments
                    .last_mut()
                    .expect("one segment at least")
                    .push((x(*factor), y(value))),
                None => segments.push(Vec::new()),
            }
        }
        for segment in segments.iter().filter(|s| !s.is_empty()) {
            let points: Vec<String> = segment
                .iter()
                .map(|(px, py)| format!("{px:.1},{py:.1}"))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline class="{name}" points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                points.join(" ")
            );
            for (px, py) in segment {
                let _ = writeln!(
                    svg,
                    r#"<circle class="{name}" cx="{px:.1}" cy="{py:.1}" r="3" fill="{colour}"/>"#
                );
            }
        }
        let legend_y = SCORES_TOP + 14.0 * index as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{0}" y1="{legend_y}" x2="{1}" y2="{legend_y}" stroke="{colour}" stroke-width="2"/><text x="{2}" y="{3}">{name}</text>"#,
            RIGHT + 4.0,
            RIGHT + 18.0,
            RIGHT + 21.0,
            legend_y + 4.0
        );
    }
}

fn leads_panel(
    svg: &mut String,
    level: Level,
    factor: f64,
    leads: &[(Hazard, Vec<i64>)],
    bottom: f64,
) {
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="{}" font-size="15">Lead times of hits at ≥ {level}, factor {factor:.2} (dots; bar: median)</text>"#,
        LEADS_TOP - 24.0
    );
    let longest_min = leads
        .iter()
        .flat_map(|(_, times)| times.iter())
        .map(|ms| *ms as f64 / 60_000.0)
        .fold(0.0, f64::max);
    // The axis ends on a whole hour, at least one.
    let end_min = ((longest_min / 60.0).ceil() * 60.0).max(60.0);
    let x = |minutes: f64| LEFT + minutes / end_min * (RIGHT - LEFT);
    axes(svg, LEADS_TOP, bottom);
    let hours = (end_min / 60.0) as u32;
    let every = hours.div_ceil(12).max(1);
    for hour in (0..=hours).step_by(every as usize) {
        let minutes = f64::from(hour) * 60.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.1}" y1="{LEADS_TOP}" x2="{0:.1}" y2="{bottom}" stroke="#ddd"/><text x="{0:.1}" y="{1}" text-anchor="middle">{hour} h</text>"##,
            x(minutes),
            bottom + 16.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">lead time (event start − first warning at ≥ {level})</text>"#,
        (LEFT + RIGHT) / 2.0,
        bottom + 34.0
    );
    for (row, (hazard, times)) in leads.iter().enumerate() {
        let centre = LEADS_TOP + LEAD_ROW * (row as f64 + 0.5);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{} (n={})</text>"#,
            LEFT - 6.0,
            centre + 4.0,
            hazard.name(),
            times.len()
        );
        for ms in times {
            let _ = writeln!(
                svg,
                r##"<circle class="lead" cx="{:.1}" cy="{centre:.1}" r="4" fill="#1f77b4" fill-opacity="0.6"/>"##,
                x(*ms as f64 / 60_000.0)
            );
        }
        let scores = Scores {
            lead_times_ms: times.clone(),
            ..Scores::default()
        };
        if let Some(median) = scores.median_lead_ms() {
            let _ = writeln!(
                svg,
                r#"<line class="median" x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="black" stroke-width="2"/>"#,
                x(median as f64 / 60_000.0),
                centre - 12.0,
                centre + 12.0
            );
        }
    }
}

fn axes(svg: &mut String, top: f64, bottom: f64) {
    let _ = writeln!(
        svg,
        r#"<polyline class="axes" points="{LEFT},{top} {LEFT},{bottom} {RIGHT},{bottom}" fill="none" stroke="black"/>"#
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(hits: u32, misses: u32, false_alarms: u32) -> Scores {
        Scores {
            hits,
            misses,
            false_alarms,
            lead_times_ms: Vec::new(),
        }
    }

    #[test]
    fn the_plot_is_svg_with_a_point_per_defined_score_and_lead() {
        // Factor 1.4 hits nothing and warns of nothing: POD 0/2 and CSI 0/2 are defined, FAR
        // (0/0) is not, so the FAR line stops at 1.0.
        let sweep = vec![
            (0.6, scores(2, 0, 3)),
            (1.0, scores(1, 1, 1)),
            (1.4, scores(0, 2, 0)),
        ];
        let leads = vec![
            (Hazard::FlashFlood, vec![3_600_000, 7_200_000, 9_000_000]),
            (Hazard::DebrisFlow, vec![]),
        ];
        let svg = backtest_svg(Level::Orange, &sweep, 1.0, &leads);
        let document = roxmltree::Document::parse(&svg).expect("well-formed XML");
        let circles = |class: &str| {
            document
                .descendants()
                .filter(|n| n.has_tag_name("circle") && n.attribute("class") == Some(class))
                .count()
        };
        assert_eq!(circles("POD"), 3);
        assert_eq!(circles("FAR"), 2);
        assert_eq!(circles("CSI"), 3);
        assert_eq!(circles("lead"), 3);
        // One median bar: the debris-flow row has no hits.
        let medians = document
            .descendants()
            .filter(|n| n.attribute("class") == Some("median"))
            .collect::<Vec<_>>();
        assert_eq!(medians.len(), 1);
        // The median (2 h) on a 3-h axis from x=130 to x=720: 130 + 2/3 × 590 = 523.3.
        assert_eq!(medians[0].attribute("x1"), Some("523.3"));
        // POD at factor 0.6 is 1: the top of the panel, at the left end.
        let pod = document
            .descendants()
            .find(|n| n.has_tag_name("polyline") && n.attribute("class") == Some("POD"))
            .expect("POD line");
        assert!(pod
            .attribute("points")
            .expect("points")
            .starts_with("130.0,60.0 "));
        assert!(svg.contains("debris_flow (n=0)"));
    }
}
