//! Image references as the kubelet reads them, and which images the sim's
//! kubelet runs for real: an image runs when its repository (the reference
//! without tag or digest) is one of `SimConfig::run_images`, whatever its
//! tag or digest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The repository of an image reference: `[registry[:port]/]path`, without
/// `:tag` or `@digest` (a colon only starts a tag after the last `/`, since
/// a registry may name a port).
pub fn repository(image: &str) -> &str {
    let without_digest = image.split_once('@').map_or(image, |(name, _)| name);
    let last_slash = without_digest.rfind('/').map_or(0, |slash| slash + 1);
    match without_digest[last_slash..].find(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    }
}

/// The local executable standing in for `image`, if the kubelet runs it.
pub fn mapped_binary<'a>(
    run_images: &'a BTreeMap<String, PathBuf>,
    image: &str,
) -> Option<&'a Path> {
    run_images.get(repository(image)).map(PathBuf::as_path)
}

/// Whether a pod spec has a container whose image the kubelet runs for
/// real (with `repositories` the keys of `SimConfig::run_images`).
pub fn spec_runs_for_real<'a>(
    repositories: impl IntoIterator<Item = &'a String> + Clone,
    pod_spec: &Value,
) -> bool {
    pod_spec.get("containers").and_then(Value::as_array).is_some_and(|containers| {
        containers.iter().filter_map(|container| container.get("image")?.as_str()).any(|image| {
            let wanted = repository(image);
            repositories.clone().into_iter().any(|known| known == wanted)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_drops_tag_and_digest_but_keeps_a_registry_port() {
        let cases = [
            ("ghcr.io/gisops/servicerefresh", "ghcr.io/gisops/servicerefresh"),
            ("ghcr.io/gisops/servicerefresh:0.1.0", "ghcr.io/gisops/servicerefresh"),
            ("ghcr.io/gisops/servicerefresh@sha256:0123", "ghcr.io/gisops/servicerefresh"),
            ("ghcr.io/gisops/servicerefresh:0.1.0@sha256:0123", "ghcr.io/gisops/servicerefresh"),
            ("localhost:5000/app", "localhost:5000/app"),
            ("localhost:5000/app:v2", "localhost:5000/app"),
            ("nginx:1.27", "nginx"),
            ("nginx", "nginx"),
        ];
        for (image, expected) in cases {
            assert_eq!(repository(image), expected, "{image}");
        }
    }

    #[test]
    fn a_pod_runs_for_real_when_one_of_its_images_is_mapped() {
        let mapped: BTreeMap<String, PathBuf> =
            [("example.com/app".to_string(), PathBuf::from("/bin/true"))].into_iter().collect();
        let spec = |image: &str| serde_json::json!({"containers": [{"name": "a", "image": image}]});
        assert!(spec_runs_for_real(mapped.keys(), &spec("example.com/app:1")));
        assert!(!spec_runs_for_real(mapped.keys(), &spec("example.com/application:1")));
        assert!(!spec_runs_for_real(mapped.keys(), &serde_json::json!({})));
        assert_eq!(
            mapped_binary(&mapped, "example.com/app@sha256:ab"),
            Some(Path::new("/bin/true"))
        );
    }
}
