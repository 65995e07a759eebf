//! The dialect: how one statement, written once, runs on either database.
//!
//! Statements are written in PostgreSQL's spelling with `$1`-style placeholders, which SQLite
//! (through sqlx) accepts as well. What differs is said here, once:
//! - **values**: bound from one [`Value`] list, each as its database's type. Timestamps
//!   ([`Time`]) are `timestamptz` on PostgreSQL and RFC 3339 text (UTC, microseconds, `Z`) on
//!   SQLite, whose text order is time order;
//! - **casts**: `$4::numeric`, `payload::text` are PostgreSQL's (it types parameters strictly);
//!   SQLite's columns are text already, so [`for_sqlite`] drops every `::type`;
//! - **row locks**: a `for update …` clause ends its line; SQLite has one writer whose
//!   transactions are exclusive (`BEGIN IMMEDIATE`), so the clause is dropped there;
//! - `greatest(a, b)` is SQLite's two-argument `max(a, b)`.
//!
//! Nothing else may differ: a statement that needs more than this is written so that it does
//! not (two plain statements rather than a data-modifying CTE, an `in (…)` list rather than
//! an array).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgConnection, PgRow, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{
    SqliteArgumentValue, SqliteConnection, SqliteRow, SqliteTypeInfo, SqliteValueRef,
};
use sqlx::{Arguments, Database, Decode, Encode, FromRow, Postgres, Sqlite, Type};

/// A connection of either database, inside whatever transaction its owner began.
pub(crate) enum Conn<'c> {
    Postgres(&'c mut PgConnection),
    Sqlite(&'c mut SqliteConnection),
}

/// A point in time as both databases store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time(pub DateTime<Utc>);

impl Time {
    /// SQLite's form: fixed width, so that comparing the text compares the times.
    fn text(self) -> String {
        self.0.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }
}

impl From<Time> for DateTime<Utc> {
    fn from(t: Time) -> Self {
        t.0
    }
}

impl Type<Postgres> for Time {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
}

impl<'q> Encode<'q, Postgres> for Time {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Time {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <DateTime<Utc> as Decode<'r, Postgres>>::decode(value).map(Time)
    }
}

impl Type<Sqlite> for Time {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for Time {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.text(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Time {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<'r, Sqlite>>::decode(value)?;
        Ok(Time(
            DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc),
        ))
    }
}

/// A value bound to a statement.
#[derive(Debug, Clone)]
pub enum Value {
    Text(Option<String>),
    Int(i64),
    Bool(bool),
    Time(Time),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Text(Some(s.to_owned()))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::Text(Some(s))
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Self::Text(Some(s.clone()))
    }
}

impl From<Option<&str>> for Value {
    fn from(s: Option<&str>) -> Self {
        Self::Text(s.map(str::to_owned))
    }
}

impl From<Option<String>> for Value {
    fn from(s: Option<String>) -> Self {
        Self::Text(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<DateTime<Utc>> for Value {
    fn from(t: DateTime<Utc>) -> Self {
        Self::Time(Time(t))
    }
}

/// Rows that decode from either database's row.
pub trait FromEither:
    for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin
{
}

impl<T> FromEither for T where
    T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin
{
}

/// One statement and its values, for either database.
#[derive(Debug, Clone)]
pub struct Statement {
    text: Cow<'static, str>,
    values: Vec<Value>,
}

/// A statement in PostgreSQL's spelling (see the module's notes for what SQLite is given).
pub fn sql(text: impl Into<Cow<'static, str>>) -> Statement {
    Statement {
        text: text.into(),
        values: Vec::new(),
    }
}

impl Statement {
    /// Binds the next placeholder (`$1`, `$2`, … in the order of the calls).
    pub fn bind(mut self, value: impl Into<Value>) -> Self {
        self.values.push(value.into());
        self
    }

    /// Runs it; returns the number of rows it changed.
    pub(crate) async fn execute(&self, conn: &mut Conn<'_>) -> Result<u64, sqlx::Error> {
        let done = match conn {
            Conn::Postgres(c) => sqlx::query_with(&self.text, arguments::<Postgres>(&self.values)?)
                .execute(&mut **c)
                .await?
                .rows_affected(),
            Conn::Sqlite(c) => {
                let text = for_sqlite(&self.text);
                sqlx::query_with(&text, arguments::<Sqlite>(&self.values)?)
                    .execute(&mut **c)
                    .await?
                    .rows_affected()
            }
        };
        Ok(done)
    }

    /// Runs it and decodes every row it returns.
    pub(crate) async fn fetch_all<T: FromEither>(
        &self,
        conn: &mut Conn<'_>,
    ) -> Result<Vec<T>, sqlx::Error> {
        match conn {
            Conn::Postgres(c) => {
                sqlx::query_as_with(&self.text, arguments::<Postgres>(&self.values)?)
                    .fetch_all(&mut **c)
                    .await
            }
            Conn::Sqlite(c) => {
                let text = for_sqlite(&self.text);
                sqlx::query_as_with(&text, arguments::<Sqlite>(&self.values)?)
                    .fetch_all(&mut **c)
                    .await
            }
        }
    }

    /// The first row, if any (for statements that select by a key).
    pub(crate) async fn fetch_optional<T: FromEither>(
        &self,
        conn: &mut Conn<'_>,
    ) -> Result<Option<T>, sqlx::Error> {
        Ok(self.fetch_all(conn).await?.into_iter().next())
    }

    /// The one row it returns.
    pub(crate) async fn fetch_one<T: FromEither>(
        &self,
        conn: &mut Conn<'_>,
    ) -> Result<T, sqlx::Error> {
        self.fetch_optional(conn)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }
}

/// The values as one database's arguments.
fn arguments<'q, DB>(values: &'q [Value]) -> Result<<DB as Database>::Arguments<'q>, sqlx::Error>
where
    DB: Database,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
    Time: Encode<'q, DB> + Type<DB>,
{
    let mut arguments = <DB as Database>::Arguments::<'q>::default();
    for value in values {
        match value {
            Value::Text(s) => arguments.add(s.as_deref()),
            Value::Int(i) => arguments.add(*i),
            Value::Bool(b) => arguments.add(*b),
            Value::Time(t) => arguments.add(*t),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(arguments)
}

/// `$1, $2, …` for `count` values after the first `after`: an `in (…)` list or a `values` row.
pub(crate) fn placeholders(after: usize, count: usize) -> String {
    (after + 1..=after + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A statement as SQLite takes it: casts and row-lock clauses dropped, `greatest` as `max`.
fn for_sqlite(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let line = match line.find("for update") {
            Some(at) => &line[..at],
            None => line,
        };
        let mut rest = line;
        while let Some(at) = rest.find("::") {
            out.push_str(&rest[..at]);
            rest =
                rest[at + 2..].trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
        }
        out.push_str(rest);
    }
    out.replace("greatest(", "max(")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_gets_no_casts_no_row_locks_and_max_for_greatest() {
        let pg = "select balance::text as b, greatest(c.updated_at, u.updated_at)
                  from wallets where card_number = $1::text and x = $2
                  for update of c, u";
        let lite = for_sqlite(pg);
        assert!(!lite.contains("::"), "{lite}");
        assert!(!lite.contains("for update"), "{lite}");
        assert!(lite.contains("select balance as b, max(c.updated_at, u.updated_at)"));
        assert!(lite.contains("card_number = $1 and x = $2"));
    }

    #[test]
    fn placeholders_continue_the_numbering() {
        assert_eq!(placeholders(2, 3), "$3, $4, $5");
        assert_eq!(placeholders(0, 1), "$1");
    }

    #[test]
    fn sqlite_times_sort_as_text() {
        let a = Time(DateTime::from_timestamp(1_700_000_000, 5_000).unwrap());
        let b = Time(DateTime::from_timestamp(1_700_000_000, 120_000_000).unwrap());
        assert_eq!(a.text(), "2023-11-14T22:13:20.000005Z");
        assert!(a.text() < b.text());
    }
}
