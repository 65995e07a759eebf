//! The Redis customer cache ALCS reads (contract section 6): layout, versions, convergence after
//! outages and crashes, rebuild and verify. Only on the backends with a cache.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cps::cache::{HashWrite, RedisCache, Written};
use reqwest::StatusCode;
use serde_json::json;

use super::support::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn cache_app() -> Option<TestApp> {
    if !backend().has_cache() {
        return None;
    }
    TestApp::spawn().await
}

/// An app whose cache is a Redis server of its own (default, empty prefix).
async fn app_with_private_redis() -> Option<(TestApp, PrivateRedis)> {
    if !backend().has_cache() {
        return None;
    }
    let redis = PrivateRedis::start().await?;
    let url = redis.url();
    let app = TestApp::spawn_with(|c| {
        c.cache = Some(cps::cache::CacheSettings {
            url,
            ..cache_settings("")
        });
    })
    .await?;
    Some((app, redis))
}

#[tokio::test]
async fn registration_writes_the_card_and_customer_hashes_field_by_field() {
    let Some(app) = cache_app().await else {
        return;
    };
    let id = app.registered(CARD).await;
    assert_eq!(
        app.cache_hash(&format!("card:{CARD}")).await,
        map(&[
            ("Status", "WaitingForActivation"),
            ("Guid", &id),
            ("Wallets.Initialized", "1"),
            ("Wallet.Strickers2016.Balance", "10.0"),
            ("Wallet.Strickers2016.Version", "abc"),
            ("Wallet.Strickers2016.Stat.Lost", "0.22"),
            ("Wallet.Strickers2016.Stat.TransferredOut", "132.0"),
            ("Wallet.Strickers2016.Stat.TransferredIn", "9.12"),
            ("Wallet.Strickers2016.Stat.Issued", "199.22"),
            ("Wallet.SomethingElse.Balance", "0.0"),
            ("Wallet.SomethingElse.Version", "xyz"),
            ("Wallet.SomethingElse.Stat.Lost", "0.0"),
            ("Wallet.SomethingElse.Stat.TransferredOut", "0.0"),
            ("CardPinHMac", PIN),
            ("Version", "1"),
        ])
    );
    assert_eq!(
        app.cache_hash(&format!("customer:{id}")).await,
        map(&[
            ("Status", "NotActivated"),
            ("Version", "1"),
            ("PhoneNumber", PHONE),
            ("Gender", "M"),
            (&format!("Card.{CARD}"), "WaitingForActivation"),
        ])
    );
    // Delivered writes leave the outbox: marked in batches off the request's path, so soon
    // after the answer rather than before it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while app.count("cache_writes").await != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "delivered writes leave the outbox"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn amounts_in_the_cache_are_exact_strings_and_absent_fields_stay_absent() {
    let Some(app) = cache_app().await else {
        return;
    };
    let body = raw_registration(
        CARD,
        r#"[{"Id": "A", "Balance": 132.00, "Stat": {"Issued": 1.50}}, {"Id": "B", "Balance": 7}]"#,
    );
    let reply = app
        .send_raw(
            reqwest::Method::PUT,
            &app.card_url(CARD),
            Some("application/json"),
            body,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let card = app.cache_hash(&format!("card:{CARD}")).await;
    assert_eq!(card["Wallet.A.Balance"], "132.00");
    assert_eq!(card["Wallet.A.Stat.Issued"], "1.50");
    assert_eq!(card["Wallet.B.Balance"], "7");
    for absent in [
        "Wallet.A.Version",
        "Wallet.A.Stat.Lost",
        "Wallet.B.Stat.Lost",
        "Wallet.B.Version",
    ] {
        assert!(!card.contains_key(absent), "{absent}");
    }
}

#[tokio::test]
async fn every_change_rewrites_the_hashes_with_a_higher_version() {
    let Some(app) = cache_app().await else {
        return;
    };
    let id = app.registered(CARD).await;
    let (card_key, customer_key) = (format!("card:{CARD}"), format!("customer:{id}"));
    let card_field = format!("Card.{CARD}");

    app.activate(CARD, PHONE).await.assert_no_content();
    let (card, customer) = (
        app.cache_hash(&card_key).await,
        app.cache_hash(&customer_key).await,
    );
    assert_eq!(
        (card["Status"].as_str(), card["Version"].as_str()),
        ("Active", "2")
    );
    assert_eq!(customer["Status"], "Active");
    assert_eq!(customer[&card_field], "Active");
    assert_eq!(customer["Version"], "2");

    app.change_phone(CARD, OTHER_PHONE)
        .await
        .assert_no_content();
    let (card, customer) = (
        app.cache_hash(&card_key).await,
        app.cache_hash(&customer_key).await,
    );
    assert_eq!(card["Version"], "2", "the card hash did not change");
    assert_eq!(customer["PhoneNumber"], OTHER_PHONE);
    assert_eq!(customer["Version"], "3");

    app.lock(CARD).await.assert_no_content();
    let (card, customer) = (
        app.cache_hash(&card_key).await,
        app.cache_hash(&customer_key).await,
    );
    assert_eq!(
        (card["Status"].as_str(), card["Version"].as_str()),
        ("Locked", "3")
    );
    assert_eq!(customer[&card_field], "Locked");
    assert_eq!(customer["Version"], "4");

    // No-ops write nothing new.
    app.lock(CARD).await.assert_no_content();
    assert_eq!(app.cache_hash(&card_key).await["Version"], "3");
}

#[tokio::test]
async fn an_older_write_never_replaces_a_newer_one_and_a_write_replaces_the_whole_hash() {
    let Some(app) = cache_app().await else {
        return;
    };
    let (url, prefix) = app.redis.clone().unwrap();
    let cache =
        RedisCache::connect(&url, &prefix, Duration::from_secs(2), &Default::default()).unwrap();
    let write = |version: i64, fields: &[(&str, &str)]| HashWrite {
        key: "card:1".into(),
        version,
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        member: None,
    };
    assert!(
        cache
            .write(
                &write(5, &[("Status", "Active"), ("Wallet.A.Balance", "1")]),
                false
            )
            .await
            .unwrap()
            == Written::Written
    );
    assert!(
        cache
            .write(&write(4, &[("Status", "Locked")]), false)
            .await
            .unwrap()
            != Written::Written
    );
    assert!(
        cache
            .write(&write(5, &[("Status", "Locked")]), false)
            .await
            .unwrap()
            != Written::Written
    );
    assert_eq!(
        app.cache_hash("card:1").await,
        map(&[
            ("Status", "Active"),
            ("Wallet.A.Balance", "1"),
            ("Version", "5")
        ])
    );
    assert!(
        cache
            .write(&write(6, &[("Status", "Locked")]), false)
            .await
            .unwrap()
            == Written::Written
    );
    assert_eq!(
        app.cache_hash("card:1").await,
        map(&[("Status", "Locked"), ("Version", "6")]),
        "the removed wallet does not linger"
    );
    assert!(
        cache
            .write(&write(2, &[("Status", "Active")]), true)
            .await
            .unwrap()
            == Written::Written,
        "force"
    );
    assert_eq!(app.cache_hash("card:1").await["Version"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_concurrent_phone_changes_end_with_the_cache_equal_to_the_database() {
    let Some(app) = cache_app().await else {
        return;
    };
    let id = app.registered(CARD).await;
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move { app.change_phone(CARD, &format!("+4860212{i:04}")).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().assert_no_content();
    }
    let stored = app.get(CARD).await.json()["Customer"]["PhoneNumber"].clone();
    let cached = app.cache_hash(&format!("customer:{id}")).await;
    assert_eq!(json!(cached["PhoneNumber"]), stored);
    assert_eq!(cached["Version"], "41");
    let out = app.cps(&["cache", "verify"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn with_redis_stopped_requests_succeed_and_the_cache_converges_after_it_returns() {
    let Some((app, mut redis)) = app_with_private_redis().await else {
        return;
    };
    let id = app.registered(CARD).await;
    assert_eq!(
        app.cache_hash(&format!("card:{CARD}")).await["Version"],
        "1"
    );
    redis.stop();
    // Every operation still answers as usual: the database is the system of record.
    app.registered("2").await;
    app.activate(CARD, PHONE).await.assert_no_content();
    app.change_phone("2", OTHER_PHONE).await.assert_no_content();
    app.lock("2").await.assert_no_content();
    assert!(
        app.count("cache_writes").await > 0,
        "the pending writes wait in the database"
    );
    redis.restart().await;
    app.cache_converges(Duration::from_secs(20))
        .await
        .expect("the cache converges after Redis returns");
    assert_eq!(
        app.cache_hash(&format!("customer:{id}")).await["Status"],
        "Active"
    );
    assert_eq!(app.cache_hash("card:2").await["Status"], "Locked");
    assert_eq!(app.count("cache_writes").await, 0);
}

#[tokio::test]
async fn flushall_then_rebuild_restores_identical_hashes() {
    let Some((app, _redis)) = app_with_private_redis().await else {
        return;
    };
    for card in ["1", "02", "003", "4"] {
        app.registered(card).await;
    }
    app.activate("1", PHONE).await.assert_no_content();
    app.change_phone("02", OTHER_PHONE)
        .await
        .assert_no_content();
    app.lock("003").await.assert_no_content();
    let before = app.cache_snapshot().await;
    // Four cards, four customers, and the PIN index key the four cards share (one PIN HMAC).
    assert_eq!(before.len(), 9);
    assert!(before.keys().all(|k| k.starts_with("card:")
        || k.starts_with("customer:")
        || k == &format!("hmac:Password:{PIN}")));

    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut app.redis_conn().await)
        .await
        .unwrap();
    let verify = app.cps(&["cache", "verify"]).await;
    assert_eq!(verify.status.code(), Some(1), "drift after FLUSHALL");
    let text = String::from_utf8_lossy(&verify.stdout);
    // Each card's hash, its customer's, and its PIN index entry.
    assert_eq!(text.matches("missing: ").count(), 12, "{text}");
    assert!(!text.contains(PIN), "the PIN HMAC is not shown: {text}");

    let rebuild = app.cps(&["cache", "rebuild", "--batch-size", "3"]).await;
    assert!(
        rebuild.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuild.stderr)
    );
    assert!(
        String::from_utf8_lossy(&rebuild.stdout).contains("4 cards, 12 hashes written"),
        "{}",
        String::from_utf8_lossy(&rebuild.stdout)
    );
    assert_eq!(app.cache_snapshot().await, before);
    assert!(app.cps(&["cache", "verify"]).await.status.success());
}

#[tokio::test]
async fn verify_reports_every_difference_by_name_without_values() {
    let Some(app) = cache_app().await else {
        return;
    };
    let id = app.registered(CARD).await;
    app.registered("5").await;
    let (_, prefix) = app.redis.clone().unwrap();
    let mut conn = app.redis_conn().await;
    let customer = format!("{prefix}customer:{id}");
    let _: () = redis::pipe()
        .hset(&customer, "PhoneNumber", "+48111222333")
        .hset(&customer, "Colour", "red")
        .hdel(format!("{prefix}card:{CARD}"), "Guid")
        .del(format!("{prefix}card:5"))
        .hset(format!("{prefix}card:999"), "Status", "Active")
        .query_async(&mut conn)
        .await
        .unwrap();
    let out = app.cps(&["cache", "verify"]).await;
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        format!("different value: customer:{id} PhoneNumber"),
        format!("extra field: customer:{id} Colour"),
        format!("missing field: card:{CARD} Guid"),
        "missing: card:5".to_owned(),
        "not in the database: card:999".to_owned(),
    ] {
        assert!(text.contains(&line), "{line:?} not in:\n{text}");
    }
    assert!(text.contains("5 differences"), "{text}");
    for secret in ["111222333", "602123789", PIN] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
    // A rebuild puts right what is missing; --force also what is wrong at the same version.
    assert!(
        app.cps(&["cache", "rebuild", "--force"])
            .await
            .status
            .success()
    );
    let out = app.cps(&["cache", "verify"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines()
            .filter(|l| !l.starts_with("cache verified"))
            .collect::<Vec<_>>(),
        ["not in the database: card:999"],
        "{text}"
    );
}

#[tokio::test]
async fn verify_counts_keys_when_they_match_and_looks_each_up_when_they_do_not() {
    let Some(app) = cache_app().await else {
        return;
    };
    let id = app.registered(CARD).await;
    app.registered("5").await;
    let out = app.cps(&["cache", "verify"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("card and customer keys counted"), "{text}");
    // A stray customer key, nothing missing: the count differs, and the look-up names it.
    let (_, prefix) = app.redis.clone().unwrap();
    let mut conn = app.redis_conn().await;
    let stray = "0123456789abcdef0123456789abcdef";
    let stray_key = format!("{prefix}customer:{stray}");
    let _: () = redis::pipe()
        .hset(&stray_key, "Status", "Active")
        .query_async(&mut conn)
        .await
        .unwrap();
    let out = app.cps(&["cache", "verify"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("not in the database: customer:{stray}")),
        "{text}"
    );
    assert!(!text.contains(&format!("customer:{id}")), "{text}");
    assert!(text.contains("every key looked up"), "{text}");
    // A stray PIN index member with the counts equal: found by the PIN index's look-up (both
    // cards share the one PIN index key).
    let _: () = redis::pipe()
        .del(&stray_key)
        .hset(format!("{prefix}hmac:Password:{PIN}"), "77", "1")
        .query_async(&mut conn)
        .await
        .unwrap();
    let out = app.cps(&["cache", "verify"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("card and customer keys counted"), "{text}");
    assert!(text.contains("1 differences"), "{text}");
}

#[tokio::test]
async fn a_cache_write_cut_off_by_a_crash_is_delivered_after_restart() {
    if !backend().has_cache() {
        return;
    }
    let Some((db, _prefix)) = TestApp::resources(backend()).await else {
        return;
    };
    let Some(mut redis) = PrivateRedis::start().await else {
        return;
    };
    let redis_url = redis.url();
    let env = [
        ("CPS_DATABASE_URL", db.url.as_str()),
        ("CPS_REDIS_URL", redis_url.as_str()),
        ("CPS_OUTBOX_POLL_MS", "100"),
    ];
    let (mut first, _logs, addr) = start(&env);
    let app = TestApp::at(&format!("http://{addr}"));
    let id = app.registered(CARD).await;
    redis.stop();
    app.change_phone(CARD, OTHER_PHONE)
        .await
        .assert_no_content();
    // The process dies (SIGKILL) after commit, before the write reached Redis.
    first.stop();
    redis.restart().await;
    assert_eq!(
        redis_phone(&redis, &id).await.as_deref(),
        Some(PHONE),
        "Redis still has the old number"
    );
    let (_second, _logs, addr) = start(&env);
    let mut app = TestApp::at(&format!("http://{addr}"));
    app.database_url = db.url.clone();
    app.redis = Some((redis_url.clone(), String::new()));
    app.cache_converges(Duration::from_secs(20))
        .await
        .expect("the restarted service delivers the pending write");
    assert_eq!(redis_phone(&redis, &id).await.as_deref(), Some(OTHER_PHONE));
}

async fn redis_phone(redis: &PrivateRedis, id: &str) -> Option<String> {
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("HGET")
        .arg(format!("customer:{id}"))
        .arg("PhoneNumber")
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn without_a_cache_nothing_waits_in_the_outbox() {
    if backend().has_cache() {
        return;
    }
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    assert_eq!(app.count("cache_writes").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_while_the_service_writes_leaves_no_stale_hash() {
    let Some(app) = cache_app().await else {
        return;
    };
    let cards: Vec<String> = (0..20).map(|i| format!("6{i:03}")).collect();
    for card in &cards {
        app.registered(card).await;
    }
    let app = Arc::new(app);
    let writer = {
        let (app, cards) = (app.clone(), cards.clone());
        tokio::spawn(async move {
            for round in 0..5 {
                for card in &cards {
                    let phone = format!("+4860212{round}{:03}", &card[1..]);
                    app.change_phone(card, &phone).await.assert_no_content();
                }
            }
        })
    };
    let rebuilder = {
        let app = app.clone();
        tokio::spawn(async move {
            for _ in 0..3 {
                let out = app.cps(&["cache", "rebuild", "--batch-size", "7"]).await;
                if !out.status.success() {
                    return false;
                }
            }
            true
        })
    };
    writer.await.unwrap();
    assert!(rebuilder.await.unwrap(), "every rebuild succeeded");
    app.cache_converges(Duration::from_secs(10))
        .await
        .expect("no rebuild put an older state over a newer one");
}

#[tokio::test]
async fn rebuild_shows_progress_on_a_terminal_and_not_in_a_pipe() {
    let Some(app) = cache_app().await else {
        return;
    };
    for card in ["1", "2", "3"] {
        app.registered(card).await;
    }
    let piped = app.cps(&["cache", "rebuild", "--batch-size", "2"]).await;
    assert!(!String::from_utf8_lossy(&piped.stderr).contains("rebuilding the cache"));
    // `script` (util-linux, always on Debian) runs the command on a pseudo-terminal.
    let (url, prefix) = app.redis.clone().unwrap();
    let out = tokio::process::Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "{} cache rebuild --batch-size 2",
            env!("CARGO_BIN_EXE_cps")
        ))
        .arg("/dev/null")
        .env("CPS_DATABASE_URL", &app.database_url)
        .env("CPS_REDIS_URL", url)
        .env("CPS_REDIS_PREFIX", prefix)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("rebuilding the cache: 2/3 cards"), "{text:?}");
    assert!(text.contains("rebuilding the cache: 3/3 cards"), "{text:?}");
}

#[tokio::test]
async fn a_redis_that_lost_its_scripts_still_gets_every_write_before_the_answer() {
    // A private Redis: flushing the shared one's scripts would only slow other tests down.
    let Some((app, redis)) = app_with_private_redis().await else {
        return;
    };
    let id = app.registered(CARD).await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut app.redis_conn().await)
        .await
        .unwrap();
    app.activate(CARD, PHONE).await.assert_no_content();
    // Both hashes were written in the request, the script loaded again on the way.
    assert_eq!(
        app.cache_hash(&format!("card:{CARD}")).await.get("Status"),
        Some(&"Active".to_owned())
    );
    assert_eq!(
        app.cache_hash(&format!("customer:{id}"))
            .await
            .get("Status"),
        Some(&"Active".to_owned())
    );
    drop(redis);
}

/// The original deployment's PIN index, `hmac:Password:{CardPinHMac}` → field `{card-number}` =
/// `{CustomerId}`: written on registration, the replaced card's field removed and the new
/// card's added on replacement, every field of the customer's removed on erasure; rebuilt and
/// verified like the other hashes, and never brought back by a stale write.
#[tokio::test]
async fn the_pin_index_follows_registration_replacement_and_erasure() {
    if !backend().has_cache() {
        return;
    }
    let Some((app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    let index = |pin: &str| format!("hmac:Password:{pin}");
    let customer = app.registered(CARD).await;
    let old = app.cache_hash(&index(PIN)).await;
    assert_eq!(old.get(CARD), Some(&customer), "{old:?}");
    app.cache_converges(Duration::from_secs(5)).await.unwrap();

    // A second card with the same PIN HMAC shares the key: each card is its own field.
    let other = "99419283746391";
    let other_customer = app.registered(other).await;
    let shared = app.cache_hash(&index(PIN)).await;
    assert_eq!(shared.get(CARD), Some(&customer));
    assert_eq!(shared.get(other), Some(&other_customer));

    let new_card = "99419283746392";
    let new_pin = "bmV3LXBpbi1obWFj";
    let reply = desk.replace(CARD, new_card, new_pin).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let old = app.cache_hash(&index(PIN)).await;
    assert!(!old.contains_key(CARD), "the replaced card left: {old:?}");
    assert_eq!(old.get(other), Some(&other_customer), "others stay");
    let new = app.cache_hash(&index(new_pin)).await;
    assert_eq!(new.get(new_card), Some(&customer), "{new:?}");
    app.cache_converges(Duration::from_secs(5)).await.unwrap();

    // A stale write (the registration's entry, at the card's first version) does not bring
    // the replaced card back.
    let (url, prefix) = app.redis.clone().unwrap();
    let cache =
        RedisCache::connect(&url, &prefix, Duration::from_secs(2), &Default::default()).unwrap();
    let stale = HashWrite {
        key: index(PIN),
        version: 1,
        fields: vec![(CARD.to_owned(), customer.clone())],
        member: Some(CARD.to_owned()),
    };
    assert_eq!(cache.write(&stale, false).await.unwrap(), Written::Newer);
    assert!(!app.cache_hash(&index(PIN)).await.contains_key(CARD));

    // Emptied and rebuilt: the index comes back as it was.
    let before = app.cache_snapshot().await;
    assert!(before.keys().any(|k| k.contains("hmac:Password:")));
    let mut conn = app.redis_conn().await;
    for key in before.keys() {
        let _: () = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let verify = app.cps(&["cache", "verify"]).await;
    assert_eq!(verify.status.code(), Some(1), "drift after emptying");
    let shown = String::from_utf8_lossy(&verify.stdout);
    assert!(!shown.contains(PIN) && !shown.contains(new_pin), "{shown}");
    let rebuild = app.cps(&["cache", "rebuild"]).await;
    assert!(rebuild.status.success(), "{rebuild:?}");
    assert_eq!(app.cache_snapshot().await, before);
    // A stray card in the index is drift.
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}{}", index(new_pin)))
        .arg("5555")
        .arg(&customer)
        .query_async(&mut conn)
        .await
        .unwrap();
    let verify = app.cps(&["cache", "verify"]).await;
    assert_eq!(verify.status.code(), Some(1));
    let _: () = redis::cmd("HDEL")
        .arg(format!("{prefix}{}", index(new_pin)))
        .arg("5555")
        .query_async(&mut conn)
        .await
        .unwrap();

    desk.erase(&customer).await.assert_no_content();
    assert!(!app.cache_hash(&index(new_pin)).await.contains_key(new_card));
    assert_eq!(
        app.cache_hash(&index(PIN)).await.get(other),
        Some(&other_customer),
        "another customer's card stays"
    );
    app.cache_converges(Duration::from_secs(5)).await.unwrap();
}

/// A refill (and `cps cache rebuild`/`verify`) reads the cards most recently changed first, so
/// that the cards the tills are about to ask for come back first; ties go by card number.
#[tokio::test]
async fn bulk_reads_come_most_recently_changed_first_in_short_batches() {
    let Some(app) = cache_app().await else {
        return;
    };
    for card in ["11", "12", "13", "14", "15"] {
        app.registered(card).await;
    }
    let now = chrono::Utc::now();
    let ago = |days: i64| {
        (now - chrono::Duration::days(days))
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string()
    };
    let (recent, older, oldest) = (ago(1), ago(40), ago(400));
    app.raw_sql(&[
        &format!("update cards set updated_at = '{older}' where card_number in ('11', '13')"),
        &format!("update cards set updated_at = '{recent}' where card_number = '14'"),
        &format!("update cards set updated_at = '{oldest}' where card_number = '15'"),
    ])
    .await;
    let (store, _) = cps::startup::open(&config(&app.database_url))
        .await
        .unwrap();
    let source: &dyn cps::cache::CacheSource = store.as_ref();
    let (mut order, mut batches, mut after) = (Vec::new(), 0, None);
    loop {
        let batch = source.records(after.as_ref(), 2).await.unwrap();
        let Some(last) = batch.last else {
            assert!(batch.records.is_empty());
            break;
        };
        assert!(batch.records.len() <= 2);
        batches += 1;
        order.extend(batch.records.iter().map(|r| r.card.number.to_string()));
        after = Some(last);
    }
    // 12 was registered last of those left at their registration time (now), so it is the
    // most recent; 14 a day ago; 13 and 11 forty days ago (by number, descending); 15 last.
    assert_eq!(order, ["12", "14", "13", "11", "15"]);
    assert_eq!(batches, 3);
}

/// On a cluster, a change's hashes live in different slots, on different primaries: each is
/// written where its slot is served, and verify and rebuild see every primary's keys.
#[tokio::test]
async fn on_a_cluster_the_hashes_spread_over_every_primary_and_verify_sees_them_all() {
    if backend() != Backend::PostgresRedisCluster {
        return;
    }
    let Some(app) = cache_app().await else {
        return;
    };
    for i in 0..30 {
        app.registered(&format!("8800{i:02}")).await;
    }
    let (_, prefix) = app.redis.clone().unwrap();
    let RedisConn::Cluster(mut conn) = app.redis_conn().await else {
        panic!("a cluster connection");
    };
    let pattern = format!("{prefix}*");
    let per_primary = conn
        .route_command(
            redis::cmd("KEYS").arg(&pattern).clone(),
            redis::cluster_routing::RoutingInfo::MultiNode((
                redis::cluster_routing::MultipleNodeRoutingInfo::AllMasters,
                None,
            )),
        )
        .await
        .unwrap();
    let redis::Value::Map(per_primary) = per_primary else {
        panic!("an answer per primary: {per_primary:?}");
    };
    assert_eq!(per_primary.len(), 3, "three primaries");
    for (node, keys) in &per_primary {
        let redis::Value::Array(keys) = keys else {
            panic!("keys of {node:?}: {keys:?}");
        };
        assert!(!keys.is_empty(), "no key on {node:?}");
    }
    assert_eq!(app.cache_snapshot().await.len(), 30 + 30 + 1);
    let verify = app.cps(&["cache", "verify"]).await;
    assert!(verify.status.success(), "{verify:?}");
    // A key on any primary, deleted, is missed; a stray one found; a rebuild puts it right.
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}card:880017"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}card:990000"))
        .arg("Status")
        .arg("Active")
        .query_async(&mut conn)
        .await
        .unwrap();
    let verify = app.cps(&["cache", "verify"]).await;
    let text = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(1), "{text}");
    assert!(text.contains("missing: card:880017"), "{text}");
    assert!(text.contains("not in the database: card:990000"), "{text}");
    let rebuild = app.cps(&["cache", "rebuild"]).await;
    assert!(rebuild.status.success(), "{rebuild:?}");
    let verify = app.cps(&["cache", "verify"]).await;
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(text.contains("not in the database: card:990000"), "{text}");
    assert!(!text.contains("missing"), "{text}");
}

/// A slot being moved between primaries (as `redis-cli --cluster reshard` does it): the old
/// owner answers `ASK` for a key it no longer holds, and the write goes to the new one after
/// `ASKING`; once the move is done, `MOVED` sends the read there and the slot map is read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_slot_being_moved_is_followed_by_ask_then_moved() {
    if backend() != Backend::PostgresRedisCluster {
        return;
    }
    let Some(cluster) = RedisCluster::own(None).await else {
        return;
    };
    let prefix = "ask:";
    let key = "card:4242";
    let slot: u16 = cluster
        .cli(
            cluster.replicas()[0],
            &["CLUSTER", "KEYSLOT", &format!("{prefix}{key}")],
        )
        .trim()
        .parse()
        .unwrap();
    let primaries = cluster.primaries();
    let source = primaries
        .iter()
        .find(|p| p.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
        .cloned()
        .expect("the slot's primary");
    let target = primaries
        .iter()
        .find(|p| p.id != source.id)
        .cloned()
        .expect("another primary");
    let cache = RedisCache::connect(
        &cluster.url(),
        prefix,
        Duration::from_secs(2),
        &Default::default(),
    )
    .unwrap();
    let write = |version: i64| HashWrite {
        key: key.into(),
        version,
        fields: vec![("Status".into(), "Active".into())],
        member: None,
    };
    // The slot map is read while the source still owns the slot.
    cache.ping().await.unwrap();

    let slot = slot.to_string();
    let set_slot = |port: u16, how: &str, node: &str| {
        let answer = cluster.cli(port, &["CLUSTER", "SETSLOT", &slot, how, node]);
        assert!(answer.starts_with("OK"), "SETSLOT {how}: {answer}");
    };
    set_slot(target.port, "IMPORTING", &source.id);
    set_slot(source.port, "MIGRATING", &target.id);
    // The key is not on the source: it answers ASK, and the write lands on the target.
    assert_eq!(
        cache.write(&write(1), false).await.unwrap(),
        Written::Written
    );
    let keys_in_slot = |port: u16| {
        cluster
            .cli(port, &["CLUSTER", "COUNTKEYSINSLOT", &slot])
            .trim()
            .to_owned()
    };
    assert_eq!(
        (keys_in_slot(source.port), keys_in_slot(target.port)),
        ("0".to_owned(), "1".to_owned()),
        "the write went to the importing primary"
    );
    assert_eq!(
        cache.read(key).await.unwrap()["Version"],
        "1",
        "read through ASK"
    );

    // The move done: every primary names the target; the source answers MOVED.
    for primary in &primaries {
        set_slot(primary.port, "NODE", &target.id);
    }
    assert_eq!(
        cache.write(&write(2), false).await.unwrap(),
        Written::Written
    );
    assert_eq!(
        cache.read(key).await.unwrap()["Version"],
        "2",
        "read through MOVED"
    );
}
