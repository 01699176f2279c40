//! User profiles: who registered, under which name and role. Password
//! hashes are never copied here.

use async_trait::async_trait;
use domain::account::{AccountEvent, Role};
use event_store::RecordedEvent;
use migrations::views::users;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set};

use crate::projection::{ApplyError, Projection, decode};

pub struct Users;

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Customer => "customer",
        Role::Admin => "admin",
    }
}

#[async_trait]
impl Projection for Users {
    fn name(&self) -> &'static str {
        "users"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["users"]
    }

    async fn apply(&self, transaction: &DatabaseTransaction, event: &RecordedEvent) -> Result<(), ApplyError> {
        match decode::<AccountEvent>(event)? {
            Some(AccountEvent::Registered {
                user_id,
                username,
                display_name,
                role,
                at,
                ..
            }) => {
                let row = users::ActiveModel {
                    user_id: Set(user_id.as_uuid()),
                    username: Set(username.to_string()),
                    display_name: Set(display_name.to_string()),
                    role: Set(role_name(role).to_owned()),
                    registered_at: Set(at),
                };
                users::Entity::insert(row)
                    .on_conflict(
                        OnConflict::column(users::Column::UserId)
                            .update_columns([users::Column::DisplayName, users::Column::Role])
                            .to_owned(),
                    )
                    .exec_without_returning(transaction)
                    .await?;
            }
            Some(AccountEvent::RoleChanged { user_id, role, .. }) => {
                users::Entity::update_many()
                    .col_expr(users::Column::Role, Expr::value(role_name(role)))
                    .filter(users::Column::UserId.eq(user_id.as_uuid()))
                    .exec(transaction)
                    .await?;
            }
            Some(AccountEvent::PasswordChanged { .. }) | None => {}
        }
        Ok(())
    }
}
