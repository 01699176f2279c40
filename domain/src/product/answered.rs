//! The orders a product answered last (refused, or released after holding
//! stock): a bounded window, not a history.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::ids::OrderId;

/// How many ended orders a product remembers. A saga that asks again within
/// this many later answers (a second runner, a restart from a recent
/// checkpoint) is answered by the earlier decision at no cost; one that
/// comes later is handled by the saga (see [`super::ActiveProduct`]).
pub const RECENTLY_ANSWERED: usize = 1024;

/// The last [`RECENTLY_ANSWERED`] orders refused or released, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecentlyAnswered(VecDeque<OrderId>);

impl RecentlyAnswered {
    /// Remembers `order_id`, forgetting the oldest past the window.
    pub fn record(&mut self, order_id: OrderId) {
        if self.0.len() >= RECENTLY_ANSWERED {
            self.0.pop_front();
        }
        self.0.push_back(order_id);
    }

    /// A linear scan: the window is small, and a scan keeps the state one
    /// plain list, cheap to clone and to snapshot.
    pub fn contains(&self, order_id: OrderId) -> bool {
        self.0.contains(&order_id)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
