//! The admin flags: what each combination makes, and what is refused at start-up.
use super::*;

fn args(flags: &[&str]) -> Result<AdminArgs, clap::Error> {
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        admin: AdminArgs,
    }
    use clap::Parser;
    Wrapper::try_parse_from(std::iter::once("run").chain(flags.iter().copied())).map(|w| w.admin)
}

#[test]
fn off_by_default_and_https_when_given_a_certificate() {
    assert_eq!(args(&[]).unwrap().settings(), Ok(None));
    let settings = args(&[
        "--admin-listen=0.0.0.0:8443",
        "--admin-target=arcgis/refresh-all",
        "--admin-tls-cert=/tls/tls.crt",
        "--admin-tls-key=/tls/tls.key",
    ])
    .unwrap()
    .settings()
    .unwrap()
    .unwrap();
    assert_eq!(settings.target.to_string(), "arcgis/refresh-all");
    assert_eq!(settings.context_root.as_str(), "/arcgis/admin");
    assert_eq!(settings.transport.scheme(), "https");
}

#[test]
fn plain_http_only_when_asked_and_never_with_a_certificate() {
    let base = ["--admin-listen=127.0.0.1:0", "--admin-target=arcgis/x"];
    assert_eq!(args(&base).unwrap().settings(), Err(ConfigError::NoTransport));
    let plain = args(&[base[0], base[1], "--admin-plain-http"]).unwrap().settings().unwrap();
    assert_eq!(plain.unwrap().transport, Transport::PlainHttp);
    let both =
        args(&[base[0], base[1], "--admin-plain-http", "--admin-tls-cert=c", "--admin-tls-key=k"]);
    assert_eq!(both.unwrap().settings(), Err(ConfigError::BothTransports));
    let half = args(&[base[0], base[1], "--admin-tls-cert=c"]);
    assert_eq!(half.unwrap().settings(), Err(ConfigError::HalfTls));
    assert!(ConfigError::NoTransport.to_string().contains("--admin-plain-http"));
}

#[test]
fn target_and_context_root_are_checked() {
    assert!(TargetRef::parse("arcgis/refresh-all").is_ok());
    for bad in ["refresh-all", "arcgis/", "/x", "Arcgis/x", "a/b/c", "a.b/x"] {
        assert!(TargetRef::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(ContextRoot::parse("/").unwrap().as_str(), "");
    assert_eq!(ContextRoot::parse("/gis/admin").unwrap().as_str(), "/gis/admin");
    for (bad, reason) in [
        ("admin", "start with /"),
        ("/admin/", "end with /"),
        ("/a//b", "empty segments"),
        ("//a", "empty segments"),
        ("/a/../b", "'..'"),
        ("/..", "'..'"),
        ("/a/./b", "'.'"),
        ("/a/%2e%2e/b", "percent-encoded"),
        ("/a%2Fb", "percent-encoded"),
        ("/a b", "letters, digits"),
        ("/{x}", "letters, digits"),
    ] {
        let error = ContextRoot::parse(bad).expect_err(bad).to_string();
        assert!(error.contains(reason) && error.contains("--admin-context-root"), "{error}");
    }
    // Dots inside a segment are ordinary characters.
    assert!(ContextRoot::parse("/gis.v2/..admin").is_ok());
    let missing = args(&["--admin-listen=127.0.0.1:0", "--admin-plain-http"]).unwrap();
    assert_eq!(missing.settings(), Err(ConfigError::MissingTarget));
    let stray = args(&["--admin-target=arcgis/x"]).unwrap();
    assert_eq!(stray.settings(), Err(ConfigError::WithoutListen { flag: "--admin-target" }));
}

#[test]
fn the_external_url_is_an_absolute_canonical_url() {
    let url = ExternalUrl::parse("https://GIS.example.com:8443/arcgis/admin/").unwrap();
    assert_eq!(url.base(), "https://gis.example.com:8443/arcgis/admin");
    assert_eq!(url.origin(), "https://gis.example.com:8443");
    assert_eq!(ExternalUrl::parse("http://gis").unwrap().base(), "http://gis");
    for (bad, reason) in [
        ("gis.example.com/arcgis", "https://"),
        ("ftp://gis.example.com", "https://"),
        ("https://user@gis.example.com", "user name"),
        ("https://gis.example.com/a?b=c", "query"),
        ("https://gis.example.com/a/../b", "'..'"),
        ("https://gis.example.com/a//b", "empty segments"),
    ] {
        let error = ExternalUrl::parse(bad).expect_err(bad).to_string();
        assert!(error.contains(reason), "{bad}: {error}");
    }
}

#[test]
fn connection_limits_have_safe_defaults_and_flags() {
    let base = ["--admin-listen=127.0.0.1:0", "--admin-target=arcgis/x", "--admin-plain-http"];
    let settings = args(&base).unwrap().settings().unwrap().unwrap();
    assert_eq!(settings.limits, ConnectionLimits::default());
    assert_eq!(settings.limits.header_read_timeout, Duration::from_secs(10));
    let mut flags = base.to_vec();
    flags.extend([
        "--admin-header-read-timeout=3s",
        "--admin-idle-timeout=1m",
        "--admin-max-connections=100",
        "--admin-max-connections-per-client=10",
    ]);
    let limits = args(&flags).unwrap().settings().unwrap().unwrap().limits;
    assert_eq!(
        limits,
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(60),
            max_connections: 100,
            max_connections_per_client: 10,
        }
    );
    for bad in
        ["--admin-max-connections=0", "--admin-idle-timeout=0s", "--admin-header-read-timeout=soon"]
    {
        assert!(args(&[base[0], bad]).is_err(), "{bad}");
    }
    assert_eq!(AdminArgs::default().settings(), Ok(None));
}
