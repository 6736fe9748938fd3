//! Replays every input saved under `fuzz/regressions/` (crashes that `scripts/fuzz` found, and
//! hand-picked tricky inputs) through the same checks as the fuzz targets.

use std::path::Path;

include!("../../fuzz/checks.rs");

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("regression input"))
        })
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn phone_regressions_normalise_or_are_refused() {
    let inputs = inputs("phone");
    assert!(!inputs.is_empty());
    for (name, data) in inputs {
        eprintln!("replaying phone/{name}");
        check_phone(&data);
    }
}

#[test]
fn body_regressions_are_parsed_or_refused_as_400() {
    let inputs = inputs("body");
    assert!(!inputs.is_empty());
    for (name, data) in inputs {
        eprintln!("replaying body/{name}");
        check_body(&data);
    }
}
