//! Falco-compatible rule files compiled and evaluated against driftwatch events; no I/O
