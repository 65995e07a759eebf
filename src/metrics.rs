//! Prometheus metrics. Code records through the `metrics` facade (a no-op until a policy is
//! installed); the admin listener installs the Prometheus policy and renders it at `/metrics`.
//!
//! No label ever carries a card number, phone number or customer id: labels are route
//! templates, methods, statuses, `MessageCode`s, operation and effect kinds, and outcomes.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds: a till waits a few milliseconds; 5 s is already an outage.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The series the service records, named once.
pub mod names {
    pub const HTTP_REQUESTS: &str = "cps_http_requests_total";
    pub const HTTP_DURATION: &str = "cps_http_request_duration_seconds";
    pub const HTTP_ERRORS: &str = "cps_http_error_responses_total";
    pub const DB_TRANSACTION: &str = "cps_db_transaction_duration_seconds";
    pub const DB_CONNECTIONS: &str = "cps_db_pool_connections";
    pub const CACHE_WRITE: &str = "cps_cache_write_duration_seconds";
    pub const CACHE_WRITE_FAILURES: &str = "cps_cache_write_failures_total";
    pub const OUTBOX_EVENTS: &str = "cps_outbox_events";
    pub const OUTBOX_OLDEST: &str = "cps_outbox_oldest_event_age_seconds";
    pub const OUTBOX_DELIVERIES: &str = "cps_outbox_deliveries_total";
    pub const ALCS_CALL: &str = "cps_alcs_call_duration_seconds";
    pub const ALCS_CALLS: &str = "cps_alcs_calls_total";
    pub const BREAKER_OPEN: &str = "cps_breaker_open";
    pub const REFILL_RUNNING: &str = "cps_cache_refill_running";
    pub const REFILL_CARDS: &str = "cps_cache_refill_cards";
    pub const PRUNED_ROWS: &str = "cps_pruned_rows_total";
    pub const SQLITE_COMMITS: &str = "cps_sqlite_commits_total";
    pub const SQLITE_COMMITTED_UNITS: &str = "cps_sqlite_committed_units_total";
    pub const UPTIME: &str = "cps_uptime_seconds";
    pub const BUILD_INFO: &str = "cps_build_info";
}

/// The `# HELP` line of each series.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        names::HTTP_REQUESTS,
        "Requests answered, by method, route template and status."
    );
    describe_histogram!(
        names::HTTP_DURATION,
        Unit::Seconds,
        "Time from a request's arrival to its answer, by method and route template."
    );
    describe_counter!(names::HTTP_ERRORS, "Error answers, by MessageCode.");
    describe_histogram!(
        names::DB_TRANSACTION,
        Unit::Seconds,
        "Time an operation's database work took (its one retry included), by operation."
    );
    describe_counter!(
        names::SQLITE_COMMITS,
        "SQLite write transactions committed (group commit: one fsync each)."
    );
    describe_counter!(
        names::SQLITE_COMMITTED_UNITS,
        "Writes those commits held: over the commits, how many writes share an fsync."
    );
    describe_gauge!(
        names::DB_CONNECTIONS,
        "PostgreSQL pool connections: open, and of those idle."
    );
    describe_histogram!(
        names::CACHE_WRITE,
        Unit::Seconds,
        "Time one Redis cache write (a change's hashes, one round trip) took."
    );
    describe_counter!(
        names::CACHE_WRITE_FAILURES,
        "Redis cache writes that failed (left to the outbox worker)."
    );
    describe_gauge!(
        names::OUTBOX_EVENTS,
        "Outbox events, by kind and state (pending, failed, dead, unsent, delivered)."
    );
    describe_gauge!(
        names::OUTBOX_OLDEST,
        Unit::Seconds,
        "Age of the oldest outbox event, by kind and state."
    );
    describe_counter!(
        names::OUTBOX_DELIVERIES,
        "Outbox delivery attempts, by kind and outcome (delivered, failed, retry, dead)."
    );
    describe_histogram!(
        names::ALCS_CALL,
        Unit::Seconds,
        "Time one activation notice call to ALCS took, by outcome."
    );
    describe_counter!(
        names::ALCS_CALLS,
        "Activation notice calls to ALCS, by outcome (delivered, refused, failed)."
    );
    describe_gauge!(
        names::BREAKER_OPEN,
        "1 while the circuit breaker in front of a dependency (database, redis) is open: calls fail fast."
    );
    describe_gauge!(
        names::REFILL_RUNNING,
        "1 while this instance refills an emptied cache."
    );
    describe_gauge!(
        names::REFILL_CARDS,
        "Cards of the running (or last) cache refill: done, and total when it started."
    );
    describe_counter!(
        names::PRUNED_ROWS,
        "Rows the pruning job deleted, by table."
    );
    describe_gauge!(
        names::UPTIME,
        Unit::Seconds,
        "Time since the process started recording metrics."
    );
    describe_gauge!(
        names::BUILD_INFO,
        "Always 1; the version label says which build runs."
    );
}

/// The standard `process_*` series (CPU seconds, resident and virtual memory, open and maximum
/// file descriptors, threads, start time), read from `/proc` as Prometheus's client libraries
/// name them.
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// Sets the process's own gauges: uptime, build, and the `process_*` series.
pub fn record_process() {
    static STARTED: OnceLock<std::time::Instant> = OnceLock::new();
    let started = STARTED.get_or_init(std::time::Instant::now);
    metrics::gauge!(names::UPTIME).set(started.elapsed().as_secs_f64());
    metrics::gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    process_collector().collect();
}

/// The process's Prometheus policy, installed on first call. There is one per process: the
/// `metrics` facade has one global policy (tests that start several apps in one process share
/// it, and their counters add up).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => {
                    describe();
                    process_collector().describe();
                    record_process();
                    // Histograms keep their samples until upkeep folds them into buckets: do
                    // it even when nobody scrapes, so memory stays bounded.
                    let upkeep = handle.clone();
                    std::thread::spawn(move || {
                        loop {
                            std::thread::sleep(Duration::from_secs(5));
                            upkeep.run_upkeep();
                        }
                    });
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics are not recorded: the policy could not be installed");
                    None
                }
            }
        })
        .as_ref()
}
