//! API tokens in the SQL stores: few rows, written rarely, read on every server request.
//!
//! A token's name is unique among tokens that are not revoked and its hash among all of
//! them; the schema enforces both with unique indexes. Creation checks for a clash first, in
//! a transaction no other token creation can interleave with (SQLite's single writer,
//! PostgreSQL's table lock), so that the error says which one clashed and a refused token
//! does not use up an id.

use sqlx::postgres::Postgres;
use sqlx::sqlite::Sqlite;
use sqlx::{Database, Row};

use super::statement::db_id;
use super::{SqlStore, stored_id};
use crate::error::{StoreError, TokenClash};
use crate::store::{check_token, storable_hash};
use crate::types::{NewToken, TokenId, TokenRecord};

/// The token columns every token query selects, in the order `token_from_row` reads them.
const TOKEN_COLUMNS: &str =
    "id, name, project, hash, created_at_us, revoked_at_us, expires_at_us, user_name";

/// Stamps the token operations onto `SqlStore<$db>`, like `sql_store!`.
macro_rules! sql_tokens {
    ($db:ty) => {
        impl SqlStore<$db> {
            fn token_from_row(row: &<$db as Database>::Row) -> Result<TokenRecord, sqlx::Error> {
                Ok(TokenRecord {
                    id: stored_id(row.try_get(0)?),
                    name: row.try_get(1)?,
                    project: row.try_get(2)?,
                    hash: row.try_get(3)?,
                    created_at_us: row.try_get(4)?,
                    revoked_at_us: row.try_get(5)?,
                    expires_at_us: row.try_get(6)?,
                    user_name: row.try_get(7)?,
                })
            }

            pub(super) async fn create_token_now(
                &self,
                token: NewToken,
            ) -> Result<TokenId, StoreError> {
                check_token(&token)?;
                let failed = StoreError::query("create a token");
                let mut tx = self
                    .write
                    .begin_with(self.dialect.begin_write)
                    .await
                    .map_err(failed)?;
                if let Some(lock) = self.dialect.lock_tokens {
                    sqlx::query(lock).execute(&mut *tx).await.map_err(failed)?;
                }
                let (hash_taken, name_taken): (bool, bool) = sqlx::query_as(
                    "SELECT EXISTS (SELECT 1 FROM tokens WHERE hash = $1), \
                     EXISTS (SELECT 1 FROM tokens WHERE name = $2 AND revoked_at_us IS NULL)",
                )
                .bind(&token.hash)
                .bind(&token.name)
                .fetch_one(&mut *tx)
                .await
                .map_err(failed)?;
                let clash = match (hash_taken, name_taken) {
                    (true, _) => Some(TokenClash::Hash),
                    (false, true) => Some(TokenClash::Name),
                    (false, false) => None,
                };
                if let Some(clash) = clash {
                    tx.rollback().await.map_err(failed)?;
                    return Err(StoreError::DuplicateToken {
                        name: token.name,
                        clash,
                    });
                }
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO tokens (name, project, hash, created_at_us, expires_at_us, \
                     user_name) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(&token.name)
                .bind(&token.project)
                .bind(&token.hash)
                .bind(token.created_at_us)
                .bind(token.expires_at_us)
                .bind(&token.user_name)
                .fetch_one(&mut *tx)
                .await
                .map_err(failed)?;
                tx.commit().await.map_err(failed)?;
                Ok(stored_id(id))
            }

            pub(super) async fn token_by_hash_now(
                &self,
                hash: &str,
            ) -> Result<Option<TokenRecord>, StoreError> {
                if !storable_hash(hash) {
                    return Ok(None);
                }
                let failed = StoreError::query("look a token up");
                let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(hash)
                    .fetch_optional(&self.read)
                    .await
                    .map_err(failed)?;
                row.map(|row| Self::token_from_row(&row))
                    .transpose()
                    .map_err(failed)
            }

            pub(super) async fn list_tokens_now(&self) -> Result<Vec<TokenRecord>, StoreError> {
                let failed = StoreError::query("list tokens");
                let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.read)
                    .await
                    .map_err(failed)?;
                rows.iter()
                    .map(Self::token_from_row)
                    .collect::<Result<_, _>>()
                    .map_err(failed)
            }

            pub(super) async fn revoke_token_now(
                &self,
                id: TokenId,
                at_us: i64,
            ) -> Result<bool, StoreError> {
                let Some(id) = db_id(id) else {
                    return Ok(false);
                };
                let revoked = sqlx::query(
                    "UPDATE tokens SET revoked_at_us = $1 WHERE id = $2 AND revoked_at_us IS NULL",
                )
                .bind(at_us)
                .bind(id)
                .execute(&self.write)
                .await
                .map_err(StoreError::query("revoke a token"))?;
                Ok(revoked.rows_affected() > 0)
            }
        }
    };
}

sql_tokens!(Sqlite);
sql_tokens!(Postgres);
