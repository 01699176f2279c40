//! Size limits shared by both adapters.

/// The most bytes (event data plus metadata, over all events) one append may
/// carry: EventStoreDB's default maximum append size, so an append that the
/// embedded store accepts is one that EventStoreDB accepts too.
pub const MAX_APPEND_BYTES: usize = 1024 * 1024;

/// Longest event type name, in bytes.
pub(crate) const MAX_EVENT_TYPE_BYTES: usize = 256;
