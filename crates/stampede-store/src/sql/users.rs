//! Users in the SQL stores: few rows, written rarely, read at each login. The schema keeps
//! names unique; a clash is told as [`StoreError::DuplicateUser`].

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
        }
    };
}

sql_users!(Sqlite);
sql_users!(Postgres);
