//! Writing and reading the cache hashes in Redis.
//!
//! One multiplexed `ConnectionManager` (cloned per call, no pool), created lazily so that the
//! service starts and serves while Redis is down; it reconnects by itself. Timeouts are explicit
//! because a cashier waits on every write.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use super::HashWrite;

/// Replaces the whole hash unless Redis already holds the same or a newer version (or when
/// forced). One key per call, so it works on Redis Cluster; atomic because it is one script.
const WRITE_SCRIPT: &str = r"
local current = redis.call('HGET', KEYS[1], 'Version')
if ARGV[2] ~= '1' and current and tonumber(current) and tonumber(current) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('DEL', KEYS[1])
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[1], 'Version', ARGV[1])
return 1
";

#[derive(Debug, thiserror::Error)]
#[error("Redis failed to {context}")]
pub struct CacheError {
    context: &'static str,
    #[source]
    source: redis::RedisError,
}

trait Context<T> {
    fn context(self, context: &'static str) -> Result<T, CacheError>;
}

impl<T> Context<T> for redis::RedisResult<T> {
    fn context(self, context: &'static str) -> Result<T, CacheError> {
        self.map_err(|source| CacheError { context, source })
    }
}

#[derive(Clone)]
pub struct RedisCache {
    conn: ConnectionManager,
    prefix: String,
    script: Script,
}

impl RedisCache {
    /// Checks the URL and prepares the connection; nothing is sent until the first command.
    pub fn connect(url: &str, prefix: &str, timeout: Duration) -> Result<Self, CacheError> {
        let client = redis::Client::open(url).context("parse the Redis URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // Reconnect once per command at most: a request must not wait out a long retry
            // loop, and the outbox retries later anyway.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(100));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .context("set up the Redis connection")?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            script: Script::new(WRITE_SCRIPT),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Writes `hash` if it is newer than what Redis holds (always, when `force`).
    /// Returns whether it was written.
    pub async fn write(&self, hash: &HashWrite, force: bool) -> Result<bool, CacheError> {
        let mut invocation = self.script.key(format!("{}{}", self.prefix, hash.key));
        invocation
            .arg(hash.version)
            .arg(if force { "1" } else { "0" });
        for (field, value) in &hash.fields {
            invocation.arg(field).arg(value);
        }
        let written: i64 = invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .context("write a cache hash")?;
        Ok(written == 1)
    }

    /// A hash's fields (empty when the key does not exist); `key` is without the prefix.
    pub async fn read(&self, key: &str) -> Result<BTreeMap<String, String>, CacheError> {
        self.conn
            .clone()
            .hgetall(format!("{}{key}", self.prefix))
            .await
            .context("read a cache hash")
    }

    /// Every key under the prefix that starts with `kind` (`card:` / `customer:`), without the
    /// prefix. SCAN, not KEYS, so a large cache is not blocked.
    pub async fn keys(&self, kind: &str) -> Result<Vec<String>, CacheError> {
        let pattern = format!("{}{kind}*", glob_escape(&self.prefix));
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .context("list cache keys")?;
            keys.extend(
                batch
                    .into_iter()
                    .filter_map(|k| k.strip_prefix(&self.prefix).map(str::to_owned)),
            );
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    pub async fn ping(&self) -> Result<(), CacheError> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn.clone())
            .await
            .context("answer PING")
            .map(drop)
    }
}

/// Escapes Redis glob characters so that a prefix matches only itself.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::glob_escape;

    #[test]
    fn prefixes_are_matched_literally() {
        assert_eq!(glob_escape("cps:"), "cps:");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
