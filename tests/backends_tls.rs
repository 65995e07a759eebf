//! TLS to the databases: a private PostgreSQL that accepts TLS connections only (`hostssl`),
//! and a private Redis that speaks TLS only, both with certificates the test makes. The service
//! reaches them when it is given the right CA (and client certificate), and refuses a server
//! whose certificate a wrong CA signed or names another host.
//!
//! Loopback only; every server is the test's own, stopped when the test ends.

#[path = "api/support/mod.rs"]
mod support;

use std::time::Duration;

use cps::startup::Application;
use support::*;

/// The backend the support library assumes where a test names none.
pub const BACKEND: Backend = Backend::PostgresRedis;

/// A PostgreSQL reachable over TLS only, with `pki`'s server certificate for `localhost`; the
/// database `mtls` also wants a client certificate signed by `pki`'s CA.
fn tls_postgres(pki: &Pki) -> Option<PrivatePostgres> {
    let files = pki.dir.path().to_owned();
    let pg = PrivatePostgres::start_with(move |dir| {
        for name in ["server.pem", "server.key", "ca.pem"] {
            std::fs::copy(files.join(name), dir.join(name)).unwrap();
        }
        // PostgreSQL refuses a key that others may read.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            dir.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::fs::write(
            dir.join("hba.conf"),
            "local all all trust\n\
             hostssl mtls all 127.0.0.1/32 trust clientcert=verify-ca\n\
             hostssl all all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        let path = |name: &str| dir.join(name).display().to_string();
        vec![
            "ssl=on".into(),
            format!("ssl_cert_file={}", path("server.pem")),
            format!("ssl_key_file={}", path("server.key")),
            format!("ssl_ca_file={}", path("ca.pem")),
            format!("hba_file={}", path("hba.conf")),
        ]
    })?;
    Some(pg)
}

/// Builds the app on `url` with no cache; the error's whole chain when it cannot.
async fn build_on(url: &str) -> Result<Application, String> {
    let mut c = config(url);
    c.database.options.timeout = Duration::from_secs(3);
    Application::build(c).await.map_err(|e| format!("{e:#}"))
}

#[tokio::test]
async fn postgresql_over_tls_is_verified_against_the_configured_ca_and_host_name() {
    let pki = pki();
    let Some(pg) = tls_postgres(&pki) else {
        return;
    };
    let other = support::pki();
    let ca = pki.dir.path().join("ca.pem").display().to_string();
    let wrong_ca = other.dir.path().join("ca.pem").display().to_string();
    let at = |host: &str, db: &str, query: &str| {
        format!("postgres://postgres@{host}:{}/{db}?{query}", pg.port)
    };

    // The server takes TLS connections only: without TLS the service cannot connect.
    let plain = build_on(&at("localhost", "postgres", "sslmode=disable")).await;
    assert!(plain.is_err(), "a plain connection was accepted");

    // Verified: the CA signed the certificate and it names the host connected to.
    let url = at(
        "localhost",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let app = build_on(&url).await.expect("verify-full with the right CA");
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = TestApp::at(&base);
    client.registered("7001").await;
    assert_eq!(client.get("7001").await.status, 200);

    // A certificate the configured CA did not sign is refused.
    let refused = build_on(&at(
        "localhost",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={wrong_ca}"),
    ))
    .await
    .err()
    .expect("a wrong CA is refused");
    assert!(refused.contains("connect to PostgreSQL"), "{refused}");

    // A certificate for `localhost` does not cover 127.0.0.1 under verify-full.
    let wrong_host = build_on(&at(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await;
    assert!(
        wrong_host.is_err(),
        "a host name the certificate lacks passed"
    );
    // verify-ca checks the CA. (It should not check the host name, as libpq's; sqlx 0.8.6 with
    // rustls >= 0.23.24 checks it all the same (sqlx#3793): stricter, never looser. README.)
    build_on(&at(
        "localhost",
        "postgres",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ))
    .await
    .expect("verify-ca with the right CA");
    assert!(
        build_on(&at(
            "localhost",
            "postgres",
            &format!("sslmode=verify-ca&sslrootcert={wrong_ca}"),
        ))
        .await
        .is_err(),
        "verify-ca accepted a wrong CA"
    );
    // `require` encrypts without verifying (as libpq's).
    build_on(&at("127.0.0.1", "postgres", "sslmode=require"))
        .await
        .expect("require");

    // A client certificate, for a database that asks for one.
    let create = std::process::Command::new("psql")
        .args(["-h", &pg.dir.path().display().to_string()])
        .args([
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-c", "create database mtls"])
        .output()
        .unwrap();
    assert!(create.status.success(), "{create:?}");
    let without = build_on(&at(
        "localhost",
        "mtls",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await;
    assert!(without.is_err(), "no client certificate, yet connected");
    let dir = pki.dir.path().display().to_string();
    build_on(&at(
        "localhost",
        "mtls",
        &format!(
            "sslmode=verify-full&sslrootcert={ca}&sslcert={dir}/client.pem&sslkey={dir}/client.key"
        ),
    ))
    .await
    .expect("with the client certificate");
}

/// The cache on `url` with the given TLS files.
fn cache(
    url: &str,
    ca: Option<&std::path::Path>,
    identity: Option<&std::path::Path>,
) -> cps::cache::RedisCache {
    let files = cps::tls::ClientFiles::check(
        ca.map(ToOwned::to_owned),
        identity.map(|d| d.join("client.pem")),
        identity.map(|d| d.join("client.key")),
        ["ca", "cert", "key"],
    )
    .unwrap();
    cps::cache::RedisCache::connect(url, "tls:", Duration::from_secs(2), &files.read().unwrap())
        .unwrap()
}

/// The service on the cache at `url` over TLS (verified with `ca`; the client certificate and
/// key in `identity`, if given): registers `card`, and returns the customer id it answered and
/// the app (the cache's hashes are the test's to read); `None` where PostgreSQL is missing.
async fn registered_through(
    url: &str,
    ca: &std::path::Path,
    identity: Option<&std::path::Path>,
    card: &str,
) -> Option<(String, TestApp)> {
    let db = TestDb::new(Backend::PostgresRedis).await?;
    let mut c = config(&db.url);
    c.cache = Some(CacheSettings {
        tls: client_files(
            Some(ca.to_owned()),
            identity.map(|d| (d.join("client.pem"), d.join("client.key"))),
        ),
        ..cache_at(url, "tls:")
    });
    let app = TestApp::start(c, Some(db), None).await;
    Some((app.registered(card).await, app))
}

#[tokio::test]
async fn redis_over_tls_is_verified_and_given_the_client_certificate() {
    let pki = pki();
    let Some(redis) = PrivateRedis::start_tls(&pki, true).await else {
        return;
    };
    let other = support::pki();
    let dir = pki.dir.path();
    let ca = dir.join("ca.pem");
    let url = redis.url();
    assert!(url.starts_with("rediss://localhost:"), "{url}");

    cache(&url, Some(&ca), Some(dir))
        .ping()
        .await
        .expect("the right CA and the client certificate");
    assert!(
        cache(&url, Some(&other.dir.path().join("ca.pem")), Some(dir))
            .ping()
            .await
            .is_err(),
        "a certificate the configured CA did not sign was accepted"
    );
    let by_address = format!("rediss://127.0.0.1:{}", redis.port);
    assert!(
        cache(&by_address, Some(&ca), Some(dir))
            .ping()
            .await
            .is_err(),
        "a host name the certificate lacks was accepted"
    );
    assert!(
        cache(&url, Some(&ca), None).ping().await.is_err(),
        "the server wants a client certificate, and none was given"
    );
    // `#insecure` skips verification (tests only), as redis-rs reads it.
    cache(&format!("{by_address}/#insecure"), None, Some(dir))
        .ping()
        .await
        .expect("#insecure");

    // The service end to end: a registration is written to the cache over TLS.
    let Some((customer, _app)) = registered_through(&url, &ca, Some(dir), "7002").await else {
        return;
    };
    let hash = cache(&url, Some(&ca), Some(dir))
        .read("card:7002")
        .await
        .expect("the card's hash over TLS");
    assert_eq!(hash.get("Guid"), Some(&customer), "{hash:?}");
}

/// Redis Cluster over TLS only: every node's certificate verified against the configured CA,
/// by the name the nodes announce (the slot map's), and a change's hashes written to the
/// primaries of their slots.
#[tokio::test]
async fn a_redis_cluster_over_tls_is_verified_on_every_node() {
    let pki = pki();
    let Some(cluster) = RedisCluster::own(Some(pki.dir.path())).await else {
        return;
    };
    let url = cluster.url();
    assert!(url.starts_with("rediss+cluster://localhost:"), "{url}");
    let dir = pki.dir.path();
    let ca = dir.join("ca.pem");
    cache(&url, Some(&ca), None)
        .ping()
        .await
        .expect("every primary over TLS with the right CA");
    let other = support::pki();
    assert!(
        cache(&url, Some(&other.dir.path().join("ca.pem")), None)
            .ping()
            .await
            .is_err(),
        "a certificate the configured CA did not sign was accepted"
    );

    let Some((customer, _app)) = registered_through(&url, &ca, None, "7003").await else {
        return;
    };
    let cache = cache(&url, Some(&ca), None);
    let hash = cache.read("card:7003").await.expect("the card's hash");
    assert_eq!(hash.get("Guid"), Some(&customer), "{hash:?}");
    let hash = cache
        .read(&format!("customer:{customer}"))
        .await
        .expect("the customer's hash");
    assert!(hash.contains_key("PhoneNumber"), "{hash:?}");
}

#[test]
fn tls_files_for_a_plain_redis_url_are_a_configuration_error() {
    let at = [
        "--database-url",
        "sqlite://x.db",
        "--redis-ca-file",
        "ca.pem",
    ];
    let plain = configured(&[&at[..], &["--redis-url", "redis://127.0.0.1:6379"]].concat());
    let problem = plain.unwrap_err();
    assert!(problem.contains("rediss://"), "{problem}");
    let tls = [
        "--redis-url",
        "rediss://127.0.0.1:6380",
        "--redis-client-cert",
        "client.pem",
    ];
    let problem = configured(&[&at[..], &tls].concat()).unwrap_err();
    assert!(problem.contains("--redis-client-key"), "{problem}");
}
