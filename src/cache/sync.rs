//! Rebuilding the cache from the database and comparing the two.
//!
//! Both read the cards a batch at a time, most recently changed first (each batch a short read
//! of its own, the next one read while this one goes to Redis), so memory stays flat however many
//! cards there are. Verify then walks Redis's keys with SCAN, a page at a time, and asks the
//! database about each page: a key no card accounts for is found without holding the set of
//! expected keys.

use std::collections::{HashMap, HashSet};

use super::CacheSource;
use super::{CacheError, RedisCache, Written};
use crate::cache::HashWrite;
use crate::cache::projection::{PIN_INDEX, shown_key};
use crate::store::{Batch, Known, Position, StoreError};

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
}

/// Hashes of a batch of cards: each card's, its customer's and its PIN index entry.
fn hashes(batch: &Batch) -> Vec<HashWrite> {
    batch.records.iter().flat_map(|r| r.hashes()).collect()
}

/// A rebuild under way: writes every card's and customer's hash that Redis lacks, holds older,
/// or holds different at the same version (all of them when forced; never one Redis holds
/// newer otherwise), a batch per [`Rebuild::step`]; [`Rebuild::finish`] then marks the cache
/// filled from this database. Safe while the service runs: a hash a request wrote meanwhile is
/// newer and is kept. The caller drives the batches, so it can show progress, pause or stop
/// between them. Cards come most recently changed first: the ones the tills are about to ask
/// for are back first.
pub struct Rebuild<'a> {
    source: &'a dyn CacheSource,
    cache: &'a RedisCache,
    force: bool,
    database_id: String,
    /// Noted in Redis at the start; see [`RedisCache::finish_refill`].
    token: String,
    after: Option<Position>,
    /// The next batch, read while the last one was written.
    next: Option<Batch>,
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
            next: None,
            report: RebuildReport::default(),
            total,
        })
    }

    /// Writes the next `batch` cards' hashes, and reads the batch after them meanwhile;
    /// `false` once no card is left.
    pub async fn step(&mut self, batch: i64) -> Result<bool, SyncError> {
        let limit = batch.max(1);
        let current = match self.next.take() {
            Some(read) => read,
            None => self.source.records(self.after.as_ref(), limit).await?,
        };
        let Some(last) = current.last.clone() else {
            return Ok(false);
        };
        self.after = Some(last);
        let hashes = hashes(&current);
        // Reading and writing overlapped: the database reads the next batch while Redis takes
        // this one.
        let (next, written) = tokio::join!(
            self.source.records(self.after.as_ref(), limit),
            self.cache.repair_all(&hashes, self.force),
        );
        for written in written? {
            match written {
                Written::Written => self.report.written += 1,
                Written::Current => self.report.current += 1,
                Written::Newer => self.report.newer += 1,
            }
        }
        self.next = Some(next?);
        self.report.cards += current.records.len() as u64;
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

/// Compares every expected hash field by field (pass 1), then walks every key in Redis and
/// asks the database about each page of them (pass 2: keys and PIN index entries that no card
/// accounts for). Memory holds a batch and a page, not the cache.
pub async fn verify(
    source: &dyn CacheSource,
    cache: &RedisCache,
    batch: i64,
) -> Result<VerifyReport, SyncError> {
    let limit = batch.max(1);
    let mut report = VerifyReport::default();
    let mut current = source.records(None, limit).await?;
    while let Some(last) = current.last.clone() {
        let expected = hashes(&current);
        // The next batch read while Redis answers for this one.
        let (next, actual) = tokio::join!(
            source.records(Some(&last), limit),
            cache.read_all(&expected)
        );
        for (hash, actual) in expected.iter().zip(actual?) {
            compare(hash, &actual, &mut report.drift);
        }
        report.cards += current.records.len() as u64;
        current = next?;
    }
    let mut cursor = 0;
    loop {
        let (next, page) = cache.scan(cursor, "").await?;
        strays(source, cache, page, &mut report.drift).await?;
        if next == 0 {
            break;
        }
        cursor = next;
    }
    // A customer of several cards is compared once per card, and SCAN may return a key twice:
    // each difference is reported once.
    let mut seen = HashSet::new();
    report.drift.retain(|d| seen.insert(d.clone()));
    Ok(report)
}

/// The keys of one SCAN page that no card accounts for, and the PIN index entries of cards
/// that are not (or no longer) in that index.
async fn strays(
    source: &dyn CacheSource,
    cache: &RedisCache,
    page: Vec<String>,
    drift: &mut Vec<Drift>,
) -> Result<(), SyncError> {
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
    let known: HashSet<String> = source
        .known_cards(&cards)
        .await?
        .into_iter()
        .map(|k| k.card)
        .collect();
    for card in cards.into_iter().filter(|c| !known.contains(c)) {
        drift.push(Drift::ExtraKey {
            key: format!("card:{card}"),
        });
    }
    let known: HashSet<String> = source
        .known_customers(&customers)
        .await?
        .into_iter()
        .collect();
    for id in customers.into_iter().filter(|c| !known.contains(c)) {
        drift.push(Drift::ExtraKey {
            key: format!("customer:{id}"),
        });
    }
    if pins.is_empty() {
        return Ok(());
    }
    // A PIN index key is accounted for by any card it names (as a member or by a member's
    // kept version) that has this PIN HMAC; a member is in place only while its card is
    // indexed under this HMAC.
    let held = cache.read_keys(&pins).await?;
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
    Ok(())
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
