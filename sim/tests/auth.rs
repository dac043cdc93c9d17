//! Authentication and authorization at the HTTP level: 401 and 403 bodies
//! exactly as the real server writes them, the two sides of the port (TLS
//! authenticates every request; plain HTTP without credentials is the
//! insecure port's superuser), TokenRequests and the tokens they issue,
//! TokenReview, the access reviews, impersonation, discovery of the new
//! APIs, RBAC validation, default ServiceAccounts, and the SimHandle
//! helpers that run a client with exactly one ServiceAccount's rights.

mod common;

use axum::http::Request;
use common::{RawHttpClient, Resp};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};
use servicerefresh_sim::{SimConfig, SimHandle};

const SA: &str = "system:serviceaccount:arcgis:operator";
const TOKEN_REQUESTS: &str = "/api/v1/namespaces/arcgis/serviceaccounts/operator/token";

async fn kube_client(yaml: &str) -> kube::Client {
    let kubeconfig = Kubeconfig::from_yaml(yaml).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

/// A raw request over TLS.
async fn secure(
    h: &SimHandle,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Resp {
    let client = kube_client(&h.secure_kubeconfig_yaml("test", token, "arcgis")).await;
    let mut request = Request::builder().method(method).uri(path);
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body.map(|body| body.to_string().into_bytes()).unwrap_or_default();
    let response =
        client.send(request.body(body.into()).expect("request")).await.expect("response");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect_bytes().await.expect("body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Resp { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
}

/// A sim with the `operator` ServiceAccount of `fixtures/rbac.yaml`'s
/// shape (patch Deployments in arcgis), and a client with its token.
async fn sim_with_operator() -> (SimHandle, RawHttpClient, RawHttpClient) {
    let (h, admin) = common::sim(SimConfig::default()).await;
    h.create_service_account("arcgis", "operator").expect("service account");
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "restarter", "namespace": "arcgis"},
        "rules": [
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "patch"]},
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["proxy-settings"], "verbs": ["get"]},
        ],
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "operator-restarter", "namespace": "arcgis"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "restarter"},
        "subjects": [{"kind": "ServiceAccount", "name": "operator"}],
    });
    assert_eq!(
        admin
            .post("/apis/rbac.authorization.k8s.io/v1/namespaces/arcgis/roles", &role)
            .await
            .status,
        201
    );
    assert_eq!(
        admin
            .post("/apis/rbac.authorization.k8s.io/v1/namespaces/arcgis/rolebindings", &binding)
            .await
            .status,
        201
    );
    let token = h
        .service_account_token("arcgis", "operator", std::time::Duration::from_secs(3600))
        .expect("token");
    let operator = RawHttpClient::with_token(h.base_url(), &token);
    (h, admin, operator)
}

fn unauthorized() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_get_401_except_the_public_info() {
    let (h, _admin) = common::sim(SimConfig::default()).await;
    for path in [
        "/api/v1/namespaces",
        "/api",
        "/apis",
        "/openapi/v3",
        "/apis/apps/v1/namespaces/arcgis/deployments/x",
    ] {
        let r = secure(&h, None, "GET", path, None).await;
        assert_eq!((r.status, &r.body), (401, &unauthorized()), "{path}");
    }
    for path in ["/healthz", "/livez", "/readyz"] {
        let r = secure(&h, None, "GET", path, None).await;
        assert_eq!((r.status, r.body), (200, json!("ok")), "{path}");
    }
    let version = secure(&h, None, "GET", "/version", None).await;
    assert_eq!(version.status, 200);
    assert_eq!(version.body["major"], "1");
    // A token that does not authenticate is 401 everywhere, on either side.
    let r = secure(&h, Some("not-a-token"), "GET", "/healthz", None).await;
    assert_eq!((r.status, r.body), (401, unauthorized()));
    let bad = RawHttpClient::with_token(h.base_url(), "not-a-token");
    assert_eq!(bad.get("/api/v1/namespaces").await.status, 401);
    // The admin token works on the secure side; discovery needs a user.
    let admin = secure(&h, Some(&h.admin_token()), "GET", "/api/v1/namespaces/arcgis", None).await;
    assert_eq!(admin.status, 200);
    // The sim's own endpoints need no token.
    assert_eq!(RawHttpClient::anonymous(h.base_url()).get("/sim/v1/stats").await.status, 200);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_without_credentials_is_the_insecure_superuser() {
    let (h, _admin) = common::sim(SimConfig::default()).await;
    let plain = RawHttpClient::anonymous(h.base_url());
    let review = plain.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", &json!({})).await;
    assert_eq!(review.status, 201);
    assert_eq!(
        review.body["status"]["userInfo"],
        json!({"username": "system:unsecured", "groups": ["system:masters", "system:authenticated"]})
    );
    assert_eq!(plain.get("/api/v1/namespaces").await.status, 200);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_bodies_name_the_user_the_verb_the_resource_and_the_scope() {
    let (h, _admin, operator) = sim_with_operator().await;
    let cases = [
        (
            "PATCH",
            "/apis/apps/v1/namespaces/default/deployments/x",
            json!({"name": "x", "group": "apps", "kind": "deployments"}),
            format!(
                r#"deployments.apps "x" is forbidden: User "{SA}" cannot patch resource "deployments" in API group "apps" in the namespace "default""#
            ),
        ),
        (
            "GET",
            "/apis/apps/v1/namespaces/default/deployments",
            json!({"group": "apps", "kind": "deployments"}),
            format!(
                r#"deployments.apps is forbidden: User "{SA}" cannot list resource "deployments" in API group "apps" in the namespace "default""#
            ),
        ),
        (
            "GET",
            "/apis/apps/v1/namespaces/default/deployments?watch=true",
            json!({"group": "apps", "kind": "deployments"}),
            format!(
                r#"deployments.apps is forbidden: User "{SA}" cannot watch resource "deployments" in API group "apps" in the namespace "default""#
            ),
        ),
        (
            "PUT",
            "/apis/apps/v1/namespaces/arcgis/deployments/x/status",
            json!({"name": "x", "group": "apps", "kind": "deployments"}),
            format!(
                r#"deployments.apps "x" is forbidden: User "{SA}" cannot update resource "deployments/status" in API group "apps" in the namespace "arcgis""#
            ),
        ),
        (
            "GET",
            "/api/v1/namespaces",
            json!({"kind": "namespaces"}),
            format!(
                r#"namespaces is forbidden: User "{SA}" cannot list resource "namespaces" in API group "" at the cluster scope"#
            ),
        ),
        (
            "GET",
            "/api/v1/namespaces/arcgis",
            json!({"name": "arcgis", "kind": "namespaces"}),
            format!(
                r#"namespaces "arcgis" is forbidden: User "{SA}" cannot get resource "namespaces" in API group "" in the namespace "arcgis""#
            ),
        ),
        (
            "GET",
            "/api/v1/namespaces/arcgis/configmaps/other",
            json!({"name": "other", "kind": "configmaps"}),
            format!(
                r#"configmaps "other" is forbidden: User "{SA}" cannot get resource "configmaps" in API group "" in the namespace "arcgis""#
            ),
        ),
        (
            "DELETE",
            "/apis/apps/v1/namespaces/arcgis/deployments",
            json!({"group": "apps", "kind": "deployments"}),
            format!(
                r#"deployments.apps is forbidden: User "{SA}" cannot deletecollection resource "deployments" in API group "apps" in the namespace "arcgis""#
            ),
        ),
        (
            "GET",
            "/metrics",
            json!({}),
            format!(r#"forbidden: User "{SA}" cannot get path "/metrics""#),
        ),
        (
            "GET",
            "/apis/nothing.example.com/v1/things",
            json!({"group": "nothing.example.com", "kind": "things"}),
            format!(
                r#"things.nothing.example.com is forbidden: User "{SA}" cannot list resource "things" in API group "nothing.example.com" at the cluster scope"#
            ),
        ),
    ];
    for (method, path, details, message) in cases {
        let body = (method == "PATCH" || method == "PUT").then(|| "{}".to_string());
        let r = operator.send(method, path, "application/merge-patch+json", body).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        assert_eq!(
            r.body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": message, "reason": "Forbidden", "details": details, "code": 403}),
            "{method} {path}"
        );
    }
    // Allowed: patching in arcgis (404, as nothing is there), the named ConfigMap.
    let r = operator
        .patch(
            "/apis/apps/v1/namespaces/arcgis/deployments/x",
            "application/merge-patch+json",
            "{}",
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(
        operator.get("/api/v1/namespaces/arcgis/configmaps/proxy-settings").await.status,
        404
    );
    // A list selecting the one permitted name by field is a named request.
    let r = operator
        .get("/api/v1/namespaces/arcgis/configmaps?fieldSelector=metadata.name%3Dproxy-settings")
        .await;
    assert_eq!(r.status, 403, "list is not granted: {}", r.body);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_to_a_missing_role_is_the_reason() {
    let (h, admin, operator) = sim_with_operator().await;
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "dangling"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "not-there"},
        "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": "arcgis"}],
    });
    assert_eq!(
        admin.post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", &binding).await.status,
        201
    );
    let r = operator.get("/api/v1/namespaces").await;
    assert_eq!(
        r.body["message"],
        format!(
            r#"namespaces is forbidden: User "{SA}" cannot list resource "namespaces" in API group "" at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io "not-there" not found"#
        )
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_issue_tokens_that_token_reviews_accept() {
    let (h, admin, _operator) = sim_with_operator().await;
    let r = admin
        .post(
            TOKEN_REQUESTS,
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["kind"], "TokenRequest");
    assert_eq!(r.body["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(r.body["metadata"]["name"], "operator");
    assert_eq!(r.body["metadata"]["namespace"], "arcgis");
    assert_eq!(
        r.body["spec"],
        json!({"audiences": ["https://kubernetes.default.svc.cluster.local"], "expirationSeconds": 3600, "boundObjectRef": null})
    );
    let token = r.body["status"]["token"].as_str().expect("token").to_string();
    let created = jiff::Timestamp::now().as_second();
    let expiry: jiff::Timestamp =
        r.body["status"]["expirationTimestamp"].as_str().unwrap().parse().unwrap();
    assert!((expiry.as_second() - created - 3600).abs() <= 2, "expires in an hour: {}", r.body);
    // The claims the real issuer writes.
    let payload = token.split('.').nth(1).expect("payload");
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], SA);
    assert_eq!(claims["iss"], "https://kubernetes.default.svc.cluster.local");
    assert_eq!(claims["kubernetes.io"]["namespace"], "arcgis");
    assert_eq!(claims["kubernetes.io"]["serviceaccount"]["name"], "operator");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);

    let review = |token: &str, audiences: Value| json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token, "audiences": audiences}});
    let r = admin
        .post("/apis/authentication.k8s.io/v1/tokenreviews", &review(&token, json!(null)))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let status = &r.body["status"];
    assert_eq!(status["authenticated"], true);
    assert_eq!(status["user"]["username"], SA);
    assert_eq!(
        status["user"]["groups"],
        json!(["system:serviceaccounts", "system:serviceaccounts:arcgis", "system:authenticated"])
    );
    assert_eq!(status["audiences"], json!(["https://kubernetes.default.svc.cluster.local"]));
    assert!(status["user"]["uid"].as_str().is_some_and(|uid| !uid.is_empty()));
    let r = admin
        .post("/apis/authentication.k8s.io/v1/tokenreviews", &review(&token, json!(["vault"])))
        .await;
    assert_eq!(
        r.body["status"],
        json!({"user": {}, "error": r#"[invalid bearer token, token audiences ["https://kubernetes.default.svc.cluster.local"] is invalid for the target audiences ["vault"]]"#})
    );
    let r = admin
        .post("/apis/authentication.k8s.io/v1/tokenreviews", &review("garbage", json!(null)))
        .await;
    assert_eq!(r.body["status"], json!({"user": {}, "error": "invalid bearer token"}));
    let r =
        admin.post("/apis/authentication.k8s.io/v1/tokenreviews", &review("", json!(null))).await;
    assert_eq!(
        (r.status, r.body["message"].as_str()),
        (400, Some("token is required for TokenReview in authentication"))
    );
    // A token for another audience.
    let r = admin
        .post(TOKEN_REQUESTS, &json!({"spec": {"audiences": ["vault"], "expirationSeconds": 600}}))
        .await;
    let vault = r.body["status"]["token"].as_str().unwrap().to_string();
    let r = admin
        .post("/apis/authentication.k8s.io/v1/tokenreviews", &review(&vault, json!(["vault"])))
        .await;
    assert_eq!(
        (r.body["status"]["authenticated"].clone(), r.body["status"]["audiences"].clone()),
        (json!(true), json!(["vault"]))
    );
    assert_eq!(
        RawHttpClient::with_token(h.base_url(), &vault).get("/api").await.status,
        401,
        "not for the API"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_are_validated() {
    let (h, admin, _operator) = sim_with_operator().await;
    let r = admin.post(TOKEN_REQUESTS, &json!({"spec": {"expirationSeconds": 599}})).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["message"],
        r#"TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"#
    );
    let r =
        admin.post(TOKEN_REQUESTS, &json!({"spec": {"expirationSeconds": 4294967297_i64}})).await;
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .ends_with("may not specify a duration larger than 2^32 seconds"),
        "{}",
        r.body
    );
    let r = admin
        .post(TOKEN_REQUESTS, &json!({"metadata": {"name": "someone-else"}, "spec": {}}))
        .await;
    assert!(r.body["message"].as_str().unwrap().contains(r#"metadata.name: Invalid value: "someone-else": must match the service account name if specified"#), "{}", r.body);
    let r = admin
        .post("/api/v1/namespaces/arcgis/serviceaccounts/nobody/token", &json!({"spec": {}}))
        .await;
    assert_eq!(
        (r.status, r.body["message"].as_str()),
        (404, Some(r#"serviceaccounts "nobody" not found"#))
    );
    let r = admin
        .post(
            TOKEN_REQUESTS,
            &json!({"spec": {"boundObjectRef": {"kind": "Node", "apiVersion": "v1", "name": "n"}}}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["message"].as_str()),
        (400, Some("cannot bind token to object of type /v1, Kind=Node"))
    );
    // Only create.
    let r = admin.get(TOKEN_REQUESTS).await;
    assert_eq!(r.status, 405, "{}", r.body);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_die_with_their_service_account_and_bound_object() {
    let (h, admin, operator) = sim_with_operator().await;
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "anchor"}, "type": "Opaque"});
    let created = admin.post("/api/v1/namespaces/arcgis/secrets", &secret).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let r = admin.post(TOKEN_REQUESTS, &json!({"spec": {"boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": "anchor"}}})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let bound =
        RawHttpClient::with_token(h.base_url(), r.body["status"]["token"].as_str().unwrap());
    assert_eq!(bound.get("/apis/apps/v1/namespaces/arcgis/deployments").await.status, 200);
    assert_eq!(admin.delete("/api/v1/namespaces/arcgis/secrets/anchor").await.status, 200);
    assert_eq!(bound.get("/apis/apps/v1/namespaces/arcgis/deployments").await.status, 401);
    let r = admin
        .post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            &json!({"spec": {"token": operator_token(&operator)}}),
        )
        .await;
    assert_eq!(r.body["status"]["authenticated"], true);
    assert_eq!(operator.get("/apis/apps/v1/namespaces/arcgis/deployments").await.status, 200);
    assert_eq!(
        admin.delete("/api/v1/namespaces/arcgis/serviceaccounts/operator").await.status,
        200
    );
    assert_eq!(operator.get("/apis/apps/v1/namespaces/arcgis/deployments").await.status, 401);
    let r = admin
        .post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            &json!({"spec": {"token": operator_token(&operator)}}),
        )
        .await;
    assert_eq!(
        r.body["status"]["error"],
        r#"[invalid bearer token, serviceaccounts "operator" not found]"#
    );
    // Recreated, it is another ServiceAccount.
    h.create_service_account("arcgis", "operator").unwrap();
    let r = admin
        .post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            &json!({"spec": {"token": operator_token(&operator)}}),
        )
        .await;
    assert!(
        r.body["status"]["error"].as_str().unwrap().contains("does not match claim"),
        "{}",
        r.body
    );
    h.shutdown().await;
}

/// The token a client sends (its default Authorization header).
fn operator_token(client: &RawHttpClient) -> String {
    client.token.clone().expect("token")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_reviews_answer_in_the_body() {
    let (h, admin, operator) = sim_with_operator().await;
    let attributes = |verb: &str, namespace: &str| json!({"verb": verb, "group": "apps", "resource": "deployments", "namespace": namespace, "name": "web"});
    let sar = |verb: &str, namespace: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": SA, "groups": ["system:serviceaccounts", "system:serviceaccounts:arcgis", "system:authenticated"], "resourceAttributes": attributes(verb, namespace)}})
    };
    let r = admin
        .post("/apis/authorization.k8s.io/v1/subjectaccessreviews", &sar("patch", "arcgis"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.body["status"],
        json!({"allowed": true, "reason": r#"RBAC: allowed by RoleBinding "operator-restarter/arcgis" of Role "restarter" to ServiceAccount "operator/arcgis""#})
    );
    assert_eq!(r.body["spec"]["user"], SA, "the spec comes back");
    let r = admin
        .post("/apis/authorization.k8s.io/v1/subjectaccessreviews", &sar("delete", "arcgis"))
        .await;
    assert_eq!(r.body["status"], json!({"allowed": false}));
    let masters = json!({"spec": {"user": "someone", "groups": ["system:masters"], "nonResourceAttributes": {"path": "/anything", "verb": "delete"}}});
    let r = admin.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", &masters).await;
    assert_eq!(r.body["status"], json!({"allowed": true}));
    // Only the admin (system:auth-delegator's rights) may ask about others.
    let r = operator
        .post("/apis/authorization.k8s.io/v1/subjectaccessreviews", &sar("patch", "arcgis"))
        .await;
    assert_eq!(r.status, 403);
    // Self reviews are every user's (system:basic-user).
    let ssar = |verb: &str, namespace: &str| json!({"spec": {"resourceAttributes": attributes(verb, namespace)}});
    let r = operator
        .post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", &ssar("patch", "arcgis"))
        .await;
    assert_eq!((r.status, r.body["status"]["allowed"].clone()), (201, json!(true)), "{}", r.body);
    let r = operator
        .post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", &ssar("patch", "default"))
        .await;
    assert_eq!(r.body["status"], json!({"allowed": false}));
    let r = operator
        .post(
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            &json!({"spec": {"namespace": "arcgis"}}),
        )
        .await;
    assert_eq!(r.status, 201);
    let rules = r.body["status"]["resourceRules"].as_array().unwrap();
    assert!(rules.contains(&json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["proxy-settings"]})), "{}", r.body);
    assert_eq!(r.body["status"]["incomplete"], false);
    let r = operator
        .post("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", &json!({"spec": {}}))
        .await;
    assert_eq!((r.status, r.body["message"].as_str()), (400, Some("no namespace on request")));
    // Local reviews are namespaced.
    let lsar = json!({"spec": {"user": SA, "resourceAttributes": attributes("patch", "arcgis")}});
    let r = admin
        .post("/apis/authorization.k8s.io/v1/namespaces/arcgis/localsubjectaccessreviews", &lsar)
        .await;
    assert_eq!((r.status, r.body["status"]["allowed"].clone()), (201, json!(true)), "{}", r.body);
    assert_eq!(r.body["metadata"]["namespace"], "arcgis");
    let r = admin
        .post("/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews", &lsar)
        .await;
    assert_eq!(
        (r.status, r.body["message"].as_str()),
        (
            422,
            Some(
                r#"LocalSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes.namespace: Invalid value: "arcgis": must match metadata.namespace"#
            )
        )
    );
    // Who am I.
    let r = operator
        .post(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["status"]["userInfo"]["username"], SA);
    assert!(r.body["metadata"]["creationTimestamp"].is_string());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_reviews_are_invalid_as_on_a_real_server() {
    let (h, admin) = common::sim(SimConfig::default()).await;
    let r = admin
        .post("/apis/authorization.k8s.io/v1/subjectaccessreviews", &json!({"spec": {}}))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["message"],
        r#"SubjectAccessReview.authorization.k8s.io "" is invalid: [spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified, spec.user: Invalid value: "": at least one of user or group must be specified]"#
    );
    let both = json!({"spec": {"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"path": "/x", "verb": "get"}}});
    let r = admin.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", &both).await;
    assert!(
        r.body["message"].as_str().unwrap().contains("spec.nonResourceAttributes: Invalid value: "),
        "{}",
        r.body
    );
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .ends_with("cannot be specified in combination with resourceAttributes"),
        "{}",
        r.body
    );
    let named = json!({"metadata": {"name": "x"}, "spec": {"nonResourceAttributes": {"path": "/x", "verb": "get"}}});
    let r = admin.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", &named).await;
    assert!(r.body["message"].as_str().unwrap().ends_with("must be empty"), "{}", r.body);
    let r = admin.get("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews").await;
    assert_eq!(r.status, 405);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_needs_the_impersonate_verb() {
    let (h, admin, operator) = sim_with_operator().await;
    let whoami = |client: RawHttpClient, headers: Vec<(&'static str, &'static str)>| async move {
        let mut request = client
            .http
            .post(format!("{}/apis/authentication.k8s.io/v1/selfsubjectreviews", client.base))
            .json(&json!({}));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let r = request.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.expect("json"))
    };
    let (status, body) = whoami(admin.clone(), vec![("Impersonate-User", SA)]).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["status"]["userInfo"],
        json!({"username": SA, "groups": ["system:serviceaccounts", "system:serviceaccounts:arcgis", "system:authenticated"]})
    );
    let (_, body) =
        whoami(admin.clone(), vec![("Impersonate-User", "jane"), ("Impersonate-Group", "devs")])
            .await;
    assert_eq!(
        body["status"]["userInfo"],
        json!({"username": "jane", "groups": ["devs", "system:authenticated"]})
    );
    // Impersonating the ServiceAccount, the admin has its rights only.
    let r = admin
        .http
        .get(format!("{}/api/v1/namespaces", admin.base))
        .header("Impersonate-User", SA)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (status, body) = whoami(operator, vec![("Impersonate-User", "jane")]).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["message"],
        format!(
            r#"users "jane" is forbidden: User "{SA}" cannot impersonate resource "users" in API group "" at the cluster scope"#
        )
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_the_new_apis() {
    let (h, admin) = common::sim(SimConfig::default()).await;
    let authorization = admin.get("/apis/authorization.k8s.io/v1").await.body;
    let resources = authorization["resources"].as_array().unwrap();
    let ssar = resources.iter().find(|r| r["name"] == "selfsubjectaccessreviews").expect("ssar");
    assert_eq!(ssar["verbs"], json!(["create"]));
    assert_eq!(ssar["namespaced"], false);
    let lsar = resources.iter().find(|r| r["name"] == "localsubjectaccessreviews").expect("lsar");
    assert_eq!(lsar["namespaced"], true);
    let core = admin.get("/api/v1").await.body;
    let token = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "serviceaccounts/token")
        .expect("token");
    assert_eq!(
        token,
        &json!({"name": "serviceaccounts/token", "singularName": "", "namespaced": true, "group": "authentication.k8s.io",
                "version": "v1", "kind": "TokenRequest", "verbs": ["create"]})
    );
    let sa = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "serviceaccounts")
        .expect("sa");
    assert_eq!(sa["shortNames"], json!(["sa"]));
    let rbac = admin.get("/apis/rbac.authorization.k8s.io/v1").await.body;
    let names: Vec<&str> =
        rbac["resources"].as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["clusterrolebindings", "clusterroles", "rolebindings", "roles"]);
    let groups = admin.get("/apis").await.body;
    for group in ["authentication.k8s.io", "authorization.k8s.io", "rbac.authorization.k8s.io"] {
        assert!(groups["groups"].as_array().unwrap().iter().any(|g| g["name"] == group), "{group}");
    }
    let index = admin.get("/openapi/v3").await.body;
    for path in [
        "apis/rbac.authorization.k8s.io/v1",
        "apis/authorization.k8s.io/v1",
        "apis/authentication.k8s.io/v1",
    ] {
        assert!(index["paths"].get(path).is_some(), "{path}");
    }
    // The default policy is there to read.
    let roles =
        admin.get("/apis/rbac.authorization.k8s.io/v1/clusterroles/system:basic-user").await;
    assert_eq!(roles.status, 200);
    assert_eq!(roles.body["metadata"]["labels"]["kubernetes.io/bootstrapping"], "rbac-defaults");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_objects_are_validated() {
    let (h, admin) = common::sim(SimConfig::default()).await;
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "system:odd:name"},
        "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}, {"verbs": ["get"]}, {"apiGroups": [""], "resources": ["pods"]}]});
    let r = admin.post("/apis/rbac.authorization.k8s.io/v1/namespaces/arcgis/roles", &role).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["message"],
        r#"Role.rbac.authorization.k8s.io "system:odd:name" is invalid: [rules[0].nonResourceURLs: Invalid value: []string{"/metrics"}: namespaced rules cannot apply to non-resource URLs, rules[1].apiGroups: Required value: resource rules must supply at least one api group, rules[1].resources: Required value: resource rules must supply at least one resource, rules[2].verbs: Required value: verbs must contain at least one value]"#
    );
    let ok = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:odd:name"},
        "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]});
    assert_eq!(
        admin.post("/apis/rbac.authorization.k8s.io/v1/clusterroles", &ok).await.status,
        201,
        "colons are fine"
    );
    let slash = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "a%b"}});
    let r = admin.post("/apis/rbac.authorization.k8s.io/v1/clusterroles", &slash).await;
    assert_eq!(
        r.body["message"],
        r#"ClusterRole.rbac.authorization.k8s.io "a%b" is invalid: metadata.name: Invalid value: "a%b": may not contain '%'"#
    );
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
        "roleRef": {"kind": "Role", "name": "x"},
        "subjects": [{"kind": "ServiceAccount", "name": "op"}, {"kind": "User", "name": "u"}, {"kind": "Robot", "name": "r"}]});
    let r = admin.post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", &binding).await;
    assert_eq!(
        r.body["message"],
        r#"ClusterRoleBinding.rbac.authorization.k8s.io "b" is invalid: [roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole", subjects[0].namespace: Required value, subjects[2].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"]"#
    );
    // Defaults: apiGroups of roleRef, users and groups.
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "b"},
        "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "op"}]});
    let r = admin
        .post("/apis/rbac.authorization.k8s.io/v1/namespaces/arcgis/rolebindings", &binding)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(
        r.body["subjects"],
        json!([{"kind": "User", "name": "u", "apiGroup": "rbac.authorization.k8s.io"}, {"kind": "ServiceAccount", "name": "op"}])
    );
    let r = admin
        .merge_patch(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/arcgis/rolebindings/b",
            r#"{"roleRef": {"name": "edit"}}"#,
        )
        .await;
    assert_eq!(
        r["message"],
        r#"RoleBinding.rbac.authorization.k8s.io "b" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", Name:"edit"}: cannot change roleRef"#
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_namespace_gets_a_default_service_account() {
    let (h, admin) = common::sim(SimConfig::default()).await;
    for namespace in ["default", "kube-system", "arcgis"] {
        let r = admin.get(&format!("/api/v1/namespaces/{namespace}/serviceaccounts/default")).await;
        assert_eq!(r.status, 200, "{namespace}");
    }
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}});
    assert_eq!(admin.post("/api/v1/namespaces", &ns).await.status, 201);
    common::eventually("the default ServiceAccount", || {
        let admin = admin.clone();
        async move {
            (admin.get("/api/v1/namespaces/fresh/serviceaccounts/default").await.status == 200)
                .then_some(())
        }
    })
    .await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_kubeconfig_has_exactly_its_rights() {
    let (h, _admin, _operator) = sim_with_operator().await;
    assert!(matches!(
        h.write_service_account_kubeconfig("arcgis", "nobody", &std::env::temp_dir().join("never")),
        Err(servicerefresh_sim::SimError::Request(_))
    ));
    let yaml = h.service_account_kubeconfig_yaml("arcgis", "operator").expect("kubeconfig");
    assert!(
        yaml.contains(&h.secure_url()) && yaml.contains("certificate-authority-data"),
        "{yaml}"
    );
    let client = kube_client(&yaml).await;
    assert_eq!(client.default_namespace(), "arcgis");
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "arcgis");
    deployments.list(&ListParams::default()).await.expect("list in arcgis");
    let elsewhere: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "default");
    match elsewhere.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403);
            assert_eq!(
                status.message,
                format!(
                    r#"deployments.apps is forbidden: User "{SA}" cannot list resource "deployments" in API group "apps" in the namespace "default""#
                )
            );
        }
        other => panic!("forbidden, got {other:?}"),
    }
    let patch = Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}}));
    match deployments.patch("web", &PatchParams::default(), &patch).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 404, "allowed, and absent"),
        other => panic!("404, got {other:?}"),
    }
    h.shutdown().await;
}

/// A Role naming one Secret lets its holder list and watch exactly that Secret through a
/// `metadata.name` field selector, as the real server does (RequestInfo takes the name
/// from the selector); a list of every Secret, or of another one, stays forbidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_names_allow_list_and_watch_of_one_secret_by_field_selector() {
    let (h, admin) = common::sim(SimConfig::default()).await;
    h.create_service_account("arcgis", "reader").expect("service account");
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "tls-reader", "namespace": "arcgis"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["tls"],
                   "verbs": ["get", "list", "watch"]}],
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "reader-tls", "namespace": "arcgis"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tls-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader"}],
    });
    for (path, body) in [
        ("/apis/rbac.authorization.k8s.io/v1/namespaces/arcgis/roles", &role),
        ("/apis/rbac.authorization.k8s.io/v1/namespaces/arcgis/rolebindings", &binding),
    ] {
        assert_eq!(admin.post(path, body).await.status, 201);
    }
    for name in ["tls", "other"] {
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
                            "metadata": {"name": name, "namespace": "arcgis"},
                            "data": {"k": "dg=="}});
        assert_eq!(admin.post("/api/v1/namespaces/arcgis/secrets", &secret).await.status, 201);
    }
    let token = h
        .service_account_token("arcgis", "reader", std::time::Duration::from_secs(3600))
        .expect("token");
    let reader = RawHttpClient::with_token(h.base_url(), &token);
    const SECRETS: &str = "/api/v1/namespaces/arcgis/secrets";

    let one = reader.get(&format!("{SECRETS}?fieldSelector=metadata.name%3Dtls")).await;
    assert_eq!(one.status, 200, "{}", one.body);
    let names: Vec<&str> = one.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["tls"]);
    assert_eq!(reader.get(&format!("{SECRETS}/tls")).await.status, 200);

    let all = reader.get(SECRETS).await;
    assert_eq!(all.status, 403, "{}", all.body);
    assert_eq!(
        all.body["message"],
        "secrets is forbidden: User \"system:serviceaccount:arcgis:reader\" cannot list \
         resource \"secrets\" in API group \"\" in the namespace \"arcgis\""
    );
    let other = reader.get(&format!("{SECRETS}?fieldSelector=metadata.name%3Dother")).await;
    assert_eq!(other.status, 403, "{}", other.body);
    assert_eq!(
        other.body["message"],
        "secrets \"other\" is forbidden: User \"system:serviceaccount:arcgis:reader\" cannot \
         list resource \"secrets\" in API group \"\" in the namespace \"arcgis\""
    );
    let unwatched = reader.watch(&format!("{SECRETS}?watch=true")).await;
    assert_eq!(unwatched.status, 403);

    let mut watch =
        reader.watch(&format!("{SECRETS}?watch=true&fieldSelector=metadata.name%3Dtls")).await;
    assert_eq!(watch.status, 200);
    let added = watch.until(|event| event["type"] == "ADDED").await;
    assert_eq!(added["object"]["metadata"]["name"], "tls");
    for name in ["other", "tls"] {
        let patched =
            admin.merge_patch(&format!("{SECRETS}/{name}"), r#"{"data": {"k": "dzI="}}"#).await;
        assert_eq!(patched["metadata"]["name"], name);
    }
    let modified = watch.until(|event| event["type"] == "MODIFIED").await;
    assert_eq!(modified["object"]["metadata"]["name"], "tls", "only the named Secret");
    h.shutdown().await;
}
