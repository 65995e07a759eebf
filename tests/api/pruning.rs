//! The pruning job: what outlived its retention goes, in batches; nothing younger than its
//! bound, and no pending, failed, dead or unsent outbox row, ever does.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::support::*;

fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[tokio::test]
async fn the_pruning_job_removes_only_what_outlived_its_retention() {
    let Some(app) = TestApp::spawn_with(|c| {
        c.housekeeping.interval = Some(std::time::Duration::from_secs(1));
        c.housekeeping.delivered = std::time::Duration::from_secs(90 * 86_400);
        c.housekeeping.audit = std::time::Duration::from_secs(2192 * 86_400);
        c.housekeeping.activation_window = std::time::Duration::from_secs(900);
    })
    .await
    else {
        return;
    };
    let now = Utc::now();
    let days = |n: i64| at(now - chrono::Duration::days(n));
    let secs = |n: i64| at(now - chrono::Duration::seconds(n));
    let outbox = |subject: &str, status: &str, delivered: Option<String>| {
        let delivered = delivered.map_or("null".to_owned(), |d| format!("'{d}'"));
        let old = days(3000);
        format!(
            "insert into outbox (kind, subject, payload, status, attempts, next_attempt_at,
                                 created_at, delivered_at)
             values ('alcs_activation', '{subject}', '{{}}', '{status}', 1, '{old}', '{old}',
                     {delivered})"
        )
    };
    let audit = |card: &str, when: String| {
        format!(
            "insert into audit_log (occurred_at, operation, card_number, customer_id)
             values ('{when}', 'register', '{card}', '0123456789abcdef0123456789abcdef')"
        )
    };
    let statements = [
        outbox("card:91", "delivered", Some(days(91))),
        outbox("card:92", "delivered", Some(days(89))),
        outbox("card:93", "pending", None),
        outbox("card:94", "dead", None),
        outbox("card:95", "unsent", None),
        audit("81", days(2193)),
        audit("82", days(2191)),
        format!(
            "insert into activation_failures (card_number, failed_at) values ('71', '{}')",
            secs(901)
        ),
        format!(
            "insert into activation_failures (card_number, failed_at) values ('72', '{}')",
            secs(600)
        ),
        format!(
            "insert into leases (name, holder, expires_at) values ('old', 'x', '{}')",
            secs(7200)
        ),
        format!(
            "insert into leases (name, holder, expires_at) values ('live', 'x', '{}')",
            at(now + chrono::Duration::seconds(600))
        ),
    ];
    let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
    app.raw_sql(&refs).await;

    let left = async |query: &str| app.raw_sql(&[query]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    // Until the pass has gone over every table it prunes here (it takes them one after the
    // other: the last, the leases, may still be waiting when the first are done).
    loop {
        let gone = left("select subject from outbox where subject = 'card:91'").await;
        let audit = left("select card_number from audit_log where card_number = '81'").await;
        let failure =
            left("select card_number from activation_failures where card_number = '71'").await;
        let lease = left("select name from leases where name = 'old'").await;
        if gone.is_empty() && audit.is_empty() && failure.is_empty() && lease.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not pruned: {gone:?} {audit:?} {failure:?} {lease:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut subjects = left("select subject from outbox order by subject").await;
    subjects.retain(|s| s.starts_with("card:9"));
    assert_eq!(subjects, ["card:92", "card:93", "card:94", "card:95"]);
    assert_eq!(
        left("select card_number from audit_log where card_number in ('81', '82')").await,
        ["82"]
    );
    assert_eq!(
        left("select card_number from activation_failures").await,
        ["72"]
    );
    assert_eq!(
        left("select name from leases where name in ('old', 'live')").await,
        ["live"]
    );
}

/// A backlog goes a batch at a time, until less than a batch is left; the rows inside their
/// retention stay.
#[tokio::test]
async fn a_backlog_is_pruned_in_batches() {
    let Some(app) = TestApp::spawn_with(|c| c.housekeeping.interval = None).await else {
        return;
    };
    let now = Utc::now();
    let mut statements: Vec<String> = (0..25)
        .map(|i| {
            format!(
                "insert into audit_log (occurred_at, operation, card_number, customer_id)
                 values ('{}', 'register', '6{i}', '0123456789abcdef0123456789abcdef')",
                at(now - chrono::Duration::days(3000 + i))
            )
        })
        .collect();
    statements.push(format!(
        "insert into audit_log (occurred_at, operation, card_number, customer_id)
         values ('{}', 'register', '5', '0123456789abcdef0123456789abcdef')",
        at(now - chrono::Duration::days(10))
    ));
    let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
    app.raw_sql(&refs).await;
    let config = cps::service::housekeeping::HousekeepingConfig {
        batch: 10,
        ..Default::default()
    };
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let store = app.store().await.clone();
    let pruned = cps::service::housekeeping::pass(store.as_ref(), &config, now, &stop)
        .await
        .unwrap();
    let audit = pruned
        .iter()
        .find(|(what, _)| *what == cps::store::Prunable::Audit)
        .unwrap();
    assert_eq!(audit.1, 25);
    assert_eq!(
        app.raw_sql(&["select card_number from audit_log"]).await,
        ["5"]
    );
}
