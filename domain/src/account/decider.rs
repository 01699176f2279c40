use super::{AccountEvent, DisplayName, PasswordHash, Role, Username};
use crate::Timestamp;
use crate::decider::Decider;
use crate::ids::UserId;

/// The account aggregate.
pub struct Account;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCommand {
    /// The id must be `UserId::for_username(&username)`.
    Register {
        user_id: UserId,
        username: Username,
        display_name: DisplayName,
        password_hash: PasswordHash,
        role: Role,
        now: Timestamp,
    },
    ChangePassword {
        password_hash: PasswordHash,
        now: Timestamp,
    },
    ChangeRole {
        role: Role,
        now: Timestamp,
    },
    /// The user changes their own password: refused unless `check` shows
    /// the current one verified against the hash the account holds now and
    /// the new one differs from it.
    ChangeOwnPassword {
        check: PasswordCheck,
        password_hash: PasswordHash,
        now: Timestamp,
    },
    /// Every token issued so far stops working (the credential version
    /// rises).
    LogOutEverywhere {
        now: Timestamp,
    },
}

/// What the command side found when it checked a user's own password
/// change. Hashing is I/O-heavy and stays outside the domain, so the
/// command carries its outcome, and the hash it was made against: a check
/// made against a hash the account no longer holds proves nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordCheck {
    /// The stored hash the current password was verified against.
    pub checked_against: PasswordHash,
    /// Whether the current password the user gave verified.
    pub current_verified: bool,
    /// Whether the new password is the current one (compared as text: once
    /// the current one verified, that is the same as verifying the new one
    /// against the hash, without a second hash).
    pub same_as_current: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AccountState {
    #[default]
    Unregistered,
    Registered(RegisteredAccount),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredAccount {
    pub user_id: UserId,
    pub username: Username,
    pub display_name: DisplayName,
    pub password_hash: PasswordHash,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("the username is taken")]
    UsernameTaken,
    #[error("the user id does not belong to the username")]
    IdMismatch,
    #[error("no such account")]
    NotFound,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("the new password is the current one")]
    SamePassword,
    #[error("the password was changed meanwhile")]
    PasswordChangedMeanwhile,
}

impl Decider for Account {
    type State = AccountState;
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn decide(state: &AccountState, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountCommand as C;
        use AccountState::{Registered, Unregistered};
        match (state, command) {
            (
                Unregistered,
                C::Register {
                    user_id,
                    username,
                    display_name,
                    password_hash,
                    role,
                    now,
                },
            ) => register(user_id, username, display_name, password_hash, role, now),
            (Registered(_), C::Register { .. }) => Err(AccountError::UsernameTaken),
            (Unregistered, _) => Err(AccountError::NotFound),
            (Registered(account), C::ChangePassword { password_hash, now }) => {
                Ok(change_password(account, password_hash, now))
            }
            (Registered(account), C::ChangeRole { role, now }) => Ok(change_role(account, role, now)),
            (
                Registered(account),
                C::ChangeOwnPassword {
                    check,
                    password_hash,
                    now,
                },
            ) => {
                check_password_change(account, &check)?;
                Ok(change_password(account, password_hash, now))
            }
            (Registered(account), C::LogOutEverywhere { now }) => Ok(vec![AccountEvent::LoggedOutEverywhere {
                user_id: account.user_id,
                at: now,
            }]),
        }
    }

    fn evolve(state: AccountState, event: &AccountEvent) -> AccountState {
        match (state, event) {
            (
                AccountState::Unregistered,
                AccountEvent::Registered {
                    user_id,
                    username,
                    display_name,
                    password_hash,
                    role,
                    ..
                },
            ) => AccountState::Registered(RegisteredAccount {
                user_id: *user_id,
                username: username.clone(),
                display_name: display_name.clone(),
                password_hash: password_hash.clone(),
                role: *role,
            }),
            (AccountState::Registered(account), AccountEvent::PasswordChanged { password_hash, .. }) => {
                AccountState::Registered(RegisteredAccount {
                    password_hash: password_hash.clone(),
                    ..account
                })
            }
            (AccountState::Registered(account), AccountEvent::RoleChanged { role, .. }) => {
                AccountState::Registered(RegisteredAccount { role: *role, ..account })
            }
            (state, _) => state,
        }
    }
}

fn register(
    user_id: UserId,
    username: Username,
    display_name: DisplayName,
    password_hash: PasswordHash,
    role: Role,
    now: Timestamp,
) -> Result<Vec<AccountEvent>, AccountError> {
    if user_id != UserId::for_username(&username) {
        return Err(AccountError::IdMismatch);
    }
    Ok(vec![AccountEvent::Registered {
        user_id,
        username,
        display_name,
        password_hash,
        role,
        at: now,
    }])
}

fn change_password(account: &RegisteredAccount, password_hash: PasswordHash, now: Timestamp) -> Vec<AccountEvent> {
    vec![AccountEvent::PasswordChanged {
        user_id: account.user_id,
        password_hash,
        at: now,
    }]
}

/// Whether `check` allows the user to change their own password: made
/// against the hash the account holds, the current password verified, the
/// new one different. The command side asks this before hashing the new
/// password, so a refused change costs no hash; `decide` asks it again.
pub fn check_password_change(account: &RegisteredAccount, check: &PasswordCheck) -> Result<(), AccountError> {
    if check.checked_against != account.password_hash {
        return Err(AccountError::PasswordChangedMeanwhile);
    }
    if !check.current_verified {
        return Err(AccountError::WrongPassword);
    }
    if check.same_as_current {
        return Err(AccountError::SamePassword);
    }
    Ok(())
}

fn change_role(account: &RegisteredAccount, role: Role, now: Timestamp) -> Vec<AccountEvent> {
    if account.role == role {
        return vec![];
    }
    vec![AccountEvent::RoleChanged {
        user_id: account.user_id,
        role,
        at: now,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::assert_round_trips;

    fn now() -> Timestamp {
        chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn register(username: &str) -> AccountCommand {
        let username = Username::parse(username).unwrap();
        AccountCommand::Register {
            user_id: UserId::for_username(&username),
            username,
            display_name: DisplayName::parse("Alice").unwrap(),
            password_hash: PasswordHash::from_phc("$argon2id$hash".to_owned()),
            role: Role::Customer,
            now: now(),
        }
    }

    fn registered(username: &str) -> Vec<AccountEvent> {
        Account::decide(&AccountState::Unregistered, register(username)).unwrap()
    }

    #[test]
    fn registers_when_unregistered() {
        let events = registered("alice");
        assert!(matches!(
            &events[..],
            [AccountEvent::Registered { username, role: Role::Customer, .. }] if username.as_str() == "alice"
        ));
    }

    #[test]
    fn refuses_a_taken_username() {
        let state = Account::fold(&registered("alice"));
        assert_eq!(
            Account::decide(&state, register("ALICE")),
            Err(AccountError::UsernameTaken)
        );
    }

    #[test]
    fn refuses_an_id_that_does_not_belong_to_the_username() {
        let AccountCommand::Register {
            username,
            display_name,
            password_hash,
            role,
            now,
            ..
        } = register("alice")
        else {
            unreachable!()
        };
        let command = AccountCommand::Register {
            user_id: UserId::for_username(&Username::parse("bob").unwrap()),
            username,
            display_name,
            password_hash,
            role,
            now,
        };
        assert_eq!(
            Account::decide(&AccountState::Unregistered, command),
            Err(AccountError::IdMismatch)
        );
    }

    #[test]
    fn changes_password_and_role_of_a_registered_account() {
        let mut events = registered("alice");
        let state = Account::fold(&events);
        let new_hash = PasswordHash::from_phc("$argon2id$new".to_owned());
        events.extend(
            Account::decide(
                &state,
                AccountCommand::ChangePassword {
                    password_hash: new_hash.clone(),
                    now: now(),
                },
            )
            .unwrap(),
        );
        events.extend(
            Account::decide(
                &state,
                AccountCommand::ChangeRole {
                    role: Role::Admin,
                    now: now(),
                },
            )
            .unwrap(),
        );
        let AccountState::Registered(account) = Account::fold(&events) else {
            panic!("registered")
        };
        assert_eq!(account.password_hash, new_hash);
        assert_eq!(account.role, Role::Admin);
    }

    #[test]
    fn granting_the_role_already_held_changes_nothing() {
        let state = Account::fold(&registered("alice"));
        let command = AccountCommand::ChangeRole {
            role: Role::Customer,
            now: now(),
        };
        assert_eq!(Account::decide(&state, command), Ok(vec![]));
    }

    #[test]
    fn refuses_changes_to_an_unregistered_account() {
        let command = AccountCommand::ChangeRole {
            role: Role::Admin,
            now: now(),
        };
        assert_eq!(
            Account::decide(&AccountState::Unregistered, command),
            Err(AccountError::NotFound)
        );
    }

    fn alice() -> (AccountState, PasswordHash) {
        let state = Account::fold(&registered("alice"));
        let AccountState::Registered(account) = &state else {
            unreachable!()
        };
        let hash = account.password_hash.clone();
        (state, hash)
    }

    fn own_change(check: PasswordCheck) -> AccountCommand {
        AccountCommand::ChangeOwnPassword {
            check,
            password_hash: PasswordHash::from_phc("$argon2id$new".to_owned()),
            now: now(),
        }
    }

    #[test]
    fn changes_its_own_password_when_the_current_one_verified_and_the_new_one_differs() {
        let (state, hash) = alice();
        let check = PasswordCheck {
            checked_against: hash,
            current_verified: true,
            same_as_current: false,
        };
        let events = Account::decide(&state, own_change(check)).unwrap();
        assert!(matches!(&events[..], [AccountEvent::PasswordChanged { .. }]));
    }

    #[test]
    fn refuses_an_own_password_change_with_a_wrong_current_password() {
        let (state, hash) = alice();
        let check = PasswordCheck {
            checked_against: hash,
            current_verified: false,
            same_as_current: false,
        };
        assert_eq!(
            Account::decide(&state, own_change(check)),
            Err(AccountError::WrongPassword)
        );
    }

    #[test]
    fn refuses_an_own_password_change_to_the_same_password() {
        let (state, hash) = alice();
        let check = PasswordCheck {
            checked_against: hash,
            current_verified: true,
            same_as_current: true,
        };
        assert_eq!(
            Account::decide(&state, own_change(check)),
            Err(AccountError::SamePassword)
        );
    }

    #[test]
    fn refuses_an_own_password_change_checked_against_a_hash_replaced_meanwhile() {
        let (state, _) = alice();
        let check = PasswordCheck {
            checked_against: PasswordHash::from_phc("$argon2id$older".to_owned()),
            current_verified: true,
            same_as_current: false,
        };
        assert_eq!(
            Account::decide(&state, own_change(check)),
            Err(AccountError::PasswordChangedMeanwhile)
        );
    }

    #[test]
    fn logging_out_everywhere_appends_an_event_and_needs_an_account() {
        let (state, _) = alice();
        let command = || AccountCommand::LogOutEverywhere { now: now() };
        let events = Account::decide(&state, command()).unwrap();
        assert!(matches!(&events[..], [AccountEvent::LoggedOutEverywhere { .. }]));
        assert_eq!(
            Account::decide(&AccountState::Unregistered, command()),
            Err(AccountError::NotFound)
        );
    }

    #[test]
    fn events_round_trip_through_the_store_encoding() {
        let mut events = registered("alice");
        let user_id = UserId::for_username(&Username::parse("alice").unwrap());
        events.push(AccountEvent::PasswordChanged {
            user_id,
            password_hash: PasswordHash::from_phc("x".to_owned()),
            at: now(),
        });
        events.push(AccountEvent::RoleChanged {
            user_id,
            role: Role::Admin,
            at: now(),
        });
        events.push(AccountEvent::LoggedOutEverywhere { user_id, at: now() });
        assert_round_trips(&events);
    }
}
