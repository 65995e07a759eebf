//! Rebuilding the cache from the database and comparing the two.
//!
//! Both stream the cards in card-number order, a batch at a time, so memory stays flat however
//! many cards there are (verify keeps the set of expected keys to find strays).

use std::collections::HashSet;

use super::{CacheError, RedisCache};
use crate::cache::HashWrite;
use crate::domain::CardNumber;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cache(#[from] CacheError),
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RebuildReport {
    pub cards: u64,
    pub written: u64,
    /// Hashes Redis already held at the same or a newer version (a concurrent request wrote it).
    pub current: u64,
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

async fn each_batch<F>(store: &dyn Store, batch: i64, mut f: F) -> Result<(), SyncError>
where
    F: AsyncFnMut(Vec<HashWrite>, usize) -> Result<(), SyncError>,
{
    let mut after: Option<CardNumber> = None;
    loop {
        let states = store.cache_states(after.as_ref(), batch.max(1)).await?;
        let Some(last) = states.last() else {
            return Ok(());
        };
        after = Some(last.card.number.clone());
        let cards = states.len();
        let hashes = states.iter().flat_map(|s| s.hashes()).collect();
        f(hashes, cards).await?;
    }
}

/// Writes every card's and customer's hash, version-guarded unless `force`. Safe while the
/// service runs: a hash a request wrote meanwhile is newer and is kept.
pub async fn rebuild(
    store: &dyn Store,
    cache: &RedisCache,
    force: bool,
    batch: i64,
    mut progress: impl FnMut(u64, i64),
) -> Result<RebuildReport, SyncError> {
    let total = store.count_cards().await?;
    let mut report = RebuildReport::default();
    each_batch(store, batch, async |hashes, cards| {
        for hash in &hashes {
            if cache.write(hash, force).await? {
                report.written += 1;
            } else {
                report.current += 1;
            }
        }
        report.cards += cards as u64;
        progress(report.cards, total);
        Ok(())
    })
    .await?;
    Ok(report)
}

/// Compares every expected hash field by field, then looks for keys no card accounts for.
pub async fn verify(
    store: &dyn Store,
    cache: &RedisCache,
    batch: i64,
) -> Result<VerifyReport, SyncError> {
    let mut report = VerifyReport::default();
    let mut expected_keys = HashSet::new();
    each_batch(store, batch, async |hashes, cards| {
        for hash in hashes {
            let actual = cache.read(&hash.key).await?;
            compare(&hash, &actual, &mut report.drift);
            expected_keys.insert(hash.key);
        }
        report.cards += cards as u64;
        Ok(())
    })
    .await?;
    for kind in ["card:", "customer:"] {
        let mut keys = cache.keys(kind).await?;
        keys.sort();
        for key in keys {
            if !expected_keys.contains(&key) {
                report.drift.push(Drift::ExtraKey { key });
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
    let key = || hash.key.clone();
    if actual.is_empty() {
        drift.push(Drift::MissingKey { key: key() });
        return;
    }
    let expected = hash.expected();
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
    for field in actual.keys() {
        if !expected.contains_key(field) {
            drift.push(Drift::ExtraField {
                key: key(),
                field: field.clone(),
            });
        }
    }
}
