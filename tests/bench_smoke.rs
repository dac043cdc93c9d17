//! `servicerefresh bench` runs end to end: its fastest scenario (the status size, the engine
//! alone over a model fleet) at the quick sizes, printing its table and writing its JSON.
//! The figures themselves are never asserted; the benchmark reports them.

use std::process::Command;

#[test]
fn bench_quick_status_prints_and_writes_its_figures() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let json = dir.path().join("bench.json");
    let output = Command::new(env!("CARGO_BIN_EXE_servicerefresh"))
        .args(["bench", "--quick", "--only", "status", "--json"])
        .arg(&json)
        .output()
        .expect("binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("status size, 1000 services"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON written"))
            .expect("JSON parses");
    assert_eq!(report["setup"]["quick"], true);
    let ids: Vec<&str> = report["figures"]
        .as_array()
        .expect("figures")
        .iter()
        .filter_map(|figure| figure["id"].as_str())
        .collect();
    assert_eq!(ids, ["status1000.largestKiB", "status1000.finalKiB", "status1000.bytesPerRestart"]);
    // Every scenario runs three times by default; each figure keeps its samples.
    assert_eq!(report["setup"]["repeat"], 3);
    assert_eq!(report["figures"][0]["samples"].as_array().map(Vec::len), Some(3), "{report}");
    assert_eq!(report["setup"]["loadAverage"].as_array().map(Vec::len), Some(3), "{report}");
    // Quick figures carry no targets: the targets are for the full sizes.
    assert!(report["figures"][0].get("target").is_none(), "{report}");
}
