//! servicerefresh: a Kubernetes operator that restarts fleets of Deployments in ready-gated
//! batches. The crate splits into the CRD types, a pure decision engine, and the thin IO
//! shell (controller, CLI) around it.

pub mod cli;
pub mod controller;
pub mod crd;
pub mod demo;
pub mod engine;
