//! The pure heart of servicerefresh: the `ServiceRefresh` resource types (`crd`), the
//! decision engine that turns one observation into the next status and the actions to take
//! (`engine`), and the small stateful policies the IO shell consults between passes
//! (`policy`). Nothing here talks to an API server, reads a clock or needs an async
//! runtime: the operator crate supplies every observation and carries out every decision.

pub mod crd;
pub mod engine;
pub mod policy;
