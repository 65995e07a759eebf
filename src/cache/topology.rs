//! Where the cache's Redis is, by URL: one server, a master that Redis Sentinel names, or a
//! Redis Cluster.
//!
//! - `redis://` and `rediss://`: one server (or one endpoint that follows the master). The
//!   connection is re-made to the same address when it drops.
//! - `redis+sentinel://[user:password@]host1:26379,host2:26379/MASTER[/db]` (and
//!   `rediss+sentinel://`, TLS to the sentinels and the master): the sentinels are asked which
//!   server is the master `MASTER` whenever a connection is made, and the connection is
//!   re-made, through them, when it drops, times out or is told `READONLY` (the master it was
//!   made to was demoted). The user and password are the master's; sentinels that require
//!   their own are given them as `?sentinel_username=…&sentinel_password=…`.
//! - `redis+cluster://[user:password@]host1:6379,host2:6379` (and `rediss+cluster://`): any
//!   nodes of a Redis Cluster, from which the client learns the others and the slots; commands
//!   go to the primary of their key's slot and follow `MOVED`/`ASK` after a failover or a
//!   resharding. See [`super::RedisCache`] for what is sent where.

/// The URL's shape, parsed; never shown whole (it may hold a password).
#[derive(Clone, PartialEq, Eq)]
pub enum Topology {
    /// One server: the URL as the Redis client takes it.
    Single(String),
    Sentinel(SentinelSpec),
    Cluster(ClusterSpec),
}

#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    pub tls: bool,
    /// Nodes to learn the cluster from (any of them, primaries or replicas).
    pub nodes: Vec<(String, u16)>,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for ClusterSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSpec")
            .field("tls", &self.tls)
            .field("nodes", &self.nodes)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct SentinelSpec {
    pub tls: bool,
    pub sentinels: Vec<(String, u16)>,
    pub master: String,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sentinels' own credentials, when they require them (`?sentinel_username=…&
    /// sentinel_password=…`).
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Single(_) => f.write_str("Single(<url>)"),
            Self::Sentinel(spec) => f.debug_tuple("Sentinel").field(spec).finish(),
            Self::Cluster(spec) => f.debug_tuple("Cluster").field(spec).finish(),
        }
    }
}

impl std::fmt::Debug for SentinelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelSpec")
            .field("tls", &self.tls)
            .field("sentinels", &self.sentinels)
            .field("master", &self.master)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("sentinel_username", &self.sentinel_username)
            .field(
                "sentinel_password",
                &self.sentinel_password.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

/// The sentinels' usual port.
const SENTINEL_PORT: u16 = 26379;
/// Redis's usual port (cluster nodes).
const REDIS_PORT: u16 = 6379;

/// The part of a multi-host URL after the scheme: credentials, hosts, path segments, query.
struct HostList<'a> {
    username: Option<String>,
    password: Option<String>,
    hosts: Vec<(String, u16)>,
    path: Vec<&'a str>,
    query: &'a str,
}

impl<'a> HostList<'a> {
    /// `[user:password@]host1[:port],host2[:port][/path…][?query]`; `what` names the hosts in
    /// messages.
    fn parse(rest: &'a str, default_port: u16, what: &str) -> Result<Self, String> {
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (
                    Some(decode(user)).filter(|u| !u.is_empty()),
                    Some(decode(pass)),
                ),
                None => (Some(decode(u)).filter(|u| !u.is_empty()), None),
            },
        };
        let mut list = Vec::new();
        for host in hosts.split(',').filter(|h| !h.is_empty()) {
            let (name, port) = match host.rsplit_once(':') {
                Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => {
                    let port = port
                        .parse()
                        .map_err(|_| format!("a {what}'s port is not a number"))?;
                    (name, port)
                }
                _ => (host, default_port),
            };
            list.push((name.trim_matches(['[', ']']).to_owned(), port));
        }
        Ok(Self {
            username,
            password,
            hosts: list,
            path: path.split('/').filter(|s| !s.is_empty()).collect(),
            query,
        })
    }
}

/// A percent-encoded URL part, decoded.
fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl Topology {
    /// Parses a cache URL; the error says what is wrong without repeating the URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url.split_once("://").ok_or(
            "not a URL (expected redis://, rediss://, redis+sentinel:// or redis+cluster://)",
        )?;
        let (tls, cluster) = match scheme {
            "redis" | "rediss" | "unix" | "redis+unix" => {
                redis::IntoConnectionInfo::into_connection_info(url).map_err(
                    |_| "not a Redis URL such as redis://127.0.0.1:6379/0 or rediss://host:6380/0",
                )?;
                return Ok(Self::Single(url.to_owned()));
            }
            "redis+sentinel" => (false, false),
            "rediss+sentinel" => (true, false),
            "redis+cluster" => (false, true),
            "rediss+cluster" => (true, true),
            _ => {
                return Err(format!(
                    "unsupported scheme {scheme}:// (expected redis://, rediss://, \
                     redis+sentinel://, rediss+sentinel://, redis+cluster:// or \
                     rediss+cluster://)"
                ));
            }
        };
        if cluster {
            let list = HostList::parse(rest, REDIS_PORT, "node")?;
            if !list.query.is_empty() {
                return Err("redis+cluster:// takes no parameters".into());
            }
            if list.hosts.is_empty() {
                return Err("redis+cluster:// names no node (host:port, comma-separated)".into());
            }
            // A cluster has one database; `/0` is accepted as the same.
            if !matches!(list.path.as_slice(), [] | ["0"]) {
                return Err(
                    "redis+cluster:// takes no database (a Redis Cluster has only database 0)"
                        .into(),
                );
            }
            return Ok(Self::Cluster(ClusterSpec {
                tls,
                nodes: list.hosts,
                username: list.username,
                password: list.password,
            }));
        }
        let list = HostList::parse(rest, SENTINEL_PORT, "sentinel")?;
        let (mut sentinel_username, mut sentinel_password) = (None, None);
        for (name, value) in url::form_urlencoded::parse(list.query.as_bytes()) {
            match name.as_ref() {
                "sentinel_username" => sentinel_username = Some(value.into_owned()),
                "sentinel_password" => sentinel_password = Some(value.into_owned()),
                _ => {
                    return Err(format!(
                        "redis+sentinel:// takes no parameter {name} (only sentinel_username \
                         and sentinel_password)"
                    ));
                }
            }
        }
        if list.hosts.is_empty() {
            return Err("redis+sentinel:// names no sentinel (host:port, comma-separated)".into());
        }
        let mut segments = list.path.iter();
        let master = (*segments
            .next()
            .ok_or("redis+sentinel:// names no master: …/MASTER[/db]")?)
        .to_owned();
        let db = match segments.next() {
            None => 0,
            Some(db) => db
                .parse()
                .map_err(|_| "the database after the master's name is not a number".to_owned())?,
        };
        if segments.next().is_some() {
            return Err("redis+sentinel://…/MASTER[/db]: too many path segments".into());
        }
        Ok(Self::Sentinel(SentinelSpec {
            tls,
            sentinels: list.hosts,
            master,
            db,
            username: list.username,
            password: list.password,
            sentinel_username,
            sentinel_password,
        }))
    }

    /// Whether the connections are TLS (`rediss`).
    pub fn over_tls(&self) -> bool {
        match self {
            Self::Single(url) => url.starts_with("rediss:"),
            Self::Sentinel(spec) => spec.tls,
            Self::Cluster(spec) => spec.tls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ClusterSpec, SentinelSpec, Topology};

    #[test]
    fn cluster_urls_name_any_nodes_and_no_database() {
        assert_eq!(
            Topology::parse("redis+cluster://n1:7000,n2,[::1]:7001"),
            Ok(Topology::Cluster(ClusterSpec {
                tls: false,
                nodes: vec![
                    ("n1".into(), 7000),
                    ("n2".into(), 6379),
                    ("::1".into(), 7001)
                ],
                username: None,
                password: None,
            }))
        );
        let Ok(Topology::Cluster(spec)) = Topology::parse("rediss+cluster://cps:p%40ss@n1/0")
        else {
            panic!("a cluster URL with credentials");
        };
        assert!(spec.tls);
        assert_eq!(spec.username.as_deref(), Some("cps"));
        assert_eq!(spec.password.as_deref(), Some("p@ss"));
        assert!(!format!("{spec:?}").contains("p@ss"));
        for bad in [
            "redis+cluster://",
            "redis+cluster://n1/2",
            "redis+cluster://n1:x",
            "redis+cluster://n1?password=x",
        ] {
            assert!(Topology::parse(bad).is_err(), "{bad} taken");
        }
    }

    #[test]
    fn urls_name_one_server_or_the_sentinels_of_a_master() {
        assert!(matches!(
            Topology::parse("redis://127.0.0.1:6379/0"),
            Ok(Topology::Single(_))
        ));
        assert!(Topology::parse("rediss://cache:6380").unwrap().over_tls());
        assert_eq!(
            Topology::parse("redis+sentinel://s1:26380,s2,[::1]:26381/cache/2"),
            Ok(Topology::Sentinel(SentinelSpec {
                tls: false,
                sentinels: vec![
                    ("s1".into(), 26380),
                    ("s2".into(), 26379),
                    ("::1".into(), 26381)
                ],
                master: "cache".into(),
                db: 2,
                username: None,
                password: None,
                sentinel_username: None,
                sentinel_password: None,
            }))
        );
        let Ok(Topology::Sentinel(spec)) =
            Topology::parse("redis+sentinel://s1/cache?sentinel_password=s%26cret")
        else {
            panic!("a sentinel URL with the sentinels' password");
        };
        assert_eq!(spec.sentinel_password.as_deref(), Some("s&cret"));
        assert!(!format!("{spec:?}").contains("s&cret"));
        let Ok(Topology::Sentinel(spec)) =
            Topology::parse("rediss+sentinel://cps:p%40ss@s1:26379/cache")
        else {
            panic!("a sentinel URL");
        };
        assert!(spec.tls);
        assert_eq!(spec.username.as_deref(), Some("cps"));
        assert_eq!(spec.password.as_deref(), Some("p@ss"));
        assert_eq!(spec.db, 0);
        for bad in [
            "redis+sentinel://s1:26379",
            "redis+sentinel:///cache",
            "redis+sentinel://s1:x/cache",
            "redis+sentinel://s1/cache/x",
            "memcached://m:11211",
            "redis://:x:y@h:z",
            "redis+sentinel://s1/cache?password=x",
        ] {
            let e = Topology::parse(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} taken"));
            assert!(!e.contains("s1:"), "{e}");
        }
    }
}
