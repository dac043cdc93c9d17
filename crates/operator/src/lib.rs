//! The operator's IO shell around the pure core: the controller (watches, reconcile, the
//! writes, leader election, the client layers) and its telemetry (metrics, probes and their
//! HTTP listener).

pub mod controller;
pub mod shutdown;
pub mod telemetry;
