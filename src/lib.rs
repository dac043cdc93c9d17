//! servicerefresh: a Kubernetes operator that restarts fleets of Deployments in ready-gated
//! batches. The crate splits into the CRD types, a pure decision engine, the stateful policy
//! the shell consults, and the thin IO shell (controller, CLI, the admin job API) around them.

pub mod admin;
#[cfg(feature = "sim")]
pub mod bench;
pub mod cli;
pub mod controller;
pub mod crd;
#[cfg(feature = "sim")]
pub mod demo;
pub mod engine;
pub mod policy;
pub mod telemetry;
