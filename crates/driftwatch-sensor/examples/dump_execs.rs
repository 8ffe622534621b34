//! Prints every exec the sensor sees (outside the host's mount namespace) until Ctrl-C.
//! `cargo run -p driftwatch-sensor --example dump_execs` as root.

fn main() {
    let sensor = driftwatch_sensor::ExecSensor::start(Default::default(), |r| println!("{r:?}"));
    match sensor {
        Ok(s) => {
            let secs = std::env::args()
                .nth(1)
                .and_then(|a| a.parse().ok())
                .unwrap_or(3600);
            std::thread::sleep(std::time::Duration::from_secs(secs));
            eprintln!("stats: {:?}", s.stats());
        }
        Err(e) => {
            eprintln!("driftwatch-sensor: {e}");
            std::process::exit(1);
        }
    }
}
