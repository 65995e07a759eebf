//! Rebuilding the cache from the database and comparing the two.
//!
//! Both read the cards a batch at a time, most recently changed first (each batch a short read
//! of its own, the next one read while this one goes to Redis), so memory stays flat however many
//! cards there are. Verify then walks Redis's keys with SCAN, a page at a time, and asks the
//! database about each page: a key no card accounts for is found without holding the set of
//! expected keys.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::CacheSource;
use super::{CacheError, RedisCache, Written};
use crate::cache::HashWrite;
use crate::cache::projection::{PIN_INDEX, shown_key};
use crate::store::{Batch, Known, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The caller stopped it (shutdown, a lost lease).
    #[error("stopped: {0}")]
    Stopped(&'static str),
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RebuildReport {
    pub cards: u64,
    /// Hashes (re)written: missing, older, or different at the same version.
    pub written: u64,
    /// Hashes Redis already held exactly (same version, same contents).
    pub current: u64,
    /// Hashes Redis held at a newer version (a concurrent request wrote it), left alone.
    pub newer: u64,
    /// Whether the cache was marked complete at the end (see [`RedisCache::finish_refill`]).
    pub marked: bool,
}

/// One difference between database and cache. Carries key and field names, never values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Drift {
    MissingKey { key: String },
    ExtraKey { key: String },
    MissingField { key: String, field: String },
    ExtraField { key: String, field: String },
    DifferentValue { key: String, field: String },
}

#[derive(Debug, Default)]
pub struct VerifyReport {
    pub cards: u64,
    pub drift: Vec<Drift>,
    /// Whether stray `card:` and `customer:` keys were ruled out by counting them (Redis held
    /// as many as the database has) rather than by looking each up.
    pub counted: bool,
}

/// Hashes of a batch of cards: each card's, its customer's and its PIN index entry.
fn hashes(batch: &Batch) -> Vec<HashWrite> {
    batch.records.iter().flat_map(|r| r.hashes()).collect()
}

/// A batch's hashes, ready to write or compare, and how many cards they are.
type Prepared = Result<(Vec<HashWrite>, u64), StoreError>;

/// SCAN pages whose keys are being checked against the database at once during verify.
const CHECKS_IN_FLIGHT: usize = 4;

/// What a check task that panicked says (a bug; the verify stops rather than report less).
fn panicked(_: &tokio::task::JoinError) -> &'static str {
    "a check of cache keys failed unexpectedly"
}

/// Batches read ahead: enough that Redis never waits for the database, few enough that memory
/// stays a few batches whatever the number of cards.
const READ_AHEAD: usize = 2;

/// Reads every card, `limit` at a time, on a task of its own: the database's reads and the
/// rows' decoding and hashing run on one thread while Redis's writes or reads run on another.
/// Ends after sending an empty batch (no card left: the only way the end is told), on the
/// first error (sent on), or when the receiver is dropped.
fn read_ahead(source: Arc<dyn CacheSource>, limit: i64) -> mpsc::Receiver<Prepared> {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    tokio::spawn(async move {
        let mut after = None;
        loop {
            let read = source.records(after.as_ref(), limit).await;
            let prepared = read.map(|batch| {
                after = batch.last.clone();
                (hashes(&batch), batch.records.len() as u64)
            });
            let last = matches!(&prepared, Ok((_, 0)) | Err(_));
            if tx.send(prepared).await.is_err() || last {
                return;
            }
        }
    });
    rx
}

/// The next batch from [`read_ahead`]; `None` at the end. A reader gone without telling the
/// end (it panicked) is an error, never the end: an incomplete cache must not be marked full.
async fn next_batch(
    batches: &mut mpsc::Receiver<Prepared>,
) -> Result<Option<(Vec<HashWrite>, u64)>, SyncError> {
    match batches.recv().await {
        Some(Ok((_, 0))) => Ok(None),
        Some(Ok(batch)) => Ok(Some(batch)),
        Some(Err(e)) => Err(e.into()),
        None => Err(SyncError::Stopped(
            "the database reader stopped unexpectedly",
        )),
    }
}

/// A rebuild under way: writes every card's and customer's hash that Redis lacks, holds older,
/// or holds different at the same version (all of them when forced; never one Redis holds
/// newer otherwise), a batch per [`Rebuild::step`]; [`Rebuild::finish`] then marks the cache
/// filled from this database. Safe while the service runs: a hash a request wrote meanwhile is
/// newer and is kept. The caller drives the batches, so it can show progress, pause or stop
/// between them. Cards come most recently changed first: the ones the tills are about to ask
/// for are back first; the next batches are read (and hashed) meanwhile.
pub struct Rebuild<'a> {
    cache: &'a RedisCache,
    force: bool,
    database_id: String,
    /// Noted in Redis at the start; see [`RedisCache::finish_refill`].
    token: String,
    /// The server behind the cache at the start: noted with the marker at the end, so that a
    /// switch during the rebuild is seen (the next check repairs again).
    server: String,
    batches: mpsc::Receiver<Prepared>,
    pub report: RebuildReport,
    /// Cards in the database when the rebuild started.
    pub total: i64,
}

impl<'a> Rebuild<'a> {
    /// Starts reading `batch` cards at a time.
    pub async fn start(
        source: Arc<dyn CacheSource>,
        cache: &'a RedisCache,
        force: bool,
        batch: i64,
    ) -> Result<Self, SyncError> {
        let database_id = source.database_id().await?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        let server = cache.server_identity().await?;
        cache.start_refill(&token).await?;
        let total = source.count_cards().await?;
        Ok(Self {
            cache,
            force,
            database_id,
            token,
            server,
            batches: read_ahead(source, batch.max(1)),
            report: RebuildReport::default(),
            total,
        })
    }

    /// Writes the next batch's hashes; `false` once no card is left.
    pub async fn step(&mut self) -> Result<bool, SyncError> {
        let Some((hashes, cards)) = next_batch(&mut self.batches).await? else {
            return Ok(false);
        };
        for written in self.cache.repair_all(&hashes, self.force).await? {
            match written {
                Written::Written => self.report.written += 1,
                Written::Current => self.report.current += 1,
                Written::Newer => self.report.newer += 1,
            }
        }
        self.report.cards += cards;
        Ok(true)
    }

    /// Marks the cache complete, unless Redis was emptied since the start.
    pub async fn finish(mut self) -> Result<RebuildReport, SyncError> {
        self.report.marked = self
            .cache
            .finish_refill(&self.token, &self.database_id, &self.server)
            .await?;
        Ok(self.report)
    }
}

/// Compares every expected hash field by field (pass 1), then walks every key in Redis and
/// asks the database about each page of them (pass 2: keys and PIN index entries that no card
/// accounts for). Memory holds a batch and a page, not the cache.
pub async fn verify(
    source: Arc<dyn CacheSource>,
    cache: &RedisCache,
    batch: i64,
) -> Result<VerifyReport, SyncError> {
    let mut report = VerifyReport::default();
    let mut batches = read_ahead(source.clone(), batch.max(1));
    while let Some((expected, cards)) = next_batch(&mut batches).await? {
        let actual = cache.read_all(&expected).await?;
        for (hash, actual) in expected.iter().zip(actual) {
            compare(hash, &actual, &mut report.drift);
        }
        report.cards += cards;
    }
    // Counted first. Pass 1 found every card and customer key the database expects; when
    // Redis holds exactly as many of each as the database has, none of them is a stray, and
    // pass 2 need look up only the PIN index (a count cannot check its members). A missing key
    // or a different count (a stray, or writes while this runs), and every key is looked up.
    let missing = report
        .drift
        .iter()
        .any(|d| matches!(d, Drift::MissingKey { .. }));
    report.counted = !missing && counts_match(source.as_ref(), cache).await?;
    let kind = if report.counted { PIN_INDEX } else { "" };
    // Pages are checked on tasks of their own, a few at a time, while SCAN goes on: the
    // database answers several pages' questions at once.
    let mut checks = tokio::task::JoinSet::new();
    let mut scan = cache.scan(kind).await?;
    loop {
        let page = scan.next_page().await?;
        let done = page.is_none();
        if let Some(page) = page {
            let (source, cache) = (source.clone(), cache.clone());
            checks.spawn(async move { strays(source.as_ref(), &cache, page).await });
        }
        while checks.len() >= CHECKS_IN_FLIGHT || (done && !checks.is_empty()) {
            let checked = checks.join_next().await.expect("a check in flight");
            report
                .drift
                .extend(checked.map_err(|e| SyncError::Stopped(panicked(&e)))??);
        }
        if done {
            break;
        }
    }
    // A customer of several cards is compared once per card, and SCAN may return a key twice:
    // each difference is reported once.
    let mut seen = HashSet::new();
    report.drift.retain(|d| seen.insert(d.clone()));
    Ok(report)
}

/// Whether Redis holds as many `card:` and `customer:` keys as the database has cards and
/// customers with a card. Only Redis is read key by key; the database answers two counts.
async fn counts_match(source: &dyn CacheSource, cache: &RedisCache) -> Result<bool, SyncError> {
    let (mut cards, mut customers) = (0_i64, 0_i64);
    let mut scan = cache.scan("").await?;
    while let Some(page) = scan.next_page().await? {
        for key in &page {
            if key.starts_with("card:") {
                cards += 1;
            } else if key.starts_with("customer:") {
                customers += 1;
            }
        }
    }
    let expected = tokio::try_join!(source.count_cards(), source.count_customers())?;
    Ok((cards, customers) == expected)
}

/// The keys of one SCAN page that no card accounts for, and the PIN index entries of cards
/// that are not (or no longer) in that index.
async fn strays(
    source: &dyn CacheSource,
    cache: &RedisCache,
    page: Vec<String>,
) -> Result<Vec<Drift>, SyncError> {
    let mut drift = Vec::new();
    let (mut cards, mut customers, mut pins) = (Vec::new(), Vec::new(), Vec::new());
    for key in page {
        if let Some(card) = key.strip_prefix("card:") {
            cards.push(card.to_owned());
        } else if let Some(id) = key.strip_prefix("customer:") {
            customers.push(id.to_owned());
        } else if key.starts_with(PIN_INDEX) {
            pins.push(key);
        }
    }
    // The three questions are independent: asked at once.
    let (known_cards, known_customers, held) = tokio::join!(
        source.known_cards(&cards),
        source.known_customers(&customers),
        cache.read_keys(&pins),
    );
    let known: HashSet<String> = known_cards?.into_iter().map(|k| k.card).collect();
    for card in cards.into_iter().filter(|c| !known.contains(c)) {
        drift.push(Drift::ExtraKey {
            key: format!("card:{card}"),
        });
    }
    let known: HashSet<String> = known_customers?.into_iter().collect();
    for id in customers.into_iter().filter(|c| !known.contains(c)) {
        drift.push(Drift::ExtraKey {
            key: format!("customer:{id}"),
        });
    }
    // A PIN index key is accounted for by any card it names (as a member or by a member's
    // kept version) that has this PIN HMAC; a member is in place only while its card is
    // indexed under this HMAC.
    let held = held?;
    if pins.is_empty() {
        return Ok(drift);
    }
    let named: Vec<String> = held
        .iter()
        .flat_map(|fields| fields.keys())
        .map(|f| f.strip_prefix("Version.").unwrap_or(f).to_owned())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let known: HashMap<String, Known> = source
        .known_cards(&named)
        .await?
        .into_iter()
        .map(|k| (k.card.clone(), k))
        .collect();
    for (key, fields) in pins.iter().zip(held) {
        let hmac = &key[PIN_INDEX.len()..];
        let has_hmac = |card: &str| {
            known
                .get(card)
                .and_then(|k| k.pin.as_ref())
                .is_some_and(|pin| pin.expose() == hmac)
        };
        let accounted = fields
            .keys()
            .any(|f| has_hmac(f.strip_prefix("Version.").unwrap_or(f)));
        if !accounted {
            // Nothing in Redis at all (it went between the scan and the read) is no drift.
            if !fields.is_empty() {
                drift.push(Drift::ExtraKey {
                    key: shown_key(key),
                });
            }
            continue;
        }
        for card in fields.keys().filter(|f| !f.starts_with("Version.")) {
            let indexed = has_hmac(card) && known.get(card.as_str()).is_some_and(|k| k.pin_indexed);
            if !indexed {
                drift.push(Drift::ExtraField {
                    key: shown_key(key),
                    field: card.clone(),
                });
            }
        }
    }
    Ok(drift)
}

fn compare(
    hash: &HashWrite,
    actual: &std::collections::BTreeMap<String, String>,
    drift: &mut Vec<Drift>,
) {
    let key = || hash.shown_key();
    if actual.is_empty() {
        drift.push(Drift::MissingKey { key: key() });
        return;
    }
    let expected = hash.expected();
    // A member's entry decides its own fields only; the other members' are theirs.
    let decides = |field: &str| match &hash.member {
        None => true,
        Some(member) => field == member || field == hash.version_field(),
    };
    for (field, value) in &expected {
        match actual.get(field) {
            None => drift.push(Drift::MissingField {
                key: key(),
                field: field.clone(),
            }),
            Some(v) if v != value => drift.push(Drift::DifferentValue {
                key: key(),
                field: field.clone(),
            }),
            Some(_) => {}
        }
    }
    for field in actual.keys().filter(|f| decides(f)) {
        if !expected.contains_key(field) {
            drift.push(Drift::ExtraField {
                key: key(),
                field: field.clone(),
            });
        }
    }
}
