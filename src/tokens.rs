//! The desk's tokens file: who may use the desk API, in which role, proven by which token.
//!
//! One line per user, `name, role, sha256(token)`:
//!
//! ```text
//! # name, role (viewer or agent), SHA-256 of the token as 64 hex digits
//! anna.kowalska, agent, 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
//! ```
//!
//! Only hashes are stored: the file reveals no token. `cps support token add` makes a random
//! token, prints it once, and appends its line. Blank lines and `#` comments are ignored.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::domain::DeskUser;
use crate::secret::{generate, hash_hex, same_secret};

/// What a desk user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Look-ups and history.
    Viewer,
    /// Everything.
    Agent,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "agent" => Some(Self::Agent),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Agent => "agent",
        }
    }
}

/// One line of the file.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub user: DeskUser,
    pub role: Role,
    hash: [u8; 32],
}

impl Entry {
    /// The token's SHA-256 as the file holds it (64 lowercase hex digits): what a console
    /// session keeps to know its token is still in force.
    pub fn hash_hex(&self) -> String {
        self.hash
            .iter()
            .fold(String::with_capacity(64), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("user", &self.user)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The users of a tokens file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    entries: Vec<Entry>,
}

/// Why a tokens file cannot be used; names the line, never a token or hash.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("cannot read the tokens file {file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tokens file {file}, line {line}: {problem}")]
    Line {
        file: String,
        line: usize,
        problem: &'static str,
    },
    #[error("cannot write the tokens file {file}: {source}")]
    Write {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(&'static str),
}

impl Tokens {
    /// Reads and checks a whole file: one bad line refuses it all (a half-read file would lock
    /// out some users silently).
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read {
            file: file.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|(line, problem)| TokensError::Line {
            file,
            line,
            problem,
        })
    }

    /// Parses a file's text; an error names the line (1-based) and what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, (usize, &'static str)> {
        let mut entries: Vec<Entry> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [name, role, hash] = fields[..] else {
                return Err((
                    i + 1,
                    "expected three comma-separated fields: name, role, hash",
                ));
            };
            let user = DeskUser::parse(name)
                .ok_or((i + 1, "the name must be 1 to 64 of A-Z a-z 0-9 . _ @ -"))?;
            let role = Role::parse(role).ok_or((i + 1, "the role must be viewer or agent"))?;
            let hash = parse_hash(hash)
                .ok_or((i + 1, "the hash must be SHA-256 as 64 lowercase hex digits"))?;
            if entries.iter().any(|e| e.user == user) {
                return Err((i + 1, "the name is listed twice"));
            }
            entries.push(Entry { user, role, hash });
        }
        Ok(Self { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The user whose token this is. Every entry is compared, each in constant time, so the
    /// time taken tells nothing of which (if any) matched.
    pub fn authenticate(&self, token: &str) -> Option<&Entry> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for entry in &self.entries {
            if same_secret(&entry.hash, &presented) && found.is_none() {
                found = Some(entry);
            }
        }
        found
    }
}

impl Tokens {
    /// The user whose token has this hash (hex), if it is still in the file.
    pub fn by_hash(&self, hash: &str) -> Option<&Entry> {
        let wanted = parse_hash(hash)?;
        self.entries.iter().find(|e| same_secret(&e.hash, &wanted))
    }
}

fn parse_hash(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Adds a user with a new token to the file (created if missing, readable by its owner
/// only); returns the token, which is not kept anywhere.
pub fn add(path: &Path, name: &str, role: &str) -> Result<String, TokensError> {
    let user = DeskUser::parse(name).ok_or(TokensError::Usage(
        "NAME must be 1 to 64 of A-Z a-z 0-9 . _ @ -",
    ))?;
    let role = Role::parse(role).ok_or(TokensError::Usage("ROLE must be viewer or agent"))?;
    let file = path.display().to_string();
    if path.exists() {
        let tokens = Tokens::load(path)?;
        if tokens.entries.iter().any(|e| e.user == user) {
            return Err(TokensError::Usage(
                "NAME is in the tokens file already; remove its line first to issue a new token",
            ));
        }
    }
    let token = generate();
    let line = format!("{user}, {}, {}\n", role.as_str(), hash_hex(&token));
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let write = |source| TokensError::Write {
        file: file.clone(),
        source,
    };
    let mut out = options.open(path).map_err(write)?;
    out.write_all(line.as_bytes()).map_err(write)?;
    out.sync_all().map_err(write)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_authenticates_its_user_only() {
        let text = format!(
            "# desk\n\nanna, agent, {}\nbob , viewer , {}\n",
            hash_hex("secret-a"),
            hash_hex("secret-b")
        );
        let tokens = Tokens::parse(&text).unwrap();
        assert_eq!(tokens.len(), 2);
        let anna = tokens.authenticate("secret-a").unwrap();
        assert_eq!((anna.user.as_str(), anna.role), ("anna", Role::Agent));
        assert_eq!(tokens.authenticate("secret-b").unwrap().role, Role::Viewer);
        assert!(tokens.authenticate("secret-c").is_none());
        assert!(tokens.authenticate("").is_none());
    }

    #[test]
    fn a_bad_line_is_named() {
        let hash = hash_hex("x");
        assert_eq!(
            Tokens::parse(&format!("ok, agent, {hash}\nbad, admin, {hash}"))
                .unwrap_err()
                .0,
            2
        );
        assert!(Tokens::parse("a, agent, 12ab").is_err());
        assert!(Tokens::parse(&format!("a, agent, {hash}, extra")).is_err());
        assert!(Tokens::parse(&format!("a, agent, {hash}\na, viewer, {hash}")).is_err());
        assert!(Tokens::parse(&format!("a b, agent, {hash}")).is_err());
    }

    #[test]
    fn added_tokens_are_random_and_stored_as_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let first = add(&path, "anna", "agent").unwrap();
        let second = add(&path, "bob", "viewer").unwrap();
        assert_ne!(first, second);
        assert!(first.len() > 60);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&first) && !text.contains(&second));
        let tokens = Tokens::load(&path).unwrap();
        assert_eq!(tokens.authenticate(&first).unwrap().user.as_str(), "anna");
        assert!(add(&path, "anna", "viewer").is_err(), "a name once");
        assert!(add(&path, "carl", "admin").is_err());
    }
}
