//! In-process alert sinks (the responder): they run on the sensors' threads after the
//! configured outputs (crate `driftwatch-outputs`) have queued the alert, and must not block.

use std::io;

use driftwatch_model::Alert;

pub trait AlertSink: Send {
    fn emit(&mut self, alert: &Alert) -> io::Result<()>;
    fn name(&self) -> String;
}
