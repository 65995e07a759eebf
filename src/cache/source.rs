//! Where a cache rebuild or verify reads the cards from: the system of record, a batch at a
//! time, most recently changed first (the cards the tills are about to ask for).

use async_trait::async_trait;

use crate::store::{Batch, Known, Position, SqlStore, StoreError};

#[async_trait]
pub trait CacheSource: Send + Sync + 'static {
    /// Up to `limit` cards after `after` (most recently changed first, then by card number),
    /// as stored, and where the next batch starts. Each batch is a short read of its own.
    async fn records(&self, after: Option<&Position>, limit: i64) -> Result<Batch, StoreError>;

    /// What the database says of each of these cards (those it has; in no order).
    async fn known_cards(&self, numbers: &[String]) -> Result<Vec<Known>, StoreError>;

    /// Which of these customers have a card (in no order).
    async fn known_customers(&self, ids: &[String]) -> Result<Vec<String>, StoreError>;

    async fn count_cards(&self) -> Result<i64, StoreError>;

    /// How many customers have a card (each has a `customer:` key in a full cache).
    async fn count_customers(&self) -> Result<i64, StoreError>;

    /// The database's identity: a random id written on first use and never changed. The cache
    /// carries it in its marker key, so an emptied or foreign cache is recognized.
    async fn database_id(&self) -> Result<String, StoreError>;
}

#[async_trait]
impl CacheSource for SqlStore {
    async fn records(&self, after: Option<&Position>, limit: i64) -> Result<Batch, StoreError> {
        SqlStore::records(self, after, limit).await
    }

    async fn known_cards(&self, numbers: &[String]) -> Result<Vec<Known>, StoreError> {
        SqlStore::known_cards(self, numbers).await
    }

    async fn known_customers(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        SqlStore::known_customers(self, ids).await
    }

    async fn count_cards(&self) -> Result<i64, StoreError> {
        SqlStore::count_cards(self).await
    }

    async fn count_customers(&self) -> Result<i64, StoreError> {
        SqlStore::count_customers(self).await
    }

    async fn database_id(&self) -> Result<String, StoreError> {
        SqlStore::database_id(self).await
    }
}
