//! Wires sensors, container runtime, image verdicts and rules into the alerting pipeline
