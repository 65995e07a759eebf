//! Writing one cache hash: what every change of a card causes when a cache is configured.

use super::effect::{DeliveryError, Kind, Targets};
use crate::cache::HashWrite;

pub struct CacheWrite;

impl Kind for CacheWrite {
    const NAME: &'static str = "cache_write";
    // The till reads the cache right after ALCS's call: the answer waits for the write.
    const IN_REQUEST: bool = true;
    // A stale cache is worse than a late write: never given up.
    const CAN_DIE: bool = false;
    // There are many, and the cache itself shows them.
    const KEPT: bool = false;

    type Payload = HashWrite;

    fn subject(hash: &HashWrite) -> String {
        hash.key.clone()
    }

    async fn deliver(hash: &HashWrite, targets: &Targets) -> Result<(), DeliveryError> {
        let cache = targets.cache.as_ref().ok_or(DeliveryError::NoCache)?;
        // Version-guarded: `false` (not written) means Redis already holds this or a newer
        // version, which is delivered all the same.
        cache.write(hash, false).await?;
        Ok(())
    }
}
