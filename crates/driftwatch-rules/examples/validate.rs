//! Validates rule files on top of the defaults and prints every diagnostic (a dev aid; the
//! real command is `driftwatch rules validate`).

fn main() {
    let extra: Vec<driftwatch_rules::Source> = std::env::args()
        .skip(1)
        .map(|p| {
            driftwatch_rules::Source::new(
                p.clone(),
                std::fs::read_to_string(&p).unwrap_or_default(),
            )
        })
        .collect();
    match driftwatch_rules::RuleSet::load_with_defaults(&extra) {
        Ok(l) => {
            for w in &l.warnings {
                println!("{}", w.render());
            }
            for (i, r) in l.ruleset.rules() {
                println!(
                    "{} [{}] {:?} {:?}",
                    r.name, r.priority, r.tags, r.event_types
                );
                if std::env::var_os("EXPLAIN").is_some() {
                    println!("    {}", l.ruleset.explain(i));
                }
            }
        }
        Err(ds) => {
            for d in &ds {
                println!("{}", d.render());
            }
            std::process::exit(1);
        }
    }
}
