//! Pacing: the rules that hold runs back for the operator's own reasons rather than the
//! cluster's. Trigger changes settle before they start a run ([`settle`]); trigger-started
//! runs are counted per hour and a storm of them stalls the resource ([`storm`]); a
//! Deployment is not restarted twice within the operator's minimum interval ([`interval`]);
//! and batches start only inside the maintenance windows ([`windows`]). Every function here is
//! pure: the time and every fact arrive as arguments.

pub mod interval;
pub mod settle;
pub mod storm;
pub mod windows;
