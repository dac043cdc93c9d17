//! Typed validation of built-in kinds, metadata rules, size limits, the
//! kinds a chart needs (Secret, Service, PodDisruptionBudget), CEL rules and
//! the non-resource endpoints, each answered as the real API server does
//! (status codes and error texts from its source).

mod common;

use common::RawHttpClient;
use serde_json::{Value, json};
use servicerefresh_sim::SimConfig;

const CMS: &str = "/api/v1/namespaces/arcgis/configmaps";
const SECRETS: &str = "/api/v1/namespaces/arcgis/secrets";
const SERVICES: &str = "/api/v1/namespaces/arcgis/services";
const DEPLOYS: &str = "/apis/apps/v1/namespaces/arcgis/deployments";
const PDBS: &str = "/apis/policy/v1/namespaces/arcgis/poddisruptionbudgets";

async fn sim() -> (servicerefresh_sim::SimHandle, RawHttpClient) {
    common::sim(SimConfig::default()).await
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or("")
}

/// A request with the response's `Warning` headers.
async fn send_with_warnings(
    c: &RawHttpClient,
    method: &str,
    path: &str,
    content_type: &str,
    body: &Value,
) -> (u16, Value, Vec<String>) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let r = c
        .http
        .request(m, format!("{}{path}", c.base))
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let warnings =
        r.headers().get_all("warning").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null), warnings)
}

fn config_map(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})
}

#[tokio::test]
async fn wrong_types_are_refused_with_the_go_decoder_message() {
    let (_h, c) = sim().await;
    let mut d = common::deployment("typed");
    d["spec"]["replicas"] = json!("two");
    let r = c.post(DEPLOYS, &d).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["reason"], "BadRequest");
    assert_eq!(
        message(&r.body),
        "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
    );

    let mut cm = config_map("labels");
    cm["metadata"]["labels"] = json!("notamap");
    let r = c.post(CMS, &cm).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        message(&r.body),
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal string into Go struct field ObjectMeta.metadata.labels of type map[string]string"
    );

    // Nested in a list, a number that is not an int32, an IntOrString, a
    // Quantity.
    let mut d = common::deployment("nested");
    d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(80.5);
    let r = c.post(DEPLOYS, &d).await;
    assert!(
        message(&r.body).ends_with("json: cannot unmarshal number 80.5 into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"),
        "{}",
        r.body
    );
    let mut d = common::deployment("intstr");
    d["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": true}});
    let r = c.post(DEPLOYS, &d).await;
    assert!(
        message(&r.body).ends_with("json: cannot unmarshal bool into Go struct field RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge of type int32"),
        "{}",
        r.body
    );
    let mut d = common::deployment("quantity");
    d["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"limits": {"cpu": "lots"}});
    let r = c.post(DEPLOYS, &d).await;
    assert_eq!(
        message(&r.body),
        "Deployment in version \"v1\" cannot be handled as a Deployment: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );

    // Nothing was stored, so typed lists of every kind still decode.
    let r = c.get(CMS).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);
    let r = c.get(DEPLOYS).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);

    // A merge patch to a wrong type: 422 on the patch, as the real server's
    // patch handler words it.
    assert_eq!(c.post(DEPLOYS, &common::deployment("patched")).await.status, 201);
    let r = c
        .patch(
            &format!("{DEPLOYS}/patched"),
            "application/merge-patch+json",
            r#"{"spec":{"replicas":"two"}}"#,
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let text = message(&r.body);
    assert!(text.starts_with(" \"\" is invalid: patch: Invalid value: \"{"), "{text}");
    assert!(
        text.ends_with("\": json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_fields_follow_field_validation() {
    let (_h, c) = sim().await;
    let mut cm = config_map("warned");
    cm["foo"] = json!("bar");
    cm["data"] = json!({"a": "1"});
    cm["metadata"]["bogus"] = json!(1);

    // Warn (the default): dropped, one Warning header each.
    let (status, body, warnings) =
        send_with_warnings(&c, "POST", CMS, "application/json", &cm).await;
    assert_eq!(status, 201, "{body}");
    assert!(body.get("foo").is_none() && body["metadata"].get("bogus").is_none(), "{body}");
    assert_eq!(
        warnings,
        vec![r#"299 - "unknown field \"foo\"""#, r#"299 - "unknown field \"metadata.bogus\"""#]
    );
    let stored = c.get(&format!("{CMS}/warned")).await.body;
    assert!(stored.get("foo").is_none(), "{stored}");

    // Ignore: dropped silently.
    cm["metadata"]["name"] = json!("ignored");
    let (status, _, warnings) = send_with_warnings(
        &c,
        "POST",
        &format!("{CMS}?fieldValidation=Ignore"),
        "application/json",
        &cm,
    )
    .await;
    assert_eq!((status, warnings.len()), (201, 0));

    // Strict: refused, every unknown field named.
    cm["metadata"]["name"] = json!("strict");
    let r = c.post(&format!("{CMS}?fieldValidation=Strict"), &cm).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        message(&r.body),
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"foo\", unknown field \"metadata.bogus\""
    );

    // Deep in a Deployment, with list indices.
    let mut d = common::deployment("deep");
    d["spec"]["template"]["spec"]["containers"][1]["imagePullPolicyy"] = json!("Always");
    let r = c.post(&format!("{DEPLOYS}?fieldValidation=Strict"), &d).await;
    assert_eq!(
        message(&r.body),
        "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.template.spec.containers[1].imagePullPolicyy\""
    );

    // A patch's result: the strict error without the kind's prefix.
    let r = c
        .patch(
            &format!("{CMS}/warned?fieldValidation=Strict"),
            "application/merge-patch+json",
            r#"{"spec":{"foo":1}}"#,
        )
        .await;
    assert_eq!(
        (r.status, message(&r.body)),
        (400, "strict decoding error: unknown field \"spec\"")
    );

    // Server-side apply refuses fields the type does not declare.
    let r = c
        .patch(
            &format!("{CMS}/applied?fieldManager=test"),
            "application/apply-patch+yaml",
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "foo": "bar"})
                .to_string(),
        )
        .await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(
        message(&r.body),
        "failed to create typed patch object (arcgis/applied; /v1, Kind=ConfigMap): .foo: field not declared in schema"
    );

    // Items of associative lists are named by their keys.
    let mut d = common::deployment("applied");
    d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["bogus"] = json!(1);
    let r = c
        .patch(
            &format!("{DEPLOYS}/applied?fieldManager=test"),
            "application/apply-patch+yaml",
            &d.to_string(),
        )
        .await;
    assert_eq!(
        message(&r.body),
        "failed to create typed patch object (arcgis/applied; apps/v1, Kind=Deployment): .spec.template.spec.containers[name=\"web\"].ports[containerPort=80,protocol=\"TCP\"].bogus: field not declared in schema"
    );
    d["spec"]["template"]["spec"]["containers"][0]["ports"][0] =
        json!({"containerPort": 80, "hostPort": "80"});
    let r = c
        .patch(
            &format!("{DEPLOYS}/applied?fieldManager=test"),
            "application/apply-patch+yaml",
            &d.to_string(),
        )
        .await;
    assert_eq!(
        message(&r.body),
        "failed to create typed patch object (arcgis/applied; apps/v1, Kind=Deployment): .spec.template.spec.containers[name=\"web\"].ports[containerPort=80,protocol=\"TCP\"].hostPort: expected numeric (int or float), got string"
    );

    // An unsupported directive.
    let r = c.post(&format!("{CMS}?fieldValidation=Loud"), &config_map("loud")).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn secrets_merge_string_data_default_their_type_and_check_base64() {
    let (_h, c) = sim().await;
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"kept": "a2VwdA==", "over": "b2xk"},
        "stringData": {"over": "new", "plain": "text"},
    });
    let r = c.post(SECRETS, &secret).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["type"], "Opaque");
    assert!(r.body.get("stringData").is_none(), "{}", r.body);
    assert_eq!(r.body["data"], json!({"kept": "a2VwdA==", "over": "bmV3", "plain": "dGV4dA=="}));
    let stored = c.get(&format!("{SECRETS}/s")).await.body;
    assert!(stored.get("stringData").is_none());

    let bad = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}, "data": {"k": "not base64!"}});
    let r = c.post(SECRETS, &bad).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        message(&r.body),
        "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 3"
    );

    // The type is immutable, and a TLS secret needs its keys.
    let r = c.merge_patch(&format!("{SECRETS}/s"), r#"{"type":"kubernetes.io/tls"}"#).await;
    assert_eq!(r["code"], 422, "{r}");
    assert!(
        message(&r).contains("type: Invalid value: \"kubernetes.io/tls\": field is immutable"),
        "{r}"
    );
    let tls = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"}, "type": "kubernetes.io/tls"});
    let r = c.post(SECRETS, &tls).await;
    assert_eq!(
        message(&r.body),
        "Secret \"t\" is invalid: [data[tls.crt]: Required value, data[tls.key]: Required value]"
    );
}

#[tokio::test]
async fn metadata_rules() {
    let (_h, c) = sim().await;
    let mut cm = config_map("annotated");
    cm["metadata"]["annotations"] = json!({"Bad Key": "x"});
    let r = c.post(CMS, &cm).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        message(&r.body),
        "ConfigMap \"annotated\" is invalid: metadata.annotations: Invalid value: \"Bad Key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    );
    let mut cm = config_map("labelled");
    cm["metadata"]["labels"] = json!({"ok": "bad value"});
    let r = c.post(CMS, &cm).await;
    assert!(message(&r.body).starts_with("ConfigMap \"labelled\" is invalid: metadata.labels: Invalid value: \"bad value\": a valid label must be"), "{}", r.body);

    // 256 KiB of annotations in total.
    let mut cm = config_map("big-annotations");
    cm["metadata"]["annotations"] = json!({"a": "x".repeat(256 * 1024)});
    let r = c.post(CMS, &cm).await;
    assert_eq!(
        message(&r.body),
        "ConfigMap \"big-annotations\" is invalid: metadata.annotations: Too long: must have at most 262144 bytes"
    );

    // Owner references: uid required, one controller.
    let mut cm = config_map("owned");
    cm["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "o"}]);
    let r = c.post(CMS, &cm).await;
    assert_eq!(
        message(&r.body),
        "ConfigMap \"owned\" is invalid: metadata.ownerReferences.uid: Invalid value: \"\": must not be empty"
    );
    cm["metadata"]["ownerReferences"] = json!([
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "a", "uid": "1", "controller": true},
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "b", "uid": "2", "controller": true},
    ]);
    let r = c.post(CMS, &cm).await;
    assert_eq!(r.status, 422);
    assert!(
        message(&r.body).ends_with("Only one reference can have Controller set to true. Found \"true\" in references for Deployment/a and Deployment/b"),
        "{}",
        r.body
    );

    // Names: a long DNS subdomain without dots is fine (up to 253).
    let long = "a".repeat(200);
    assert_eq!(c.post(CMS, &config_map(&long)).await.status, 201);
    let mut d = common::deployment(&"d".repeat(100));
    d["metadata"]["labels"] = json!({"app": "long"});
    d["spec"]["selector"]["matchLabels"] = json!({"app": "long"});
    d["spec"]["template"]["metadata"]["labels"] = json!({"app": "long"});
    assert_eq!(c.post(DEPLOYS, &d).await.status, 201);
    let r = c.post(CMS, &config_map(&"a".repeat(254))).await;
    assert_eq!(
        message(&r.body),
        format!(
            "ConfigMap \"{}\" is invalid: metadata.name: Invalid value: \"{}\": must be no more than 253 characters",
            "a".repeat(254),
            "a".repeat(254)
        )
    );
    assert_eq!(c.create_widget_crd().await, 201);
    let widget = json!({"apiVersion": "example.sim.io/v1", "kind": "Widget", "metadata": {"name": "w".repeat(120)}, "spec": {"size": 1}});
    let r = c.post("/apis/example.sim.io/v1/namespaces/arcgis/widgets", &widget).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn immutable_config_maps_and_data_limits() {
    let (_h, c) = sim().await;
    let mut cm = config_map("frozen");
    cm["immutable"] = json!(true);
    assert_eq!(c.post(CMS, &cm).await.status, 201);
    let r = c.merge_patch(&format!("{CMS}/frozen"), r#"{"data":{"a":"2"}}"#).await;
    assert_eq!(r["code"], 422, "{r}");
    assert_eq!(
        message(&r),
        "ConfigMap \"frozen\" is invalid: data: Forbidden: field is immutable when `immutable` is set"
    );
    // Metadata may still change.
    let r = c.merge_patch(&format!("{CMS}/frozen"), r#"{"metadata":{"labels":{"x":"y"}}}"#).await;
    assert_eq!(r["metadata"]["labels"]["x"], "y", "{r}");

    // Over 1 MiB of data.
    let mut cm = config_map("huge");
    cm["data"] = json!({"a": "x".repeat(1024 * 1024 + 1)});
    let r = c.post(CMS, &cm).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        message(&r.body),
        "ConfigMap \"huge\" is invalid: []: Too long: must have at most 1048576 bytes"
    );

    // Over etcd's 1.5 MiB: what etcd answers, passed on as a 500.
    let mut cm = config_map("etcd");
    cm["metadata"]["annotations"] = json!({"a": "x".repeat(250 * 1024)});
    cm["binaryData"] = json!({"b": "A".repeat(1_390_000)});
    let r = c.post(CMS, &cm).await;
    assert_eq!((r.status, message(&r.body)), (500, "etcdserver: request is too large"));

    // Over the 3 MiB request body limit.
    let mut cm = config_map("body");
    cm["data"] = json!({"a": "x".repeat(3 * 1024 * 1024)});
    let r = c.post(CMS, &cm).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.body["reason"], "RequestEntityTooLarge");
    assert_eq!(message(&r.body), "Request entity too large: limit is 3145728");
}

#[tokio::test]
async fn a_large_legitimate_status_fits() {
    // The operator's status for 10,000 services (~500 KiB) must be stored.
    let (_h, c) = sim().await;
    let crd: Value =
        serde_json::from_str(include_str!("fixtures/servicerefresh-crd.json")).unwrap();
    assert_eq!(
        c.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", &crd).await.status,
        201
    );
    let path = "/apis/gisops.io/v1alpha1/namespaces/arcgis/servicerefreshes";
    let sr = json!({"apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh", "metadata": {"name": "all"}, "spec": {"selector": {}}});
    let r = c.post(path, &sr).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let services: Vec<Value> = (0..10_000)
        .map(|i| json!({"name": format!("service-{i:05}"), "namespace": "arcgis", "result": "Ready"}))
        .collect();
    let batches: Vec<Value> = services
        .chunks(10)
        .enumerate()
        .map(|(i, chunk)| json!({"index": i + 1, "phase": "Completed", "services": chunk}))
        .collect();
    let status = json!({"status": {"batches": batches}});
    assert!(status.to_string().len() > 500 * 1024);
    let r = c
        .patch(&format!("{path}/all/status"), "application/merge-patch+json", &status.to_string())
        .await;
    assert_eq!(r.status, 200, "{}", message(&r.body));
}

#[tokio::test]
async fn services_get_defaults_and_a_cluster_ip_that_updates_keep() {
    let (_h, c) = sim().await;
    let service = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    });
    let r = c.post(SERVICES, &service).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let spec = &r.body["spec"];
    let ip = spec["clusterIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10."), "{spec}");
    assert_eq!(spec["clusterIPs"], json!([ip]));
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["ports"][0], json!({"port": 80, "protocol": "TCP", "targetPort": 80}));
    assert_eq!(r.body["status"], json!({"loadBalancer": {}}));

    // A PUT without the allocated IP (helm upgrade, kubectl replace) keeps it.
    let mut again = service.clone();
    again["metadata"]["resourceVersion"] = r.body["metadata"]["resourceVersion"].clone();
    again["spec"]["ports"][0]["port"] = json!(8080);
    let r = c.put(&format!("{SERVICES}/web"), &again).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["spec"]["clusterIP"], ip.as_str());

    // Changing it is refused; so are bad ports and a DNS-1035-invalid name.
    let r = c
        .merge_patch(
            &format!("{SERVICES}/web"),
            r#"{"spec":{"clusterIP":"10.96.0.99","clusterIPs":["10.96.0.99"]}}"#,
        )
        .await;
    assert_eq!(r["code"], 422, "{r}");
    let bad = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1web"},
        "spec": {"ports": [{"port": 0}, {"port": 81}]}});
    let r = c.post(SERVICES, &bad).await;
    assert_eq!(
        message(&r.body),
        "Service \"1web\" is invalid: metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
    );
    let mut bad = bad;
    bad["metadata"]["name"] = json!("ports");
    let r = c.post(SERVICES, &bad).await;
    assert_eq!(
        message(&r.body),
        "Service \"ports\" is invalid: [spec.ports[0].name: Required value, spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive, spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive, spec.ports[1].name: Required value]"
    );
    // NodePorts are allocated in range.
    let np = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
    let r = c.post(SERVICES, &np).await;
    let node_port = r.body["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&node_port), "{}", r.body);
    assert_eq!(r.body["spec"]["externalTrafficPolicy"], "Cluster");
}

#[tokio::test]
async fn pod_disruption_budgets() {
    let (_h, c) = sim().await;
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "x"}}}});
    let r = c.post(PDBS, &pdb).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["metadata"]["generation"], 1);
    assert_eq!(r.body["status"]["disruptionsAllowed"], 0);
    let mut both = pdb.clone();
    both["metadata"]["name"] = json!("both");
    both["spec"]["maxUnavailable"] = json!("150%");
    let r = c.post(PDBS, &both).await;
    assert_eq!(r.status, 422);
    let text = message(&r.body);
    assert!(text.contains("minAvailable and maxUnavailable cannot be both set"), "{text}");
    assert!(
        text.contains(
            "spec.maxUnavailable: Invalid value: \"150%\": must not be greater than 100%"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn version_with_a_trailing_slash_and_openapi_v2() {
    let (_h, c) = sim().await;
    let r = c.get("/version/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["major"], "1");
    let r = c.get("/openapi/v2").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["swagger"], "2.0");
    let definitions = &r.body["definitions"];
    assert_eq!(
        definitions["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"][0]["kind"],
        "Deployment"
    );
    assert_eq!(
        definitions["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"]["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );
    let r = c
        .http
        .get(format!("{}/openapi/v2", c.base))
        .header("accept", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    let bytes = r.bytes().await.unwrap();
    // Field 1 (swagger), a string: "2.0".
    assert_eq!(&bytes[..5], b"\x0a\x032.0");
}

/// A CRD with CEL rules on its spec.
fn rules_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.sim.io"},
        "spec": {
            "group": "example.sim.io",
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {
                        "type": "object",
                        "x-kubernetes-validations": [
                            {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas"},
                            {"rule": "self.mode == oldSelf.mode", "message": "mode is immutable", "fieldPath": ".mode", "reason": "FieldValueForbidden"},
                            {"rule": "!has(self.name) || self.name.startsWith('g-')", "messageExpression": "'name ' + self.name + ' must start with g-'"},
                        ],
                        "properties": {
                            "minReplicas": {"type": "integer"},
                            "maxReplicas": {"type": "integer"},
                            "mode": {"type": "string"},
                            "name": {"type": "string"},
                            "tags": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": [{"rule": "size(self) <= 5"}]}},
                        },
                    }},
                }},
            }],
        },
    })
}

#[tokio::test]
async fn cel_validation_rules() {
    let (_h, c) = sim().await;
    let r = c.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", &rules_crd()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let path = "/apis/example.sim.io/v1/namespaces/arcgis/gadgets";
    let gadget = |spec: Value| json!({"apiVersion": "example.sim.io/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": spec});

    let r = c.post(path, &gadget(json!({"minReplicas": 3, "maxReplicas": 1, "mode": "a"}))).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        message(&r.body),
        "Gadget.example.sim.io \"g\" is invalid: spec: Invalid value: \"object\": minReplicas must not exceed maxReplicas"
    );
    assert_eq!(r.body["details"]["causes"][0]["reason"], "FieldValueInvalid");

    let r = c
        .post(
            path,
            &gadget(
                json!({"minReplicas": 1, "maxReplicas": 2, "name": "x", "tags": ["toolongtag"]}),
            ),
        )
        .await;
    assert_eq!(
        message(&r.body),
        "Gadget.example.sim.io \"g\" is invalid: [spec: Invalid value: \"object\": name x must start with g-, spec.tags[0]: Invalid value: \"string\": failed rule: size(self) <= 5]"
    );

    // The transition rule runs on update only.
    let r = c.post(path, &gadget(json!({"minReplicas": 1, "maxReplicas": 2, "mode": "a"}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = c.merge_patch(&format!("{path}/g"), r#"{"spec":{"mode":"b"}}"#).await;
    assert_eq!(r["code"], 422, "{r}");
    assert_eq!(
        message(&r),
        "Gadget.example.sim.io \"g\" is invalid: spec.mode: Forbidden: mode is immutable"
    );
    assert_eq!(r["details"]["causes"][0]["reason"], "FieldValueForbidden");
    let r = c.merge_patch(&format!("{path}/g"), r#"{"spec":{"maxReplicas":3}}"#).await;
    assert_eq!(r["spec"]["maxReplicas"], 3, "{r}");

    // A rule that does not compile is refused with the CRD.
    let mut crd = rules_crd();
    crd["metadata"]["name"] = json!("brokens.example.sim.io");
    crd["spec"]["names"] = json!({"plural": "brokens", "kind": "Broken"});
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"] =
        json!([{"rule": "self.a >"}]);
    let r = c.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", &crd).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        message(&r.body).contains("spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: \"self.a >\": compilation failed"),
        "{}",
        r.body
    );
}
