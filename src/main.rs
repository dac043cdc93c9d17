use kube::CustomResourceExt;
fn main() {
    let crd = servicerefresh::crd::ServiceRefresh::crd();
    print!("{}", serde_saphyr::to_string(&crd).unwrap());
}
