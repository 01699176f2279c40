//! The roster of administrators: the one place that sees every role
//! change, so "an administrator always remains" can be decided.
//!
//! An account's decider sees one account; "the last administrator cannot
//! be demoted" needs all of them. So every role change an administrator
//! makes through the API is decided first here, on a single stream
//! (`administrators-roster`) appended at the revision it was decided on:
//! two administrators demoting each other at the same moment are decided
//! one after the other, and the second finds that the first has left
//! (actor dismissed, or the target the last one). Only then is the
//! account's own `AccountRoleChanged` appended (which retires the user's
//! tokens).
//!
//! What this guarantees: an administrator can dismiss neither
//! themselves nor the roster's last administrator, and only a member of
//! the roster (not dismissed meanwhile) may appoint or dismiss. As every
//! dismissal is made by a member other than the one dismissed, and the
//! roster serializes them, at least one member always remains, and its
//! account holds the role (a member is written to the roster before its
//! account is promoted, and dismissed from it before its account is
//! demoted; a crash between the two appends leaves the account behind the
//! roster until the same request is retried, which appends only what is
//! missing). The configured administrator (`ADMIN_USERNAME`) is appointed
//! at every start. Administrators made before the roster existed are not
//! in it until appointed again.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::decider::Decider;
use crate::event::DomainEvent;
use crate::ids::UserId;

/// The roster's stream id: there is one roster.
pub const ROSTER: &str = "roster";

pub struct Administrators;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterCommand {
    /// `user_id` becomes an administrator; `by` is the acting member, or
    /// `None` for the configured administrator at start-up.
    Appoint {
        user_id: UserId,
        by: Option<UserId>,
        now: Timestamp,
    },
    /// `user_id` stops being an administrator, by the member `by`.
    Dismiss {
        user_id: UserId,
        by: UserId,
        now: Timestamp,
    },
}

/// The members; bounded by the number of administrators.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Roster {
    pub members: BTreeSet<UserId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    #[error("an administrator cannot remove their own role")]
    SelfDismissal,
    #[error("the last administrator cannot be demoted")]
    LastAdministrator,
    /// The actor's token says admin, but the roster no longer (or not
    /// yet) counts them.
    #[error("the acting user is not an administrator")]
    NotAnAdministrator,
}

/// What happened to the roster. Type names are stable: never rename them.
/// The acting administrator is in the event's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum RosterEvent {
    #[serde(rename = "AdministratorAppointed", rename_all = "camelCase")]
    Appointed { user_id: UserId, at: Timestamp },
    #[serde(rename = "AdministratorDismissed", rename_all = "camelCase")]
    Dismissed { user_id: UserId, at: Timestamp },
}

impl DomainEvent for RosterEvent {
    const CATEGORY: &'static str = "administrators";
    const EVENT_TYPES: &'static [&'static str] = &["AdministratorAppointed", "AdministratorDismissed"];
}

impl Decider for Administrators {
    type State = Roster;
    type Command = RosterCommand;
    type Event = RosterEvent;
    type Error = RosterError;

    fn decide(roster: &Roster, command: RosterCommand) -> Result<Vec<RosterEvent>, RosterError> {
        match command {
            RosterCommand::Appoint { user_id, by, now } => appoint(roster, user_id, by, now),
            RosterCommand::Dismiss { user_id, by, now } => dismiss(roster, user_id, by, now),
        }
    }

    fn evolve(mut roster: Roster, event: &RosterEvent) -> Roster {
        match event {
            RosterEvent::Appointed { user_id, .. } => roster.members.insert(*user_id),
            RosterEvent::Dismissed { user_id, .. } => roster.members.remove(user_id),
        };
        roster
    }
}

fn appoint(
    roster: &Roster,
    user_id: UserId,
    by: Option<UserId>,
    now: Timestamp,
) -> Result<Vec<RosterEvent>, RosterError> {
    if by.is_some_and(|by| !roster.members.contains(&by)) {
        return Err(RosterError::NotAnAdministrator);
    }
    if roster.members.contains(&user_id) {
        return Ok(vec![]);
    }
    Ok(vec![RosterEvent::Appointed { user_id, at: now }])
}

fn dismiss(roster: &Roster, user_id: UserId, by: UserId, now: Timestamp) -> Result<Vec<RosterEvent>, RosterError> {
    let member = |id: &UserId| roster.members.contains(id);
    if user_id == by {
        return Err(RosterError::SelfDismissal);
    }
    if member(&user_id) && roster.members.len() == 1 {
        return Err(RosterError::LastAdministrator);
    }
    if !member(&by) {
        return Err(RosterError::NotAnAdministrator);
    }
    if !member(&user_id) {
        return Ok(vec![]);
    }
    Ok(vec![RosterEvent::Dismissed { user_id, at: now }])
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::event::assert_round_trips;

    fn now() -> Timestamp {
        chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn user(n: u128) -> UserId {
        UserId::from_uuid(Uuid::from_u128(n))
    }

    /// A roster of `members`, appointed at start-up.
    fn roster(members: &[u128]) -> Roster {
        let events: Vec<RosterEvent> = members
            .iter()
            .map(|n| RosterEvent::Appointed {
                user_id: user(*n),
                at: now(),
            })
            .collect();
        Administrators::fold(&events)
    }

    fn dismiss(target: u128, by: u128) -> RosterCommand {
        RosterCommand::Dismiss {
            user_id: user(target),
            by: user(by),
            now: now(),
        }
    }

    fn appoint(target: u128, by: Option<u128>) -> RosterCommand {
        RosterCommand::Appoint {
            user_id: user(target),
            by: by.map(user),
            now: now(),
        }
    }

    #[test]
    fn a_member_appoints_and_dismisses_others() {
        let events = Administrators::decide(&roster(&[1]), appoint(2, Some(1))).unwrap();
        let after = events.iter().fold(roster(&[1]), Administrators::evolve);
        assert_eq!(after, roster(&[1, 2]));
        let dismissed = Administrators::decide(&after, dismiss(2, 1)).unwrap();
        assert_eq!(
            dismissed,
            vec![RosterEvent::Dismissed {
                user_id: user(2),
                at: now()
            }]
        );
        assert_round_trips(&[events, dismissed].concat());
    }

    #[test]
    fn appointing_a_member_or_dismissing_a_non_member_changes_nothing() {
        assert_eq!(
            Administrators::decide(&roster(&[1, 2]), appoint(2, Some(1))),
            Ok(vec![])
        );
        assert_eq!(Administrators::decide(&roster(&[1]), dismiss(3, 1)), Ok(vec![]));
        assert_eq!(Administrators::decide(&roster(&[1]), appoint(1, None)), Ok(vec![]));
    }

    #[test]
    fn refuses_a_self_dismissal() {
        assert_eq!(
            Administrators::decide(&roster(&[1, 2]), dismiss(1, 1)),
            Err(RosterError::SelfDismissal)
        );
    }

    #[test]
    fn refuses_to_dismiss_the_last_administrator() {
        assert_eq!(
            Administrators::decide(&roster(&[1]), dismiss(1, 2)),
            Err(RosterError::LastAdministrator)
        );
    }

    #[test]
    fn refuses_an_actor_outside_the_roster() {
        assert_eq!(
            Administrators::decide(&roster(&[1, 2]), dismiss(1, 3)),
            Err(RosterError::NotAnAdministrator)
        );
        assert_eq!(
            Administrators::decide(&roster(&[1]), appoint(4, Some(3))),
            Err(RosterError::NotAnAdministrator)
        );
    }

    /// Two members demoting each other at once: both decide on the same
    /// roster, one appends first, the other is decided again on the roster
    /// after it and refused.
    #[test]
    fn of_two_administrators_demoting_each_other_only_the_first_succeeds() {
        let both = roster(&[1, 2]);
        let first = Administrators::decide(&both, dismiss(2, 1)).unwrap();
        assert!(
            Administrators::decide(&both, dismiss(1, 2)).is_ok(),
            "alone, each would pass"
        );
        let after_first = first.iter().fold(both, Administrators::evolve);
        assert_eq!(
            Administrators::decide(&after_first, dismiss(1, 2)),
            Err(RosterError::LastAdministrator)
        );
    }
}
