//! Development tools that never ship in the production binary: the self-contained demo, the
//! `sim` and `demo` subcommands over the simulated cluster, and the `bench` measurements.
//! The binary includes this crate only with its default `dev` feature.

pub mod bench;
pub mod demo;
pub mod plans;
pub mod sim_commands;
