//! Statements whose shape is known only at run time: filters that come and
//! go, `IN (…)` lists and multi-row `VALUES` as long as a batch.
//!
//! Hand-written because sqlx's `QueryBuilder` cannot serve SQL written once
//! for every backend: what it builds carries `DB::Arguments<'args>` for the
//! builder's own lifetime, and code generic over the database can only run
//! arguments whose lifetime is exactly that of the borrow of the statement,
//! which a builder lending itself out cannot give. A [`Statement`] keeps its
//! parameters as plain values and binds them when it runs.

use std::borrow::Cow;
use std::fmt::Write as _;

use sqlx::query::{Query, QueryAs};
use sqlx::{Arguments, Database, Encode, FromRow, IntoArguments, Type};

/// A value bound to a statement. `None` binds SQL `NULL` of the type.
#[derive(Debug, Clone, PartialEq)]
pub enum Param<'a> {
    /// Text.
    Text(Option<Cow<'a, str>>),
    /// A 64-bit integer.
    Int(Option<i64>),
    /// A boolean.
    Bool(bool),
    /// Bytes.
    Bytes(&'a [u8]),
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Param::Text(Some(Cow::Borrowed(v)))
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Param::Text(Some(Cow::Borrowed(v)))
    }
}

impl From<String> for Param<'_> {
    fn from(v: String) -> Self {
        Param::Text(Some(Cow::Owned(v)))
    }
}

impl<'a> From<&'a Option<String>> for Param<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Param::Text(v.as_deref().map(Cow::Borrowed))
    }
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(Some(v))
    }
}

impl From<Option<i64>> for Param<'_> {
    fn from(v: Option<i64>) -> Self {
        Param::Int(v)
    }
}

impl From<bool> for Param<'_> {
    fn from(v: bool) -> Self {
        Param::Bool(v)
    }
}

impl<'a> From<&'a [u8]> for Param<'a> {
    fn from(v: &'a [u8]) -> Self {
        Param::Bytes(v)
    }
}

impl<'a> From<&'a Vec<u8>> for Param<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Param::Bytes(v)
    }
}

/// Shorthand for a row of [`Statement::values`]: `[p(a), p(b)]`.
pub fn p<'a>(value: impl Into<Param<'a>>) -> Param<'a> {
    value.into()
}

/// SQL text and its parameters, in the order they are bound; each
/// parameter is written as the database reads it when the statement runs
/// (`$1`, `$2`, … on PostgreSQL, `?` on SQLite).
#[derive(Debug, Clone, Default)]
pub struct Statement<'a> {
    /// The text, without the parameters.
    sql: String,
    params: Vec<Param<'a>>,
    /// Where in `sql` each parameter goes.
    at: Vec<usize>,
    /// The text with its parameters, as last run.
    run: String,
}

impl<'a> Statement<'a> {
    /// A statement starting with `sql`.
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            ..Self::default()
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Puts `head` before the text and `tail` after it: the statement so
    /// far becomes part of a larger one (a subquery).
    pub fn wrap(&mut self, head: &str, tail: &str) -> &mut Self {
        self.sql.insert_str(0, head);
        for at in &mut self.at {
            *at += head.len();
        }
        self.sql.push_str(tail);
        self
    }

    /// Appends a parameter holding `value`.
    pub fn bind(&mut self, value: impl Into<Param<'a>>) -> &mut Self {
        self.params.push(value.into());
        self.at.push(self.sql.len());
        self
    }

    /// Appends a parameter for each value, separated by commas: the inside
    /// of an `IN (…)`.
    pub fn list<P: Into<Param<'a>>>(&mut self, values: impl IntoIterator<Item = P>) -> &mut Self {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.bind(value);
        }
        self
    }

    /// Appends ` VALUES (…), (…)`, a row of parameters for each row.
    pub fn values<R>(&mut self, rows: impl IntoIterator<Item = R>) -> &mut Self
    where
        R: IntoIterator<Item = Param<'a>>,
    {
        self.sql.truncate(self.sql.trim_end().len());
        self.sql.push_str(" VALUES ");
        for (i, row) in rows.into_iter().enumerate() {
            self.sql.push_str(if i > 0 { ", (" } else { "(" });
            self.list(row);
            self.sql.push(')');
        }
        self
    }

    /// The statement with its parameters bound, to execute. Fails if the
    /// database cannot take a parameter.
    pub fn query<DB: Binds + Placeholders>(
        &mut self,
    ) -> Result<Query<'_, DB, DB::Arguments<'_>>, sqlx::Error>
    where
        for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    {
        self.run = self.text::<DB>();
        Ok(sqlx::query_with(&self.run, DB::arguments(&self.params)?))
    }

    /// The statement with its parameters bound, to fetch rows as `T`.
    /// Fails if the database cannot take a parameter.
    pub fn query_as<DB: Binds + Placeholders, T>(
        &mut self,
    ) -> Result<QueryAs<'_, DB, T, DB::Arguments<'_>>, sqlx::Error>
    where
        T: for<'r> FromRow<'r, DB::Row>,
        for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    {
        self.run = self.text::<DB>();
        Ok(sqlx::query_as_with(&self.run, DB::arguments(&self.params)?))
    }

    /// The text with each parameter written as `DB` reads it.
    fn text<DB: Placeholders>(&self) -> String {
        let mut text = String::with_capacity(self.sql.len() + 6 * self.at.len());
        let mut from = 0;
        for (i, &at) in self.at.iter().enumerate() {
            text.push_str(&self.sql[from..at]);
            DB::placeholder(&mut text, i + 1);
            from = at;
        }
        text.push_str(&self.sql[from..]);
        text
    }
}

/// How a database reads a statement's parameters.
pub trait Placeholders: Database {
    /// Writes parameter `n` (from 1) into `sql`.
    fn placeholder(sql: &mut String, n: usize);
}

/// SQLite takes its parameters in order, each a bare `?`. A numbered or
/// named parameter (`?1`, `$1`) has a name, and SQLite finds a name by
/// walking the names before it, while preparing and again for each value
/// bound: a batch insert of thousands of parameters spent more time on
/// its names than on inserting.
impl Placeholders for sqlx::Sqlite {
    fn placeholder(sql: &mut String, _: usize) {
        sql.push('?');
    }
}

impl Placeholders for sqlx::Postgres {
    fn placeholder(sql: &mut String, n: usize) {
        write!(sql, "${n}").expect("writing to a String");
    }
}

/// A database that takes every kind of [`Param`].
pub trait Binds: Database {
    /// Arguments holding `params`, in order.
    fn arguments<'q>(params: &'q [Param<'_>]) -> Result<Self::Arguments<'q>, sqlx::Error>;
}

impl<DB: Database> Binds for DB
where
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    Option<i64>: for<'q> Encode<'q, DB> + Type<DB>,
    bool: for<'q> Encode<'q, DB> + Type<DB>,
{
    fn arguments<'q>(params: &'q [Param<'_>]) -> Result<Self::Arguments<'q>, sqlx::Error> {
        let mut args = Self::Arguments::default();
        for param in params {
            match param {
                Param::Text(v) => args.add(v.as_deref()),
                Param::Int(v) => args.add(*v),
                Param::Bool(v) => args.add(*v),
                Param::Bytes(v) => args.add(*v),
            }
            .map_err(sqlx::Error::Encode)?;
        }
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_in_the_order_they_are_bound() {
        let mut q = Statement::new("SELECT x FROM t WHERE a = ");
        q.bind("a").push(" AND b IN (").list([1i64, 2, 3]).push(")");
        assert_eq!(
            q.text::<sqlx::Postgres>(),
            "SELECT x FROM t WHERE a = $1 AND b IN ($2, $3, $4)"
        );
        assert_eq!(q.params.len(), 4);
        assert_eq!(q.params[2], Param::Int(Some(2)));
    }

    #[test]
    fn values_writes_a_row_of_parameters_for_each_row() {
        let names = [String::from("x"), String::from("y")];
        let mut q = Statement::new("INSERT INTO t (n, v, f)");
        q.values(names.iter().map(|n| [p(n), p(Some(7)), p(false)]));
        assert_eq!(
            q.text::<sqlx::Postgres>(),
            "INSERT INTO t (n, v, f) VALUES ($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(q.params[3], Param::Text(Some(Cow::Borrowed("y"))));
    }

    #[test]
    fn a_wrapped_statement_keeps_its_parameters_in_place() {
        let mut q = Statement::new("SELECT x FROM t WHERE a = ");
        q.bind("a").push(" AND b = ").bind(2i64);
        q.wrap("SELECT COUNT(*) FROM (", ") r")
            .push(" WHERE r.x > ")
            .bind(3i64);
        assert_eq!(
            q.text::<sqlx::Postgres>(),
            "SELECT COUNT(*) FROM (SELECT x FROM t WHERE a = $1 AND b = $2) r WHERE r.x > $3"
        );
    }

    #[test]
    fn sqlite_takes_its_parameters_in_order() {
        let mut q = Statement::new("SELECT x FROM t WHERE a = ");
        q.bind("$5").push(" AND b IN (").list([1i64, 2]).push(")");
        assert_eq!(
            q.text::<sqlx::Sqlite>(),
            "SELECT x FROM t WHERE a = ? AND b IN (?, ?)"
        );
    }
}
