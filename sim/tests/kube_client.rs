//! kube-rs (the operator's client) against the sim: typed get/list/patch/
//! replace/delete with the error codes it branches on, watchers (classic and
//! streaming lists) following a rollout, server-side apply, and
//! kube-lease-manager's leader election.

mod common;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use servicerefresh_sim::{SimConfig, SimHandle};

async fn client(h: &SimHandle) -> kube::Client {
    let kc = Kubeconfig::from_yaml(&h.kubeconfig_yaml("arcgis")).expect("kubeconfig parses");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

fn api_code(e: &kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("not an API error: {other:?}"),
    }
}

fn complete(d: &Deployment) -> bool {
    let Some(st) = &d.status else {
        return false;
    };
    let want = d.spec.replicas.unwrap_or(1);
    st.observed_generation == d.metadata.generation
        && st.updated_replicas == Some(want)
        && st.replicas == Some(want)
        && st.available_replicas == Some(want)
}

#[tokio::test]
async fn typed_calls_and_errors() {
    let (h, _) =
        common::sim(SimConfig { deployments: 5, rollout_ms: 200, ..Default::default() }).await;
    let c = client(&h).await;
    let deploys: Api<Deployment> = Api::default_namespaced(c.clone());
    let list = deploys
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=arcgis"))
        .await
        .expect("list");
    assert_eq!(list.items.len(), 5);
    let name = list.items[0].metadata.name.clone().expect("name");
    let got = deploys.get(&name).await.expect("get");
    assert_eq!(got.metadata.generation, Some(1));
    let meta = deploys.list_metadata(&ListParams::default()).await.expect("list_metadata");
    assert_eq!(meta.items.len(), 5);
    assert_eq!(meta.items[0].metadata.name, Some(name.clone()));
    let one = deploys.get_metadata(&name).await.expect("get_metadata");
    assert_eq!(one.metadata.generation, Some(1));
    let mw = watcher::watcher(
        Api::<kube::core::PartialObjectMeta<Deployment>>::default_namespaced(c.clone()),
        watcher::Config::default().page_size(2),
    );
    let n = tokio::time::timeout(Duration::from_secs(15), async {
        let mut s = std::pin::pin!(mw);
        let mut n = 0;
        while let Some(ev) = s.try_next().await.expect("metadata watch") {
            match ev {
                watcher::Event::InitApply(_) => n += 1,
                watcher::Event::InitDone => return n,
                _ => {}
            }
        }
        n
    })
    .await
    .expect("metadata watcher initialises");
    assert_eq!(n, 5);
    let e = deploys.get("missing").await.expect_err("404");
    assert_eq!(api_code(&e), 404);
    assert!(deploys.get_opt("missing").await.expect("get_opt").is_none());
    // Stale replace: 409.
    let mut stale = got.clone();
    stale.metadata.resource_version = Some("1".into());
    let e = deploys.replace(&name, &PostParams::default(), &stale).await.expect_err("409");
    assert_eq!(api_code(&e), 409);
    // Strategic merge restart, then a watcher sees the rollout complete.
    let p = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "t1"}}}}});
    let patched = deploys
        .patch(&name, &PatchParams::default(), &Patch::Strategic(p.clone()))
        .await
        .expect("patch");
    assert_eq!(patched.metadata.generation, Some(2));
    let again =
        deploys.patch(&name, &PatchParams::default(), &Patch::Strategic(p)).await.expect("patch");
    // The controller may have moved the status in between, so the resourceVersion can
    // differ; what must not change is the template, hence the generation.
    assert_eq!(again.metadata.generation, Some(2), "an identical patch changes nothing");
    assert_eq!(again.spec.template, patched.spec.template);
    assert_eq!(h.stats().template_changes.get(&format!("arcgis/{name}")).copied(), Some(1));
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let stream = watcher::watcher(deploys.clone(), cfg).default_backoff();
    let found = tokio::time::timeout(Duration::from_secs(15), async {
        let mut s = std::pin::pin!(stream);
        while let Some(ev) = s.try_next().await.expect("watch") {
            if let watcher::Event::Apply(d) | watcher::Event::InitApply(d) = ev
                && d.metadata.generation == Some(2)
                && complete(&d)
            {
                return d;
            }
        }
        panic!("watch ended");
    })
    .await
    .expect("rollout completes before the deadline");
    assert_eq!(found.status.and_then(|s| s.observed_generation), Some(2));
    // Delete answers a Status for deployments.
    let d = deploys.delete(&name, &DeleteParams::default()).await.expect("delete");
    assert!(d.is_right());
    assert_eq!(
        api_code(&deploys.delete(&name, &DeleteParams::default()).await.expect_err("gone")),
        404
    );
    h.shutdown().await;
}

#[tokio::test]
async fn streaming_list_watcher_and_apply() {
    let (h, _) = common::sim(SimConfig { deployments: 3, ..Default::default() }).await;
    let c = client(&h).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.clone());
    let pp = PatchParams::apply("servicerefresh").force();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "proxy"}, "data": {"url": "http://a"}});
    let created = cms.patch("proxy", &pp, &Patch::Apply(&cm)).await.expect("apply create");
    assert_eq!(
        created.data.as_ref().and_then(|d| d.get("url")).map(String::as_str),
        Some("http://a")
    );
    let same = cms.patch("proxy", &pp, &Patch::Apply(&cm)).await.expect("apply again");
    assert_eq!(same.metadata.resource_version, created.metadata.resource_version);
    let conflict = cms
        .patch(
            "proxy",
            &PatchParams::apply("other"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"url": "http://b"}}),
            ),
        )
        .await
        .expect_err("conflict");
    assert_eq!(api_code(&conflict), 409);
    // Streaming-list watcher: initial state then live changes.
    let deploys: Api<Deployment> = Api::default_namespaced(c.clone());
    let stream =
        watcher::watcher(deploys, watcher::Config::default().streaming_lists()).default_backoff();
    let mut s = std::pin::pin!(stream);
    let mut init = 0;
    let ok = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(ev) = s.next().await {
            match ev.expect("event") {
                watcher::Event::InitApply(_) => init += 1,
                watcher::Event::InitDone => return true,
                _ => {}
            }
        }
        false
    })
    .await
    .expect("init done before the deadline");
    assert!(ok);
    assert_eq!(init, 3);
    h.shutdown().await;
}

#[tokio::test]
async fn lease_manager_elects_and_hands_over() {
    let (h, _) = common::sim(SimConfig::default()).await;
    let c = client(&h).await;
    let params = |id: &str| kube_lease_manager::LeaseParams::new(id, 5, 2);
    let a = kube_lease_manager::LeaseManagerBuilder::new(c.clone(), "servicerefresh-leader")
        .with_namespace("arcgis")
        .with_parameters(params("a"))
        .build()
        .await
        .expect("manager a");
    let b = kube_lease_manager::LeaseManagerBuilder::new(c.clone(), "servicerefresh-leader")
        .with_namespace("arcgis")
        .with_parameters(params("b"))
        .build()
        .await
        .expect("manager b");
    let leader = tokio::time::timeout(Duration::from_secs(10), a.changed())
        .await
        .expect("a in time")
        .expect("a");
    assert!(leader);
    a.release().await.expect("release");
    let leader_b = tokio::time::timeout(Duration::from_secs(10), b.changed())
        .await
        .expect("b in time")
        .expect("b");
    assert!(leader_b);
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::default_namespaced(c);
    let l = leases.get("servicerefresh-leader").await.expect("lease");
    assert_eq!(l.spec.and_then(|s| s.holder_identity).as_deref(), Some("b"));
    h.shutdown().await;
}
