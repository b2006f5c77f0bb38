//! Replays the fuzz corpora (`fuzz/corpus/TARGET`) and every input that
//! once crashed a target (`fuzz/regressions/TARGET`) through the same entry
//! points the fuzz targets call, so CI guards them without nightly.

use std::path::Path;

#[test]
fn every_corpus_and_regression_input_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for kind in ["corpus", "regressions"] {
        let dir = root.join(kind);
        for target in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let target = target.expect("dir entry").path();
            let name = target
                .file_name()
                .and_then(|n| n.to_str())
                .expect("utf-8 name");
            let run = ebpf_exporter::fuzz::target(name)
                .unwrap_or_else(|| panic!("{}: no fuzz target named {name}", target.display()));
            let mut files = 0;
            for input in std::fs::read_dir(&target).expect("read target dir") {
                let input = input.expect("dir entry").path();
                let data = std::fs::read(&input).expect("read input");
                let outcome = std::panic::catch_unwind(|| run(&data));
                assert!(outcome.is_ok(), "{} fails", input.display());
                files += 1;
            }
            if kind == "corpus" {
                assert!(files > 0, "{}: empty seed corpus", target.display());
            }
            replayed += files;
        }
    }
    assert!(replayed >= 30, "only {replayed} inputs");
}
