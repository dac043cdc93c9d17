//! The sim's kubelet running pods of a mapped image for real: a Python
//! script (`fixtures/kubelet-app.py`) stands in for the image. The process
//! gets the pod's environment (downward API, `$(VAR)` expansion, the
//! `kubernetes` Service's variables), its own loopback IP, and a mounted
//! token bound to the pod that the API server accepts (and that is
//! refreshed); its output is the pod's log; readiness follows its HTTP
//! probe and the Deployment follows readiness; an exit restarts it with
//! crash-loop back-off; deleting the pod sends SIGTERM and waits for it;
//! the sim's shutdown leaves no process behind.

mod common;

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, BufReader};

use common::*;
use serde_json::{Value, json};
use servicerefresh_sim::{KubeletConfig, SimConfig, SimHandle};

const IMAGE: &str = "example.com/kubelet-app";
const PODS: &str = "/api/v1/namespaces/arcgis/pods";
const DEPLOYS: &str = "/apis/apps/v1/namespaces/arcgis/deployments";

fn app() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubelet-app.py")
}

/// A directory of its own for each test's pod files.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sim-kubelet-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(root: &Path) -> SimConfig {
    SimConfig {
        run_images: [(IMAGE.to_string(), app())].into_iter().collect(),
        kubelet: KubeletConfig {
            crash_loop_backoff_ms: 200,
            root_dir: Some(root.to_path_buf()),
            ..KubeletConfig::default()
        },
        ..SimConfig::default()
    }
}

/// A pod of the app on a node, running `args`, with `spec` merged into its spec.
fn app_pod(name: &str, args: &[&str], spec: Value) -> Value {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": "sim-worker-1",
            "containers": [{
                "name": "app",
                "image": format!("{IMAGE}:1.0"),
                "args": args,
                "env": [
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "GREETING", "value": "hello $(POD_NAME) $$(POD_NAME)"},
                ],
            }],
        },
    });
    if let (Some(fields), Some(extra)) = (pod["spec"].as_object_mut(), spec.as_object()) {
        for (key, value) in extra {
            fields.insert(key.clone(), value.clone());
        }
    }
    pod
}

async fn create(c: &RawHttpClient, pod: &Value) -> Value {
    let created = c.post(PODS, pod).await;
    assert_eq!(created.status, 201, "{}", created.body);
    created.body
}

/// Waits until pod `name` satisfies `check`.
async fn pod_where(
    c: &RawHttpClient,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    eventually(what, || async {
        let pod = c.get(&format!("{PODS}/{name}")).await;
        (pod.status == 200 && check(&pod.body)).then_some(pod.body)
    })
    .await
}

fn condition(pod: &Value, kind: &str) -> String {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|conditions| conditions.iter().find(|condition| condition["type"] == kind))
        .and_then(|condition| condition["status"].as_str())
        .unwrap_or("")
        .to_string()
}

/// The pod's log, as `GET .../log?<query>` serves it.
async fn log_of(c: &RawHttpClient, name: &str, query: &str) -> (u16, String) {
    let r = c.get(&format!("{PODS}/{name}/log?{query}")).await;
    let text = match r.body {
        Value::String(text) => text,
        other => other.to_string(),
    };
    (r.status, text)
}

async fn log_containing(c: &RawHttpClient, name: &str, needle: &str) -> String {
    eventually(&format!("{name}'s log to show {needle:?}"), || async {
        let (status, text) = log_of(c, name, "").await;
        (status == 200 && text.contains(needle)).then_some(text)
    })
    .await
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

async fn start(root: &Path, tweak: impl FnOnce(&mut SimConfig)) -> (SimHandle, RawHttpClient) {
    let mut config = config(root);
    tweak(&mut config);
    sim(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_of_a_mapped_image_runs_with_its_environment_and_a_bound_token() {
    let scratch = Scratch::new("token");
    let (h, c) = start(&scratch.0, |config| config.kubelet.pod_token_expiration_seconds = 6).await;
    h.create_service_account("arcgis", "runner").expect("ServiceAccount");
    let created =
        create(&c, &app_pod("whoami", &["whoami"], json!({"serviceAccountName": "runner"}))).await;
    let uid = created["metadata"]["uid"].as_str().unwrap().to_string();

    let text =
        log_containing(&c, "whoami", "whoami=system:serviceaccount:arcgis:runner pod=whoami").await;
    let pod =
        pod_where(&c, "whoami", "the pod to be ready", |pod| condition(pod, "Ready") == "True")
            .await;
    assert_eq!(pod["status"]["phase"], "Running");
    let ip = pod["status"]["podIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("127.") && ip != "127.0.0.1", "a loopback IP of its own: {ip}");
    assert_eq!(pod["status"]["podIPs"], json!([{"ip": ip}]));
    let status = &pod["status"]["containerStatuses"][0];
    assert!(status["state"]["running"]["startedAt"].is_string(), "{status}");
    assert_eq!(
        (status["ready"].clone(), status["started"].clone(), status["restartCount"].clone()),
        (json!(true), json!(true), json!(0))
    );
    assert!(status["containerID"].as_str().unwrap().starts_with("containerd://"), "{status}");
    assert_eq!(status["image"], format!("{IMAGE}:1.0"));
    assert!(status["imageID"].as_str().unwrap().starts_with(&format!("{IMAGE}@sha256:")));

    for expected in [
        "args=[\"whoami\"]".to_string(),
        "GREETING=hello whoami $(POD_NAME)".to_string(),
        format!("POD_IP={ip}"),
        "HOSTNAME=whoami".to_string(),
        "KUBERNETES_SERVICE_HOST=127.0.0.1".to_string(),
        "namespace=arcgis".to_string(),
        format!("token=True kubeconfig={}/arcgis_whoami_{uid}/kubeconfig", scratch.0.display()),
    ] {
        assert!(text.contains(&expected), "{expected:?} missing from:\n{text}");
    }

    // The token is bound to the pod, and replaced before it expires.
    let token_file = scratch.0.join(format!(
        "arcgis_whoami_{uid}/rootfs/var/run/secrets/kubernetes.io/serviceaccount/token"
    ));
    let first = std::fs::read_to_string(&token_file).expect("the mounted token");
    let second = eventually("the token to be refreshed", || async {
        std::fs::read_to_string(&token_file).ok().filter(|token| *token != first)
    })
    .await;
    for token in [&first, &second] {
        let review = RawHttpClient::with_token(h.base_url(), token)
            .post(
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
            )
            .await;
        assert_eq!(review.status, 201, "{}", review.body);
        let user = &review.body["status"]["userInfo"];
        assert_eq!(user["username"], "system:serviceaccount:arcgis:runner");
        assert_eq!(user["extra"]["authentication.kubernetes.io/pod-uid"], json!([uid]));
    }
    let lines_before = log_of(&c, "whoami", "").await.1.matches("whoami=").count();
    eventually("the process to keep authenticating with the new token", || async {
        (log_of(&c, "whoami", "").await.1.matches("whoami=").count() > lines_before + 1)
            .then_some(())
    })
    .await;

    // It dies with the pod.
    assert_eq!(c.delete(&format!("{PODS}/whoami?gracePeriodSeconds=0")).await.status, 200);
    let review = RawHttpClient::with_token(h.base_url(), &second)
        .post(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
        )
        .await;
    assert_eq!(review.status, 401, "{}", review.body);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_automount_a_pod_gets_no_token() {
    let scratch = Scratch::new("automount");
    let (h, c) = start(&scratch.0, |_| {}).await;
    create(&c, &app_pod("off", &["sleep"], json!({"automountServiceAccountToken": false}))).await;
    let account = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "quiet"}, "automountServiceAccountToken": false});
    assert_eq!(c.post("/api/v1/namespaces/arcgis/serviceaccounts", &account).await.status, 201);
    create(&c, &app_pod("account-off", &["sleep"], json!({"serviceAccountName": "quiet"}))).await;
    create(
        &c,
        &app_pod(
            "pod-wins",
            &["sleep"],
            json!({"serviceAccountName": "quiet", "automountServiceAccountToken": true}),
        ),
    )
    .await;
    log_containing(&c, "off", "token=False kubeconfig=\n").await;
    log_containing(&c, "account-off", "token=False kubeconfig=\n").await;
    log_containing(&c, "pod-wins", "token=True kubeconfig=/").await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_http_probe_and_the_deployment_follows_readiness() {
    let scratch = Scratch::new("readiness");
    let (h, c) = start(&scratch.0, |_| {}).await;
    let mut deployment = deployment("web");
    deployment["spec"]["template"]["spec"] =
        app_pod("unused", &["serve"], json!({}))["spec"].clone();
    let spec = &mut deployment["spec"]["template"]["spec"];
    spec.as_object_mut().unwrap().remove("nodeName");
    spec["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "PORT", "value": "8080"}));
    spec["containers"][0]["ports"] = json!([{"name": "http", "containerPort": 8080}]);
    spec["containers"][0]["readinessProbe"] = json!({
        "httpGet": {"path": "/ready", "port": "http"},
        "periodSeconds": 1,
        "failureThreshold": 1,
    });
    assert_eq!(c.post(DEPLOYS, &deployment).await.status, 201);
    let available = |count: u64| {
        let c = c.clone();
        async move {
            let d = c.get(&format!("{DEPLOYS}/web")).await.body;
            (d["status"]["availableReplicas"].as_u64().unwrap_or(0) == count
                && d["status"]["readyReplicas"].as_u64().unwrap_or(0) == count)
                .then_some(d)
        }
    };
    let rolled_out = eventually("both replicas to become available", || available(2)).await;
    let progressing = rolled_out["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .cloned()
        .unwrap();
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable", "{rolled_out}");
    let pods = c.get(&format!("{PODS}?labelSelector=app%3Dweb")).await.body;
    let items = pods["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    let ips: Vec<&str> = items.iter().map(|pod| pod["status"]["podIP"].as_str().unwrap()).collect();
    assert_ne!(ips[0], ips[1], "each replica listens on :8080 of its own IP");

    // One replica's probe fails: the pod, its ReplicaSet and the Deployment see it.
    let pod = &items[0];
    let name = pod["metadata"]["name"].as_str().unwrap();
    let rootfs = scratch
        .0
        .join(format!("arcgis_{name}_{}/rootfs", pod["metadata"]["uid"].as_str().unwrap()));
    std::fs::write(rootfs.join("unready"), "").expect("marker");
    let unready =
        pod_where(&c, name, "the pod to turn unready", |pod| condition(pod, "Ready") == "False")
            .await;
    assert_eq!(unready["status"]["phase"], "Running");
    let ready_condition = unready["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .cloned()
        .unwrap();
    assert_eq!(ready_condition["reason"], "ContainersNotReady");
    assert_eq!(ready_condition["message"], "containers with unready status: [app]");
    let degraded =
        eventually("the Deployment to count one available replica", || available(1)).await;
    assert_eq!(degraded["status"]["unavailableReplicas"], 1, "{degraded}");
    std::fs::remove_file(rootfs.join("unready")).expect("marker removed");
    eventually("both replicas to be available again", || available(2)).await;
    h.shutdown().await;
}

/// A free TCP port on this machine (for a process that binds every address).
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_exec_probes_and_a_liveness_kill_and_a_port_clash() {
    let scratch = Scratch::new("probes");
    let (h, c) = start(&scratch.0, |_| {}).await;
    let mut pod = app_pod("lively", &["serve"], json!({"terminationGracePeriodSeconds": 5}));
    let container = &mut pod["spec"]["containers"][0];
    container["env"].as_array_mut().unwrap().push(json!({"name": "PORT", "value": "8080"}));
    container["readinessProbe"] = json!({"tcpSocket": {"port": 8080}, "periodSeconds": 1});
    // The probe fails once per marker (it removes it), so the restarted
    // container is not killed again before it can handle SIGTERM.
    container["livenessProbe"] = json!({"exec": {"command": ["sh", "-c", "test ! -e dead || { rm dead; false; }"]}, "periodSeconds": 1, "failureThreshold": 1});
    let created = create(&c, &pod).await;
    let uid = created["metadata"]["uid"].as_str().unwrap();
    pod_where(&c, "lively", "the tcpSocket probe to pass", |pod| condition(pod, "Ready") == "True")
        .await;
    let rootfs = scratch.0.join(format!("arcgis_lively_{uid}/rootfs"));
    std::fs::write(rootfs.join("dead"), "").expect("marker");
    let restarted = pod_where(&c, "lively", "the liveness probe to restart it", |pod| {
        pod["status"]["containerStatuses"][0]["restartCount"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    let last = &restarted["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 0, "SIGTERM, which the app handles: {last}");
    pod_where(&c, "lively", "the restarted container to be ready", |pod| {
        condition(pod, "Ready") == "True"
    })
    .await;
    let (_, previous) = log_of(&c, "lively", "previous=true").await;
    assert!(previous.contains("got SIGTERM"), "{previous}");
    let (_, recent) = log_of(&c, "lively", "sinceSeconds=3600&tailLines=1").await;
    assert_eq!(recent.lines().count(), 1, "{recent}");

    // Pods share the host's network: two binding 0.0.0.0 on one port clash, as with hostNetwork.
    let port = free_port().to_string();
    for name in ["first", "second"] {
        let mut pod = app_pod(name, &["serve"], json!({}));
        let env = pod["spec"]["containers"][0]["env"].as_array_mut().unwrap();
        env.push(json!({"name": "PORT", "value": port}));
        env.push(json!({"name": "BIND", "value": "0.0.0.0"}));
        create(&c, &pod).await;
        if name == "first" {
            log_containing(&c, "first", "serving on 0.0.0.0").await;
        }
    }
    let clashed = pod_where(&c, "second", "the second to crash", |pod| {
        pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1
    })
    .await;
    assert_eq!(
        clashed["status"]["containerStatuses"][0]["lastState"]["terminated"]["reason"],
        "Error"
    );
    let (_, crashed) = log_of(&c, "second", "previous=true").await;
    assert!(crashed.contains("Address already in use"), "{crashed}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_terminates_the_container_and_restarts_it_with_back_off() {
    let scratch = Scratch::new("crash");
    let (h, c) = start(&scratch.0, |_| {}).await;
    let created = create(&c, &app_pod("crasher", &["exit", "3"], json!({}))).await;
    let uid = created["metadata"]["uid"].as_str().unwrap();
    let looping = pod_where(&c, "crasher", "a crash loop", |pod| {
        let status = &pod["status"]["containerStatuses"][0];
        status["restartCount"].as_u64().unwrap_or(0) >= 2
            && status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    })
    .await;
    let status = &looping["status"]["containerStatuses"][0];
    let message = status["state"]["waiting"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("back-off ")
            && message.ends_with(&format!(
                "ms restarting failed container=app pod=crasher_arcgis({uid})"
            )),
        "{message}"
    );
    let last = &status["lastState"]["terminated"];
    assert_eq!(
        (last["exitCode"].clone(), last["reason"].clone()),
        (json!(3), json!("Error")),
        "{status}"
    );
    assert!(last["containerID"].as_str().unwrap().starts_with("containerd://"));
    assert_eq!(looping["status"]["phase"], "Running", "restartPolicy Always keeps the pod running");
    assert_eq!(condition(&looping, "Ready"), "False");
    let (code, previous) = log_of(&c, "crasher", "previous=true").await;
    assert_eq!(code, 200);
    assert!(previous.contains("started exit"), "{previous}");

    // Other policies: Never ends the pod, OnFailure restarts only failures.
    create(&c, &app_pod("once", &["exit", "4"], json!({"restartPolicy": "Never"}))).await;
    let failed =
        pod_where(&c, "once", "the pod to fail", |pod| pod["status"]["phase"] == "Failed").await;
    let ended = &failed["status"]["containerStatuses"][0];
    assert_eq!(
        (ended["restartCount"].clone(), ended["state"]["terminated"]["exitCode"].clone()),
        (json!(0), json!(4))
    );
    create(&c, &app_pod("done", &["exit", "0"], json!({"restartPolicy": "OnFailure"}))).await;
    let done =
        pod_where(&c, "done", "the pod to succeed", |pod| pod["status"]["phase"] == "Succeeded")
            .await;
    assert_eq!(
        done["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    let (code, text) = log_of(&c, "done", "").await;
    assert!(code == 200 && text.contains("started exit"), "{code} {text}");

    // A program that does not exist fails to start, as runc reports it.
    let mut missing = app_pod("missing", &[], json!({"restartPolicy": "Never"}));
    missing["spec"]["containers"][0]["command"] = json!(["/nonexistent/program"]);
    create(&c, &missing).await;
    let refused =
        pod_where(&c, "missing", "the start to fail", |pod| pod["status"]["phase"] == "Failed")
            .await;
    let terminated = &refused["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(
        (terminated["reason"].clone(), terminated["exitCode"].clone()),
        (json!("StartError"), json!(128))
    );
    assert!(
        terminated["message"]
            .as_str()
            .unwrap()
            .contains("exec: \"/nonexistent/program\": stat: no such file or directory"),
        "{terminated}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_pod_sends_sigterm_then_sigkill_after_the_grace_period() {
    let scratch = Scratch::new("term");
    let (h, c) = start(&scratch.0, |_| {}).await;
    let marker = scratch.0.join("marker");
    let mut pod = app_pod("polite", &["sleep"], json!({"terminationGracePeriodSeconds": 20}));
    pod["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "MARKER", "value": marker.display().to_string()}));
    create(&c, &pod).await;
    log_containing(&c, "polite", "started sleep").await;
    let deleted = c.delete(&format!("{PODS}/polite")).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(deleted.body["metadata"]["deletionTimestamp"].is_string(), "{}", deleted.body);
    assert_eq!(deleted.body["metadata"]["deletionGracePeriodSeconds"], 20);
    eventually("the pod to be gone", || async {
        (c.get(&format!("{PODS}/polite")).await.status == 404).then_some(())
    })
    .await;
    assert_eq!(std::fs::read_to_string(&marker).expect("the marker"), "got SIGTERM");

    // A process that ignores SIGTERM is killed when the grace period ends.
    create(&c, &app_pod("stubborn", &["ignore-term"], json!({"terminationGracePeriodSeconds": 1})))
        .await;
    let running = log_containing(&c, "stubborn", "started ignore-term").await;
    assert!(running.contains("started"));
    let mut w = c.watch(&format!("{PODS}?watch=true&fieldSelector=metadata.name%3Dstubborn")).await;
    assert_eq!(c.delete(&format!("{PODS}/stubborn")).await.status, 200);
    let mut last = Value::Null;
    loop {
        let event = w.next().await.expect("an event before the deadline");
        if event["type"] == "DELETED" {
            break;
        }
        last = event["object"].clone();
    }
    let terminated = &last["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 137, "SIGKILL after the grace period: {last}");
    assert_eq!(last["status"]["phase"], "Failed");
    assert!(h.container_processes().is_empty(), "{:?}", h.container_processes());

    // A pod deleted before the kubelet got to it is removed all the same.
    create(&c, &app_pod("hasty", &["sleep"], json!({}))).await;
    assert_eq!(c.delete(&format!("{PODS}/hasty")).await.status, 200);
    eventually("the hasty pod to be gone", || async {
        (c.get(&format!("{PODS}/hasty")).await.status == 404).then_some(())
    })
    .await;
    eventually("its process to be gone", || async {
        h.container_processes().is_empty().then_some(())
    })
    .await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sim_shutdown_leaves_no_process_behind() {
    let scratch = Scratch::new("shutdown");
    let (h, c) = start(&scratch.0, |_| {}).await;
    create(&c, &app_pod("parent", &["fork"], json!({}))).await;
    create(&c, &app_pod("stubborn", &["ignore-term"], json!({}))).await;
    let text = log_containing(&c, "parent", "child=").await;
    let child: u32 =
        text.lines().find_map(|line| line.strip_prefix("child=")).unwrap().trim().parse().unwrap();
    log_containing(&c, "stubborn", "started").await;
    let mains: Vec<u32> = h.container_processes().iter().map(|process| process.pid).collect();
    assert_eq!(mains.len(), 2, "{:?}", h.container_processes());
    let mut pids = mains.clone();
    pids.push(child);
    assert!(pids.iter().all(|pid| alive(*pid)));
    h.shutdown().await;
    // Killed by then; a loaded machine may take a moment to let them die.
    for pid in pids {
        eventually(&format!("process {pid} to end with the sim"), || async {
            (!alive(pid)).then_some(())
        })
        .await;
    }
    assert!(
        std::fs::read_dir(&scratch.0).map(|entries| entries.count()).unwrap_or(0) == 0,
        "the pods' files are removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_shows_and_follows_the_output_with_the_real_errors() {
    if !kubectl_available() {
        eprintln!("skipping: kubectl is not installed");
        return;
    }
    let scratch = Scratch::new("kubectl-logs");
    let (h, c) = start(&scratch.0, |_| {}).await;
    let kubectl = Kubectl::for_sim(&h, "kubelet-logs");
    create(&c, &app_pod("talker", &["sleep"], json!({"terminationGracePeriodSeconds": 20}))).await;
    log_containing(&c, "talker", "started sleep").await;
    let logs = kubectl.ok(&["logs", "talker", "-n", "arcgis"]).await;
    assert!(logs.starts_with("started sleep\nargs=[\"sleep\"]\n"), "{logs}");
    let tail = kubectl.ok(&["logs", "talker", "-n", "arcgis", "--tail=1"]).await;
    assert_eq!(tail.lines().count(), 1, "{tail}");
    assert!(tail.starts_with("token="), "{tail}");
    let stamped =
        kubectl.ok(&["logs", "talker", "-n", "arcgis", "--timestamps", "-c", "app"]).await;
    let first = stamped.lines().next().unwrap();
    assert!(first.ends_with("Z started sleep") && first.parse::<String>().is_ok(), "{first}");
    let previous = kubectl.fails(&["logs", "talker", "-n", "arcgis", "--previous"]).await;
    assert!(previous.contains("Error from server (BadRequest): previous terminated container \"app\" in pod \"talker\" not found"), "{previous}");
    let wrong = kubectl.fails(&["logs", "talker", "-n", "arcgis", "-c", "db"]).await;
    assert!(wrong.contains("container db is not valid for pod talker"), "{wrong}");
    let missing = kubectl.fails(&["logs", "nobody", "-n", "arcgis"]).await;
    assert!(missing.contains("(NotFound): pods \"nobody\" not found"), "{missing}");

    // `-f` streams until the container ends: SIGTERM when the pod is deleted.
    let mut follow = tokio::process::Command::new("kubectl")
        .args(["logs", "-f", "talker", "-n", "arcgis"])
        .env("KUBECONFIG", kubectl.dir.path().join("kubeconfig"))
        .env("HOME", kubectl.dir.path())
        .env("KUBECACHEDIR", kubectl.dir.path().join("cache"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl logs -f");
    let mut lines = BufReader::new(follow.stdout.take().expect("stdout")).lines();
    let mut followed = Vec::new();
    let read_line = async |lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>| {
        tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .expect("a line before the deadline")
            .expect("readable")
    };
    followed.push(read_line(&mut lines).await.expect("the first line"));
    // The stream is open: the deletion's SIGTERM ends the container, and the stream with it.
    assert_eq!(c.delete(&format!("{PODS}/talker")).await.status, 200);
    while let Some(line) = read_line(&mut lines).await {
        followed.push(line);
    }
    let status = tokio::time::timeout(DEADLINE, follow.wait())
        .await
        .expect("kubectl ends")
        .expect("kubectl ran");
    assert!(status.success(), "{followed:?}");
    assert_eq!(followed.first().map(String::as_str), Some("started sleep"), "{followed:?}");
    assert_eq!(followed.last().map(String::as_str), Some("got SIGTERM"), "{followed:?}");

    // A pod whose status is simulated has an empty log.
    assert_eq!(c.post(DEPLOYS, &deployment("plain")).await.status, 201);
    let pod = eventually("a simulated pod to run", || async {
        let pods = c.get(&format!("{PODS}?labelSelector=app%3Dplain")).await.body;
        pods["items"].as_array()?.iter().find(|pod| pod["status"]["phase"] == "Running").cloned()
    })
    .await;
    let name = pod["metadata"]["name"].as_str().unwrap();
    assert_eq!(kubectl.ok(&["logs", name, "-n", "arcgis", "-c", "web"]).await, "");
    h.shutdown().await;
}
