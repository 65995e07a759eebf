//! Rebuilding the cache from the database and comparing the two.
//!
//! Both stream the cards in card-number order, a batch at a time, so memory stays flat however
//! many cards there are (verify keeps the set of expected keys to find strays).

use std::collections::HashSet;

use super::CacheSource;
use super::{CacheError, RedisCache, Written};
use crate::cache::HashWrite;
use crate::cache::projection::{PIN_INDEX, shown_key};
use crate::domain::CardNumber;
use crate::store::StoreError;

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
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

async fn each_batch<F>(source: &dyn CacheSource, batch: i64, mut f: F) -> Result<(), SyncError>
where
    F: AsyncFnMut(Vec<HashWrite>, usize) -> Result<(), SyncError>,
{
    let mut after: Option<CardNumber> = None;
    loop {
        let states = source.records(after.as_ref(), batch.max(1)).await?;
        let Some(last) = states.last() else {
            return Ok(());
        };
        after = Some(last.card.number.clone());
        let cards = states.len();
        let hashes = states.iter().flat_map(|s| s.hashes()).collect();
        f(hashes, cards).await?;
    }
}

/// A rebuild under way: writes every card's and customer's hash that Redis lacks, holds older,
/// or holds different at the same version (all of them when forced; never one Redis holds
/// newer otherwise), a batch per
/// [`Rebuild::step`]; [`Rebuild::finish`] then marks the cache filled from this database. Safe
/// while the service runs: a hash a request wrote meanwhile is newer and is kept. The caller
/// drives the batches, so it can show progress, pause or stop between them.
pub struct Rebuild<'a> {
    source: &'a dyn CacheSource,
    cache: &'a RedisCache,
    force: bool,
    database_id: String,
    /// Noted in Redis at the start; see [`RedisCache::finish_refill`].
    token: String,
    after: Option<CardNumber>,
    pub report: RebuildReport,
    /// Cards in the database when the rebuild started.
    pub total: i64,
}

impl<'a> Rebuild<'a> {
    pub async fn start(
        source: &'a dyn CacheSource,
        cache: &'a RedisCache,
        force: bool,
    ) -> Result<Self, SyncError> {
        let database_id = source.database_id().await?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        cache.start_refill(&token).await?;
        let total = source.count_cards().await?;
        Ok(Self {
            source,
            cache,
            force,
            database_id,
            token,
            after: None,
            report: RebuildReport::default(),
            total,
        })
    }

    /// Writes the next `batch` cards' hashes; `false` once no card is left.
    pub async fn step(&mut self, batch: i64) -> Result<bool, SyncError> {
        let states = self
            .source
            .records(self.after.as_ref(), batch.max(1))
            .await?;
        let Some(last) = states.last() else {
            return Ok(false);
        };
        self.after = Some(last.card.number.clone());
        // The batch's hashes in one pipeline: a round trip per batch, not per hash.
        let hashes: Vec<HashWrite> = states.iter().flat_map(|s| s.hashes()).collect();
        for written in self.cache.repair_all(&hashes, self.force).await? {
            match written {
                Written::Written => self.report.written += 1,
                Written::Current => self.report.current += 1,
                Written::Newer => self.report.newer += 1,
            }
        }
        self.report.cards += states.len() as u64;
        Ok(true)
    }

    /// Marks the cache complete, unless Redis was emptied since the start.
    pub async fn finish(mut self) -> Result<RebuildReport, SyncError> {
        self.report.marked = self
            .cache
            .finish_refill(&self.token, &self.database_id)
            .await?;
        Ok(self.report)
    }
}

/// Compares every expected hash field by field, then looks for keys no card accounts for.
pub async fn verify(
    source: &dyn CacheSource,
    cache: &RedisCache,
    batch: i64,
) -> Result<VerifyReport, SyncError> {
    let mut report = VerifyReport::default();
    let mut expected_keys = HashSet::new();
    // PIN index entries that should be there: (key, card).
    let mut expected_members = HashSet::new();
    each_batch(source, batch, async |hashes, cards| {
        // The batch's hashes read in pipelines.
        let actual = cache.read_all(&hashes).await?;
        for (hash, actual) in hashes.into_iter().zip(actual) {
            compare(&hash, &actual, &mut report.drift);
            if let Some(member) = hash.member.as_ref().filter(|_| !hash.fields.is_empty()) {
                expected_members.insert((hash.key.clone(), member.clone()));
            }
            expected_keys.insert(hash.key);
        }
        report.cards += cards as u64;
        Ok(())
    })
    .await?;
    let mut shared = Vec::new();
    for kind in ["card:", "customer:", PIN_INDEX] {
        let mut keys = cache.keys(kind).await?;
        keys.sort();
        for key in keys {
            if !expected_keys.contains(&key) {
                report.drift.push(Drift::ExtraKey {
                    key: shown_key(&key),
                });
            } else if kind == PIN_INDEX {
                shared.push(HashWrite {
                    key,
                    version: 0,
                    fields: Vec::new(),
                    member: None,
                });
            }
        }
    }
    // A card no entry accounts for, in an index key that others share: each such key read
    // whole once, in pipelines.
    for (hash, actual) in shared.iter().zip(cache.read_all(&shared).await?) {
        for field in actual.into_keys() {
            let member = !field.starts_with("Version.");
            if member && !expected_members.contains(&(hash.key.clone(), field.clone())) {
                report.drift.push(Drift::ExtraField {
                    key: shown_key(&hash.key),
                    field,
                });
            }
        }
    }
    Ok(report)
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
