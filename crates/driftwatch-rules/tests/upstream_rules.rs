//! Scratch.
use driftwatch_rules::{RuleSet, Source};
#[test]
fn dump() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/falcosecurity-rules/"
    );
    let mut srcs = vec![];
    for f in [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ] {
        srcs.push(Source::new(
            f,
            std::fs::read_to_string(format!("{dir}{f}")).unwrap(),
        ));
    }
    match RuleSet::load_with_defaults(&srcs) {
        Ok(_) => println!("OK"),
        Err(ds) => {
            for d in ds {
                println!("{}", d.render().lines().next().unwrap());
            }
        }
    }
}
