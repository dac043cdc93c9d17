//! Writes the API server forbids (403) named as RBAC names them: the verb, resource, API
//! group and namespace of the refused request, taken from the request the operator sent
//! rather than parsed from the server's message. The reconcile records them in
//! [`ForbiddenWrites`](servicerefresh_core::policy::forbidden_writes::ForbiddenWrites).

use servicerefresh_core::crd::ServiceRefreshPlan;
use servicerefresh_core::engine::{ObjectKey, RestartOutcome};
use servicerefresh_core::policy::forbidden_writes::RefusedRequest;

/// The API group of every workload kind the operator restarts (`apps/v1`).
const WORKLOAD_GROUP: &str = "apps";

/// Whether the API server answered 403 Forbidden.
pub fn is_forbidden(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 403)
}

/// The restart patch the API server forbade in this pass, if any, with the server's message.
pub fn refused_restart(
    outcomes: &[(ObjectKey, RestartOutcome)],
) -> Option<(RefusedRequest, String)> {
    outcomes.iter().find_map(|(key, outcome)| match outcome {
        RestartOutcome::Forbidden(message) => Some((
            RefusedRequest {
                verb: "patch".to_owned(),
                resource: key.kind.plural().to_owned(),
                group: WORKLOAD_GROUP.to_owned(),
                namespace: key.namespace.clone(),
            },
            message.clone(),
        )),
        _ => None,
    })
}

/// A plan object write (server-side apply, a patch) the API server forbade.
pub fn refused_plan_write(namespace: &str) -> RefusedRequest {
    use kube::Resource;
    RefusedRequest {
        verb: "patch".to_owned(),
        resource: ServiceRefreshPlan::plural(&()).into_owned(),
        group: ServiceRefreshPlan::group(&()).into_owned(),
        namespace: namespace.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use servicerefresh_core::crd::WorkloadKind;

    #[test]
    fn a_forbidden_restart_names_the_workloads_resource_and_namespace() {
        let outcomes = [
            (ObjectKey::new("arcgis", "a"), RestartOutcome::Patched { generation: 2 }),
            (
                ObjectKey::workload(WorkloadKind::StatefulSet, "gis", "b"),
                RestartOutcome::Forbidden("forbidden".into()),
            ),
        ];
        let (refused, message) = refused_restart(&outcomes).expect("one forbidden");
        assert_eq!(message, "forbidden");
        assert_eq!(
            (refused.verb.as_str(), refused.resource.as_str(), refused.group.as_str()),
            ("patch", "statefulsets", "apps")
        );
        assert_eq!(refused.namespace, "gis");
        assert_eq!(refused_restart(&outcomes[..1]), None);
        let plan = refused_plan_write("arcgis");
        assert_eq!(
            (plan.resource.as_str(), plan.group.as_str()),
            ("servicerefreshplans", "gisops.io")
        );
    }
}
