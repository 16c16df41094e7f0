//! The Helm chart `helm/tianshan`: `helm/check.py` lints it, renders it with the default and the
//! production-like values (and a few variants) and validates every manifest offline against the
//! Kubernetes schemas; the tianshan.toml that each render puts in the ConfigMap, with the
//! `TIANSHAN__*` variables of the pod, must then load in the binary; and the chart's copy of
//! default.toml must be the repository's. Needs python3 with the pinned helm-python-sdk and
//! kubernetes-validate (installed by .ci/run); without them the test fails, it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

const INSTALL_HINT: &str =
    "python3 -m pip install 'helm-python-sdk==0.2.2' 'kubernetes-validate==1.37.0'";

/// The cases of `helm/check.py` whose rendered config is written.
const CASES: [&str; 5] = [
    "default",
    "production",
    "production-inline-secrets",
    "hpa",
    "options",
];

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

#[test]
fn chart_copy_of_default_toml_is_the_repository_default_toml() {
    let chart_copy = read(&repository().join("helm/tianshan/files/default.toml"));
    let default_toml = read(&repository().join("default.toml"));
    assert!(
        chart_copy == default_toml,
        "helm/tianshan/files/default.toml differs from default.toml; the chart renders its \
         ConfigMap from it, so copy it over: cp default.toml helm/tianshan/files/default.toml"
    );
}

/// Runs `tianshan --config <case>.toml replay <empty file>` with the pod's `TIANSHAN__*`
/// variables: the binary loads and validates the whole configuration before it replays nothing.
/// The token and TLS files the config names are mounted in the pod and not read here.
fn assert_binary_loads(dir: &Path, case: &str, empty_observations: &Path) {
    let config = dir.join(format!("{case}.toml"));
    let variables: Vec<(String, String)> = read(&dir.join(format!("{case}.env")))
        .lines()
        .map(|line| {
            let (name, value) = line
                .split_once('=')
                .expect("check.py writes NAME=VALUE lines");
            (name.to_owned(), value.to_owned())
        })
        .collect();
    let output = Command::new(env!("CARGO_BIN_EXE_tianshan"))
        .arg("--config")
        .arg(&config)
        .arg("replay")
        .arg(empty_observations)
        .envs(variables.iter().map(|(name, value)| (name, value)))
        .current_dir(repository())
        .output()
        .expect("run the tianshan binary");
    assert!(
        output.status.success(),
        "{case}: the binary refuses the chart's config {} with {variables:?} ({}):\n{}",
        config.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn chart_lints_renders_validates_and_its_configs_load_in_the_binary() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("helm_chart");
    // Stale files of an earlier run must not stand in for this run's.
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove the previous run's configs");
    }
    let script = repository().join("helm/check.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg("--write-configs")
        .arg(&dir)
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run python3 ({err}): the chart check needs python3 with {INSTALL_HINT}")
        });
    assert!(
        output.status.success(),
        "{} failed ({}); it needs python3 with {INSTALL_HINT}:\n{}{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let empty_observations = dir.join("no-observations.jsonl");
    std::fs::write(&empty_observations, "").expect("write an empty observation file");
    for case in CASES {
        assert_binary_loads(&dir, case, &empty_observations);
    }
}
