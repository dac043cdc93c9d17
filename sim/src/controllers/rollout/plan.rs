//! A rollout plan: the pods a Deployment starts from, the RollingUpdate
//! limits the real controller resolves (maxSurge rounded up, maxUnavailable
//! rounded down, 25% each by default), and the waves in which the new
//! ReplicaSet scales up and the old ones down.

use serde_json::Value;

/// Pod counts of a Deployment during a rollout. Old pods are always
/// available (the ones that were not are dropped when a rollout starts, as
/// the controller cleans up unhealthy old replicas first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PodCounts {
    /// Pods of old ReplicaSets (all ready and available).
    pub old: u64,
    /// Pods of the new ReplicaSet.
    pub new_total: u64,
    /// Ready (and, with minReadySeconds 0, available) pods of the new ReplicaSet.
    pub new_ready: u64,
    /// Pods of the new ReplicaSet no node took (yet): they count as updated
    /// but never become ready while unbound.
    pub new_unbound: u64,
}

impl PodCounts {
    /// Every pod, old and new.
    pub fn total(&self) -> u64 {
        self.old + self.new_total
    }
    /// Available pods (old ones always are).
    pub fn available(&self) -> u64 {
        self.old + self.new_ready
    }
}

/// A rollout in progress (or finished) for one Deployment generation.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutPlan {
    /// Simulated time (ms since the epoch) the controller first acts.
    pub started_at_ms: u64,
    /// Total duration the rollout takes when it does not fail.
    pub duration_ms: u64,
    /// New pods never become ready.
    pub fail: bool,
    /// `spec.paused` at the time of the change: the controller does not roll.
    pub paused: bool,
    /// The previous plan was paused and this one is not.
    pub resumed: bool,
    /// `spec.replicas` (desired pods).
    pub replicas: u64,
    /// Resolved maxSurge (pods).
    pub max_surge: u64,
    /// Resolved maxUnavailable (pods).
    pub max_unavailable: u64,
    /// `spec.progressDeadlineSeconds` in ms; `None` when it is MaxInt32 (no deadline).
    pub deadline_ms: Option<u64>,
    /// The pods when the rollout begins.
    pub from: PodCounts,
    /// Hash of the pod template this rollout rolls to.
    pub template_hash: String,
    /// Name of the new ReplicaSet (`<deployment>-<hash>`).
    pub new_rs_name: String,
    /// The pod template changed: a new ReplicaSet is created.
    pub template_changed: bool,
    /// The conditions before this rollout (the controller only changes them
    /// through its set-condition rule, which keeps transition times).
    pub prior_conditions: Vec<Value>,
    /// Length of one wave (time for new pods to become ready).
    pub wave_ms: u64,
    /// For pods the kubelet runs for real: the rollout moves when new pods
    /// become ready, not on the clock. The pod counts so far, each with the
    /// time (ms) it was observed, the plan's start first.
    pub observed: Option<Vec<(u64, PodCounts)>>,
    /// Set when this plan continues an earlier one of the same rollout from
    /// `started_at_ms` (see [`super::rebase`]): when that one last made
    /// progress, which the progress deadline still counts from.
    pub continues_from: Option<u64>,
}

/// Resolves an int-or-percent value against `total`, rounding up or down.
fn resolve_int_or_percent(value: Option<&Value>, total: u64, round_up: bool) -> u64 {
    let default = Value::String("25%".to_owned());
    let value = value.unwrap_or(&default);
    if let Some(count) = value.as_u64() {
        return count;
    }
    if let Some(percent) = value
        .as_str()
        .and_then(|text| text.strip_suffix('%'))
        .and_then(|digits| digits.parse::<u64>().ok())
    {
        let scaled = total * percent;
        return if round_up { scaled.div_ceil(100) } else { scaled / 100 };
    }
    0
}

/// (maxSurge, maxUnavailable) in pods, as the controller resolves them.
pub fn surge_and_unavailable(deployment: &Value, replicas: u64) -> (u64, u64) {
    let strategy = deployment.pointer("/spec/strategy");
    let is_recreate = strategy.and_then(|strategy| strategy.get("type")).and_then(Value::as_str)
        == Some("Recreate");
    if is_recreate {
        return (0, replicas);
    }
    let rolling = strategy.and_then(|strategy| strategy.get("rollingUpdate"));
    let limit = |key: &str| rolling.and_then(|rolling| rolling.get(key));
    let surge = resolve_int_or_percent(limit("maxSurge"), replicas, true);
    let mut unavailable = resolve_int_or_percent(limit("maxUnavailable"), replicas, false);
    if surge == 0 && unavailable == 0 {
        // The controller's fencepost rule: both zero would deadlock.
        unavailable = 1;
    }
    (surge, unavailable.min(replicas))
}

/// `spec.replicas`, 1 when unset (the API default).
pub fn spec_replicas(deployment: &Value) -> u64 {
    deployment.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(1)
}

/// `metadata.generation`.
pub fn generation(deployment: &Value) -> Option<u64> {
    deployment.pointer("/metadata/generation").and_then(Value::as_u64)
}

impl RolloutPlan {
    /// Scales as far as the strategy allows, as repeated controller syncs do.
    fn scale(&self, mut counts: PodCounts) -> PodCounts {
        let replicas = self.replicas;
        if counts.new_total > replicas {
            // Unbound pods are the first to go, then unready ones.
            let removed = counts.new_total - replicas;
            counts.new_unbound = counts.new_unbound.saturating_sub(removed);
            counts.new_total = replicas;
            counts.new_ready = counts.new_ready.min(replicas - counts.new_unbound);
        }
        let min_available = replicas.saturating_sub(self.max_unavailable);
        loop {
            let before = counts;
            // Scale the new ReplicaSet up within maxSurge.
            let max_total = replicas + self.max_surge;
            if counts.total() < max_total && counts.new_total < replicas {
                counts.new_total += (max_total - counts.total()).min(replicas - counts.new_total);
            }
            // Scale old ReplicaSets down within maxUnavailable.
            if counts.old > 0 {
                let new_unavailable = counts.new_total - counts.new_ready;
                let max_scaled_down =
                    counts.total().saturating_sub(min_available).saturating_sub(new_unavailable);
                let by_availability = counts.available().saturating_sub(min_available);
                let down = counts.old.min(max_scaled_down).min(by_availability);
                // Once the new ReplicaSet is fully available, old pods go.
                let down = if counts.new_ready >= replicas { counts.old } else { down };
                counts.old -= down;
            }
            if counts == before {
                return counts;
            }
        }
    }

    /// Whether the rollout is complete at these counts.
    pub fn done(&self, counts: &PodCounts) -> bool {
        counts.old == 0 && counts.new_total == self.replicas && counts.new_ready == self.replicas
    }

    /// States at successive wave starts: index 0 at `started_at_ms`, index k
    /// at `started_at_ms + k * wave_ms`. Ends at completion or at a stall.
    pub fn waves(&self) -> Vec<PodCounts> {
        let mut states = vec![self.scale(self.from)];
        if self.paused {
            states[0] = self.from;
            return states;
        }
        // Bounded: each wave either makes progress or stops; the cap guards
        // against any arithmetic surprise.
        for _ in 0..10_000 {
            let Some(last) = states.last().copied() else {
                break;
            };
            if self.done(&last) || self.fail {
                break;
            }
            // Bound pods become ready; unbound ones wait for a node.
            let mut ready = last;
            ready.new_ready = ready.new_total - ready.new_unbound;
            let next = self.scale(ready);
            if next == last {
                break;
            }
            states.push(next);
        }
        states
    }

    /// How many waves the rollout takes (its duration is split among them).
    pub fn waves_needed(&self) -> u64 {
        if self.fail || self.paused {
            return 1;
        }
        (self.waves().len() as u64).saturating_sub(1)
    }

    /// When wave `wave` starts.
    pub fn wave_time(&self, wave: usize) -> u64 {
        self.started_at_ms + self.wave_ms * wave as u64
    }

    /// The pod counts over time, (when, counts), never empty: the waves at
    /// their times, or what was observed of pods that run for real.
    pub fn timeline(&self) -> Vec<(u64, PodCounts)> {
        match &self.observed {
            Some(observed) if !observed.is_empty() => observed.clone(),
            _ => self
                .waves()
                .into_iter()
                .enumerate()
                .map(|(wave, counts)| (self.wave_time(wave), counts))
                .collect(),
        }
    }

    /// Pod counts at `now_ms`.
    pub fn counts_at(&self, now_ms: u64) -> PodCounts {
        let timeline = self.timeline();
        // The timeline always holds at least the first state.
        let mut current = timeline[0].1;
        for (at, state) in &timeline {
            if *at <= now_ms {
                current = *state;
            }
        }
        current
    }

    /// Makes the plan follow pods that run for real: from now on it moves
    /// when [`Self::observe_ready`] reports more (or fewer) ready new pods.
    pub fn follow_pods(&mut self) {
        self.fail = false;
        let first = if self.paused { self.from } else { self.scale(self.from) };
        self.observed = Some(vec![(self.started_at_ms, first)]);
    }

    /// Records that `new_ready` pods of the new ReplicaSet are ready at
    /// `now_ms`, scaling as the controller would; true when the counts changed.
    pub fn observe_ready(&mut self, now_ms: u64, new_ready: u64) -> bool {
        let Some((at, last)) = self.observed.as_ref().and_then(|observed| observed.last().copied())
        else {
            return false;
        };
        let mut next = last;
        next.new_ready = new_ready.min(last.new_total);
        if !self.paused {
            next = self.scale(next);
        }
        if next == last {
            return false;
        }
        if let Some(observed) = self.observed.as_mut() {
            observed.push((now_ms.max(at), next));
        }
        true
    }
}
