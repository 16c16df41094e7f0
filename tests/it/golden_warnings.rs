//! The golden file of the storm's warning versions, shared by the Kafka test and the replay
//! test: one line `id version status level action` per version, sorted.

use tianshan_proto::v1;

/// The golden file.
pub const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/it/golden/storm_warnings.txt"
);

/// Returns the golden line of one warning version.
pub fn golden_line(w: &v1::Warning) -> String {
    format!(
        "{} v{} {} {} {}",
        w.id,
        w.version,
        w.status().as_str_name(),
        w.level().as_str_name(),
        w.action().as_str_name()
    )
}

/// Returns the sorted lines as the golden file's text.
pub fn golden_text(mut lines: Vec<String>) -> String {
    lines.sort();
    lines.join("\n") + "\n"
}

/// Returns the golden file's text.
pub fn read_golden() -> String {
    std::fs::read_to_string(GOLDEN)
        .expect("golden file exists (run the storm test with UPDATE_GOLDEN=1 to create it)")
}
