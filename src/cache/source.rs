//! Where a cache rebuild or verify reads the cards from: the system of record, card by card in
//! card-number order, as stored.

use async_trait::async_trait;

use crate::domain::{CardNumber, CardRecord};
use crate::store::{Guarded, SqlStore, StoreError};

#[async_trait]
pub trait CacheSource: Send + Sync + 'static {
    /// Up to `limit` cards with number greater than `after`, in card-number order, as stored.
    async fn records(
        &self,
        after: Option<&CardNumber>,
        limit: i64,
    ) -> Result<Vec<CardRecord>, StoreError>;

    async fn count_cards(&self) -> Result<i64, StoreError>;

    /// The database's identity: a random id written on first use and never changed. The cache
    /// carries it in its marker key, so an emptied or foreign cache is recognized.
    async fn database_id(&self) -> Result<String, StoreError>;
}

#[async_trait]
impl CacheSource for SqlStore {
    async fn records(
        &self,
        after: Option<&CardNumber>,
        limit: i64,
    ) -> Result<Vec<CardRecord>, StoreError> {
        SqlStore::records(self, after, limit).await
    }

    async fn count_cards(&self) -> Result<i64, StoreError> {
        SqlStore::count_cards(self).await
    }

    async fn database_id(&self) -> Result<String, StoreError> {
        SqlStore::database_id(self).await
    }
}

/// Behind the database's circuit breaker, like the store's own operations.
#[async_trait]
impl CacheSource for Guarded {
    async fn records(
        &self,
        after: Option<&CardNumber>,
        limit: i64,
    ) -> Result<Vec<CardRecord>, StoreError> {
        self.call(self.inner().records(after, limit)).await
    }

    async fn count_cards(&self) -> Result<i64, StoreError> {
        self.call(self.inner().count_cards()).await
    }

    async fn database_id(&self) -> Result<String, StoreError> {
        self.call(self.inner().database_id()).await
    }
}
