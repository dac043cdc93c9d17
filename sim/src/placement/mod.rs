//! Scheduling decisions without side effects: what a pod requests
//! (`resources`) and which nodes it may go to (`affinity`), the
//! scheduler's view of the nodes kept in step with the store (`cache`), and
//! which node takes a pod or the message saying why none does (`fit`). The scheduler controller writes what they decide.

mod affinity;
mod cache;
mod fit;
mod resources;

#[cfg(test)]
mod tests;

pub use cache::{NodeCache, SCHEDULER_NAME, is_waiting};
pub use fit::{FitError, Needs, place};
pub use resources::{Resources, qos_class, spec_requests};
