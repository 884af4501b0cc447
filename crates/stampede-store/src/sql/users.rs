//! Users in the SQL stores: few rows, written rarely, read at each login. The schema keeps
//! names unique; a clash is told as [`StoreError::DuplicateUser`]. Removing a user revokes
//! the tokens issued to it in the same transaction, so no login token outlives its user.

use sqlx::postgres::Postgres;
use sqlx::sqlite::Sqlite;
use sqlx::{Database, Row};

use super::{SqlStore, stored_id};
use crate::error::StoreError;
use crate::store::{check_user, storable_name};
use crate::types::{NewUser, UserId, UserRecord};

/// Stamps the user operations onto `SqlStore<$db>`, like `sql_store!`.
macro_rules! sql_users {
    ($db:ty) => {
        impl SqlStore<$db> {
            fn user_from_row(row: &<$db as Database>::Row) -> Result<UserRecord, sqlx::Error> {
                Ok(UserRecord {
                    id: stored_id(row.try_get(0)?),
                    name: row.try_get(1)?,
                    project: row.try_get(2)?,
                    password_hash: row.try_get(3)?,
                    created_at_us: row.try_get(4)?,
                })
            }

            pub(super) async fn create_user_now(&self, user: NewUser) -> Result<UserId, StoreError> {
                check_user(&user)?;
                let inserted: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO users (name, project, password_hash, created_at_us) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING RETURNING id",
                )
                .bind(&user.name)
                .bind(&user.project)
                .bind(&user.password_hash)
                .bind(user.created_at_us)
                .fetch_optional(&self.write)
                .await
                .map_err(StoreError::query("create a user"))?;
                match inserted {
                    Some(id) => Ok(stored_id(id)),
                    None => Err(StoreError::DuplicateUser { name: user.name }),
                }
            }

            pub(super) async fn user_by_name_now(
                &self,
                name: &str,
            ) -> Result<Option<UserRecord>, StoreError> {
                if !storable_name(name) {
                    return Ok(None);
                }
                let failed = StoreError::query("look a user up");
                let row = sqlx::query(
                    "SELECT id, name, project, password_hash, created_at_us FROM users WHERE name = $1",
                )
                .bind(name)
                .fetch_optional(&self.read)
                .await
                .map_err(failed)?;
                row.map(|row| Self::user_from_row(&row))
                    .transpose()
                    .map_err(failed)
            }

            pub(super) async fn list_users_now(&self) -> Result<Vec<UserRecord>, StoreError> {
                let failed = StoreError::query("list users");
                let rows = sqlx::query(
                    "SELECT id, name, project, password_hash, created_at_us FROM users ORDER BY id",
                )
                .fetch_all(&self.read)
                .await
                .map_err(failed)?;
                rows.iter()
                    .map(Self::user_from_row)
                    .collect::<Result<_, _>>()
                    .map_err(failed)
            }

            pub(super) async fn remove_user_now(
                &self,
                name: &str,
                at_us: i64,
            ) -> Result<Option<u64>, StoreError> {
                if !storable_name(name) {
                    return Ok(None);
                }
                let failed = StoreError::query("remove a user");
                let mut tx = self
                    .write
                    .begin_with(self.dialect.begin_write)
                    .await
                    .map_err(failed)?;
                let removed = sqlx::query("DELETE FROM users WHERE name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
                if removed.rows_affected() == 0 {
                    tx.rollback().await.map_err(failed)?;
                    return Ok(None);
                }
                let revoked = sqlx::query(
                    "UPDATE tokens SET revoked_at_us = $1 \
                     WHERE user_name = $2 AND revoked_at_us IS NULL",
                )
                .bind(at_us)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
                tx.commit().await.map_err(failed)?;
                Ok(Some(revoked.rows_affected()))
            }
        }
    };
}

sql_users!(Sqlite);
sql_users!(Postgres);
