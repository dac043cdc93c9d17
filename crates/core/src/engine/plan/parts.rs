//! The plan of a run as the engine reads it, and its storage in ServiceRefreshPlan objects:
//! the selected services in restart order, each known by its position, cut into parts of at
//! most [`MAX_PLAN_PART_ENTRIES`] entries when written and joined again when read. Runs take
//! turns between two sets of names (`<refresh>-plan-<run number % 2>-<part>`): each run
//! writes over the parts of the run before the previous one, never over the previous run's,
//! which a pass that ends one run and starts the next may still need if its status write
//! fails. So a resource keeps at most twice its largest plan's parts, and the operator never
//! deletes one. The digest ties the parts to the reference in the status, so a part left
//! over from an earlier run or attempt is never mistaken for the current plan.

use std::collections::BTreeMap;
use std::hash::Hasher;

use fnv::FnvHasher;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::crd::{
    MAX_PLAN_PART_ENTRIES, PlanGroup, PlanRef, ServiceRefresh, ServiceRefreshPlan,
    ServiceRefreshPlanSpec,
};
use crate::engine::ObjectKey;

/// Label on every plan object: the uid of the ServiceRefresh it belongs to (a name could be
/// longer than a label value may be).
pub const PLAN_OWNER_LABEL: &str = "gisops.io/servicerefresh-uid";

/// Longest prefix of a ServiceRefresh name kept in its plan objects' names, so that the
/// suffix `-plan-<slot>-<part>` always fits the 253 characters of an object name.
const MAX_NAME_PREFIX: usize = 200;

/// One service of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanEntry {
    pub key: ObjectKey,
    /// The wave the service belongs to; waves run one after the other.
    pub wave: u32,
}

/// The services of one run in restart order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    run: String,
    digest: String,
    entries: Vec<PlanEntry>,
}

/// Plan objects that do not add up to the plan the status refers to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("plan part {part} of {parts} is missing")]
    MissingPart { part: u32, parts: u32 },
    #[error("the plan's parts hold {found} services where the status expects {expected}")]
    WrongSize { found: u64, expected: u32 },
    #[error("the plan's parts do not match its digest {expected} (found {found})")]
    WrongDigest { expected: String, found: String },
}

impl Plan {
    /// The plan of `run`, its entries in restart order.
    pub fn new(run: impl Into<String>, entries: Vec<PlanEntry>) -> Self {
        let run = run.into();
        let digest = digest(&run, &entries);
        Self { run, digest, entries }
    }

    pub fn run(&self) -> &str {
        &self.run
    }

    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn entries(&self) -> &[PlanEntry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry at `position`.
    pub fn get(&self, position: u32) -> Option<&PlanEntry> {
        self.entries.get(usize::try_from(position).ok()?)
    }

    /// How many positions the plan has, as a position number. A plan holds at most a few
    /// hundred thousand services, far below `u32::MAX`.
    pub fn end(&self) -> u32 {
        u32::try_from(self.entries.len()).unwrap_or(u32::MAX)
    }

    /// How many objects the plan is written in.
    pub fn part_count(&self) -> u32 {
        u32::try_from(self.entries.len().div_ceil(MAX_PLAN_PART_ENTRIES).max(1)).unwrap_or(1)
    }

    /// The reference to this plan, as run `number`'s, that the status of `refresh` keeps.
    pub fn reference(&self, refresh: &ServiceRefresh, number: u64) -> PlanRef {
        PlanRef {
            name: part_name(refresh.metadata.name.as_deref().unwrap_or_default(), number, 0),
            parts: self.part_count(),
            services: self.end(),
            digest: self.digest.clone(),
        }
    }

    /// The objects to write for run `number` of `refresh`: one per part, owned by `refresh`.
    pub fn objects(&self, refresh: &ServiceRefresh, number: u64) -> Vec<ServiceRefreshPlan> {
        let name = refresh.metadata.name.clone().unwrap_or_default();
        let parts = self.part_count();
        let chunks: Vec<&[PlanEntry]> = if self.entries.is_empty() {
            vec![&[]]
        } else {
            self.entries.chunks(MAX_PLAN_PART_ENTRIES).collect()
        };
        chunks
            .into_iter()
            .zip(0u32..)
            .map(|(chunk, part)| {
                let first = part.saturating_mul(MAX_PLAN_PART_ENTRIES as u32);
                let mut object = ServiceRefreshPlan::new(
                    &part_name(&name, number, part),
                    ServiceRefreshPlanSpec {
                        refresh: name.clone(),
                        run: self.run.clone(),
                        part,
                        parts,
                        first,
                        services: u32::try_from(chunk.len()).unwrap_or(u32::MAX),
                        digest: self.digest.clone(),
                        groups: groups(chunk),
                    },
                );
                object.metadata = plan_metadata(refresh, object.metadata.name.take());
                object
            })
            .collect()
    }

    /// Joins the objects of the plan `reference` names. Objects of other plans may be among
    /// `objects`; they are ignored.
    pub fn from_objects<'a>(
        reference: &PlanRef,
        objects: impl IntoIterator<Item = &'a ServiceRefreshPlan>,
    ) -> Result<Plan, PlanError> {
        let mut parts: BTreeMap<u32, &ServiceRefreshPlanSpec> = BTreeMap::new();
        let mut run = None;
        for object in objects {
            let spec = &object.spec;
            if spec.digest == reference.digest && spec.parts == reference.parts {
                run.get_or_insert_with(|| spec.run.clone());
                parts.insert(spec.part, spec);
            }
        }
        let mut entries = Vec::with_capacity(reference.services as usize);
        for part in 0..reference.parts {
            let spec =
                parts.get(&part).ok_or(PlanError::MissingPart { part, parts: reference.parts })?;
            for group in &spec.groups {
                entries.extend(group.names.iter().map(|name| PlanEntry {
                    key: ObjectKey::workload(group.kind, &group.namespace, name),
                    wave: group.wave,
                }));
            }
        }
        if entries.len() as u64 != u64::from(reference.services) {
            return Err(PlanError::WrongSize {
                found: entries.len() as u64,
                expected: reference.services,
            });
        }
        let plan = Plan::new(run.unwrap_or_default(), entries);
        if plan.digest != reference.digest {
            return Err(PlanError::WrongDigest {
                expected: reference.digest.clone(),
                found: plan.digest,
            });
        }
        Ok(plan)
    }
}

/// The name of part `part` of run `number`'s plan of the ServiceRefresh named `refresh`.
pub fn part_name(refresh: &str, number: u64, part: u32) -> String {
    let prefix: String = refresh.chars().take(MAX_NAME_PREFIX).collect();
    let prefix = prefix.trim_end_matches(['-', '.']);
    format!("{prefix}-plan-{}-{part}", number % 2)
}

/// Metadata of a plan object: in the ServiceRefresh's namespace, owned by it (so deleting the
/// ServiceRefresh deletes its plans), labelled with its uid.
fn plan_metadata(refresh: &ServiceRefresh, name: Option<String>) -> ObjectMeta {
    let uid = refresh.metadata.uid.clone().unwrap_or_default();
    ObjectMeta {
        name,
        namespace: refresh.metadata.namespace.clone(),
        labels: Some(BTreeMap::from([(PLAN_OWNER_LABEL.to_owned(), uid.clone())])),
        owner_references: Some(vec![OwnerReference {
            api_version: "gisops.io/v1alpha1".to_owned(),
            kind: "ServiceRefresh".to_owned(),
            name: refresh.metadata.name.clone().unwrap_or_default(),
            uid,
            controller: Some(true),
            block_owner_deletion: None,
        }]),
        ..ObjectMeta::default()
    }
}

/// Consecutive entries sharing a namespace, wave and kind, as one group each.
fn groups(entries: &[PlanEntry]) -> Vec<PlanGroup> {
    let mut groups: Vec<PlanGroup> = Vec::new();
    for entry in entries {
        match groups.last_mut() {
            Some(group)
                if group.namespace == entry.key.namespace
                    && group.wave == entry.wave
                    && group.kind == entry.key.kind =>
            {
                group.names.push(entry.key.name.clone());
            }
            _ => groups.push(PlanGroup {
                namespace: entry.key.namespace.clone(),
                wave: entry.wave,
                kind: entry.key.kind,
                names: vec![entry.key.name.clone()],
            }),
        }
    }
    groups
}

fn digest(run: &str, entries: &[PlanEntry]) -> String {
    let mut hasher = FnvHasher::default();
    let mut text = |text: &str| {
        hasher.write(&(text.len() as u64).to_le_bytes());
        hasher.write(text.as_bytes());
    };
    text(run);
    for entry in entries {
        text(&entry.key.namespace);
        text(&entry.key.name);
        text(&entry.wave.to_string());
        if !entry.key.kind.is_deployment() {
            // Only the other kinds add to the digest, so a Deployment plan's stays as it was.
            text(entry.key.kind.as_str());
        }
    }
    format!("fnv1a64-{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refresh(name: &str) -> ServiceRefresh {
        ServiceRefresh::fixture(name).build()
    }

    fn entries(count: usize) -> Vec<PlanEntry> {
        (0..count)
            .map(|i| PlanEntry {
                key: ObjectKey::new(
                    if i % 3 == 0 { "gis" } else { "arcgis" },
                    format!("svc-{i:05}"),
                ),
                wave: u32::from(i >= count / 2),
            })
            .collect()
    }

    #[test]
    fn plan_objects_live_beside_their_resource_labelled_with_its_uid_in_few_groups() {
        let same_namespace: Vec<PlanEntry> = (0..5)
            .map(|i| PlanEntry { key: ObjectKey::new("arcgis", format!("svc-{i}")), wave: 0 })
            .collect();
        let plan = Plan::new("arcgis/refresh/1-0123", same_namespace);
        let refresh = refresh("refresh");
        let objects = plan.objects(&refresh, 1);
        let meta = &objects[0].metadata;
        assert!(meta.namespace.is_some(), "found by a namespaced list");
        assert_eq!(meta.namespace, refresh.metadata.namespace);
        let owner = meta.labels.as_ref().and_then(|labels| labels.get(PLAN_OWNER_LABEL));
        assert!(owner.is_some());
        assert_eq!(owner, refresh.metadata.uid.as_ref());
        assert_eq!(objects[0].spec.groups.len(), 1, "one namespace, wave and kind: one group");
        // Pinned: a changed digest would make every stored plan look like another run's.
        assert_eq!(plan.digest(), "fnv1a64-96a0b6e61a779f28");
    }

    #[test]
    fn a_plan_written_in_parts_reads_back_whole() {
        let plan = Plan::new("arcgis/refresh/3-0123", entries(2_345));
        assert_eq!(plan.run(), "arcgis/refresh/3-0123");
        let refresh = refresh("refresh");
        let objects = plan.objects(&refresh, 3);
        assert_eq!(objects.len(), 3);
        assert_eq!(
            objects.iter().map(|o| o.metadata.name.clone().unwrap_or_default()).collect::<Vec<_>>(),
            ["refresh-plan-1-0", "refresh-plan-1-1", "refresh-plan-1-2"]
        );
        assert_eq!(objects[2].spec.first, 2_000);
        assert_eq!(objects[2].spec.services, 345);
        assert!(objects.iter().all(|o| o.metadata.owner_references.as_ref().is_some_and(
            |owners| owners[0].uid == refresh.metadata.uid.clone().unwrap_or_default()
        )));
        let reference = plan.reference(&refresh, 3);
        assert_eq!(reference.name, "refresh-plan-1-0");
        // The next run writes the other set of names, never over this run's.
        assert_eq!(plan.reference(&refresh, 4).name, "refresh-plan-0-0");
        // Parts of other plans, and their order, do not matter.
        let stale = Plan::new("arcgis/refresh/3-0123", entries(10)).objects(&refresh, 3);
        let mut shuffled: Vec<&ServiceRefreshPlan> = objects.iter().rev().collect();
        shuffled.extend(stale.iter());
        assert_eq!(Plan::from_objects(&reference, shuffled), Ok(plan.clone()));
        assert_eq!(plan.get(2_344).map(|e| e.wave), Some(1));
    }

    #[test]
    fn a_missing_or_foreign_part_is_reported() {
        let plan = Plan::new("run", entries(1_500));
        let refresh = refresh("refresh");
        let objects = plan.objects(&refresh, 3);
        let reference = plan.reference(&refresh, 3);
        assert_eq!(
            Plan::from_objects(&reference, [&objects[1]]),
            Err(PlanError::MissingPart { part: 0, parts: 2 })
        );
        let mut tampered = objects[1].clone();
        tampered.spec.groups[0].names[0] = "other".to_owned();
        assert!(matches!(
            Plan::from_objects(&reference, [&objects[0], &tampered]),
            Err(PlanError::WrongDigest { .. })
        ));
    }

    #[test]
    fn an_empty_plan_is_one_empty_part_and_long_names_fit() {
        let plan = Plan::new("run", Vec::new());
        let long = "x".repeat(253);
        let objects = plan.objects(&refresh(&long), 12);
        assert_eq!(objects.len(), 1);
        let name = objects[0].metadata.name.clone().unwrap_or_default();
        assert!(name.len() <= 253 && name.ends_with("-plan-0-0"), "{name}");
        assert_eq!(Plan::from_objects(&plan.reference(&refresh(&long), 12), &objects), Ok(plan));
    }
}
