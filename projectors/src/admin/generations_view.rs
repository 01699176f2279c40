//! A projection's next and previous generations as `GET /projections`
//! shows them: read from the generations' records and checkpoints in the
//! views, so every projector instance answers the same, whichever runs the
//! rebuild.

use event_store::Position;
use poem_openapi::{Enum, Object};
use serde::Deserialize;
use serde_json::Value;

use crate::generations::record::Generation as Record;
use crate::generations::{Slot, base_name};

/// The generations of a projection beside its live one.
#[derive(Object, Default)]
#[oai(rename_all = "camelCase")]
pub(super) struct Generations {
    /// What a rebuild is writing, or wrote and did not promote yet;
    /// absent when there is none.
    #[oai(skip_serializing_if_is_none)]
    next: Option<Generation>,
    /// What the last promotion replaced, kept for a rollback until it is
    /// dropped; absent when there is none.
    #[oai(skip_serializing_if_is_none)]
    previous: Option<Generation>,
}

/// Where the next generation stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "camelCase")]
pub(super) enum GenerationPhase {
    /// Its rebuild has not reached the head of the log yet.
    Building,
    /// It has reached the head and follows the log; not verified yet.
    Built,
    /// Its rows are the live ones' at the position of its verification.
    Verified,
    /// Its rows differ from the live ones (`verification.differences`).
    Differs,
}

/// A generation of a projection's tables beside the live one; `phase`,
/// like the fields after it, for the next generation only.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub(super) struct Generation {
    /// The version of the projection that built it.
    version: u32,
    /// When its rebuild started.
    started_at: chrono::DateTime<chrono::Utc>,
    /// The events its rebuild has applied.
    events_done: u64,
    /// The position of the last event it applied; absent before its first
    /// batch.
    #[oai(skip_serializing_if_is_none)]
    position: Option<String>,
    /// When its rebuild first reached the head of the log.
    #[oai(skip_serializing_if_is_none)]
    built_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was promoted (a previous generation that was once live).
    #[oai(skip_serializing_if_is_none)]
    promoted_at: Option<chrono::DateTime<chrono::Utc>>,
    #[oai(skip_serializing_if_is_none)]
    phase: Option<GenerationPhase>,
    /// The next generation only: the events its rebuild applied per
    /// second, from its start to when it was built (or to its last batch
    /// while it builds); absent before it has taken any time.
    #[oai(skip_serializing_if_is_none)]
    events_per_second: Option<f64>,
    /// The next generation only: seconds until it reaches the head of the
    /// log at the pace so far (time taken per log position, times the
    /// positions left), 0 once built; absent while that is unknown (before
    /// its first batch).
    #[oai(skip_serializing_if_is_none)]
    eta_seconds: Option<f64>,
    /// The next generation only: its last comparison with the live one.
    #[oai(skip_serializing_if_is_none)]
    verification: Option<Verification>,
}

/// How a generation compared with another at one log position.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub(super) struct Verification {
    at: chrono::DateTime<chrono::Utc>,
    /// The position both generations stood at; absent for an empty log.
    #[oai(skip_serializing_if_is_none)]
    position: Option<String>,
    /// The generation it was compared with (`live`).
    compared_with: String,
    /// Rows that differ, or are in one generation only; 0 when clean.
    differences: u64,
    /// Each table's rows in both generations.
    tables: Vec<VerifiedTable>,
    /// Admins only (they hold the rows' data): the first differences, in
    /// full.
    #[oai(skip_serializing_if_is_none)]
    first: Option<Vec<RowDifference>>,
}

/// A table's rows in the generation verified and in the one compared with.
#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub(super) struct VerifiedTable {
    table: String,
    rows: u64,
    compared_rows: u64,
}

/// A row that differs: its key, the columns that differ and both versions
/// (absent where a generation has no such row).
#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub(super) struct RowDifference {
    table: String,
    /// The row's primary key, column by column.
    key: Value,
    columns: Vec<String>,
    #[oai(skip_serializing_if_is_none)]
    row: Option<Value>,
    #[oai(skip_serializing_if_is_none)]
    compared_row: Option<Value>,
}

/// The parts of a stored verification report shown here.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct StoredReport {
    tables: Vec<VerifiedTable>,
    first: Vec<RowDifference>,
}

impl Generations {
    /// `projection`'s next and previous generations, from `records` (every
    /// generation's), `checkpoint` (a generation's position, by its key)
    /// and the head of the log.
    pub(super) fn of(
        projection: &str,
        records: &[Record],
        checkpoint: impl Fn(&str) -> Option<Position>,
        head: Option<Position>,
    ) -> Self {
        let generation = |slot: Slot| {
            let key = slot.name(projection);
            let record = records.iter().find(|record| record.generation == key)?;
            Some((record, checkpoint(&key)))
        };
        Self {
            next: generation(Slot::Next).map(|(record, position)| next(record, position, head)),
            previous: generation(Slot::Previous).map(|(record, position)| plain(record, position)),
        }
    }

    /// Without what only admins see: the rows of the differences.
    pub(super) fn redacted(&mut self) {
        if let Some(verification) = self.next.as_mut().and_then(|next| next.verification.as_mut()) {
            verification.first = None;
        }
    }
}

fn plain(record: &Record, position: Option<Position>) -> Generation {
    Generation {
        version: u32::try_from(record.version).unwrap_or_default(),
        started_at: record.started_at,
        events_done: u64::try_from(record.events_done).unwrap_or_default(),
        position: position.map(|p| p.to_string()),
        built_at: record.built_at,
        promoted_at: record.promoted_at,
        phase: None,
        events_per_second: None,
        eta_seconds: None,
        verification: None,
    }
}

fn next(record: &Record, position: Option<Position>, head: Option<Position>) -> Generation {
    Generation {
        phase: Some(phase(record)),
        events_per_second: events_per_second(record),
        eta_seconds: eta_seconds(record, position, head),
        verification: verification(record),
        ..plain(record, position)
    }
}

fn phase(record: &Record) -> GenerationPhase {
    match (record.differences, record.built_at) {
        (Some(0), _) => GenerationPhase::Verified,
        (Some(_), _) => GenerationPhase::Differs,
        (None, Some(_)) => GenerationPhase::Built,
        (None, None) => GenerationPhase::Building,
    }
}

/// Seconds from `from` to `to`, when `to` is later.
fn seconds(from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>) -> Option<f64> {
    let seconds = (to - from).num_milliseconds() as f64 / 1000.0;
    (seconds > 0.0).then_some(seconds)
}

/// Events per second until built: its last batches after that (catching
/// up, verifying) say nothing of the rebuild's pace.
fn events_per_second(record: &Record) -> Option<f64> {
    let until = record.built_at.unwrap_or(record.updated_at);
    Some(record.events_done as f64 / seconds(record.started_at, until)?)
}

/// The time taken so far per log position, times the positions left.
fn eta_seconds(record: &Record, position: Option<Position>, head: Option<Position>) -> Option<f64> {
    if record.built_at.is_some() {
        return Some(0.0);
    }
    let (position, head) = (position?.commit, head?.commit);
    if position >= head {
        return Some(0.0);
    }
    let elapsed = seconds(record.started_at, record.updated_at)?;
    (position > 0).then(|| elapsed * (head - position) as f64 / position as f64)
}

fn verification(record: &Record) -> Option<Verification> {
    let to_u64 = |value: i64| u64::try_from(value).unwrap_or_default();
    let report: StoredReport = record
        .report
        .as_deref()
        .and_then(|report| serde_json::from_str(report).ok())
        .unwrap_or_default();
    let position = match (record.verified_commit, record.verified_prepare) {
        (Some(commit), Some(prepare)) => Some(Position::new(to_u64(commit), to_u64(prepare)).to_string()),
        _ => None,
    };
    Some(Verification {
        at: record.verified_at?,
        position,
        compared_with: compared_label(record.compared_with.as_deref()?),
        differences: to_u64(record.differences?),
        tables: report.tables,
        first: Some(report.first),
    })
}

/// A generation's label from its key (`catalog` → `live`).
fn compared_label(key: &str) -> String {
    let base = base_name(key);
    Slot::ALL
        .iter()
        .find(|slot| slot.name(base) == key)
        .map_or(key, |slot| slot.label())
        .to_owned()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn record(seconds_in: i64, events_done: i64, built: bool) -> Record {
        let started_at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let updated_at = started_at + chrono::Duration::seconds(seconds_in);
        Record {
            generation: "orders__next".to_owned(),
            projection: "orders".to_owned(),
            version: 2,
            started_at,
            updated_at,
            events_done,
            built_at: built.then_some(updated_at),
            verified_at: None,
            verified_commit: None,
            verified_prepare: None,
            compared_with: None,
            differences: None,
            report: None,
            promoted_at: None,
        }
    }

    #[test]
    fn the_pace_and_the_time_left_follow_the_positions() {
        let building = record(10, 500, false);
        assert_eq!(events_per_second(&building), Some(50.0));
        let (at, head) = (Some(Position::at(250)), Some(Position::at(1_000)));
        assert_eq!(eta_seconds(&building, at, head), Some(30.0), "10 s for 250, 750 left");
        assert_eq!(eta_seconds(&building, None, head), None, "no batch yet");
        assert_eq!(eta_seconds(&record(0, 0, false), at, head), None, "no time taken yet");
        assert_eq!(eta_seconds(&record(10, 500, true), at, head), Some(0.0), "built");
        assert_eq!(events_per_second(&record(0, 0, false)), None);
    }

    #[test]
    fn the_phase_follows_the_build_and_the_verification() {
        let mut next = record(10, 500, false);
        assert_eq!(phase(&next), GenerationPhase::Building);
        next.built_at = Some(next.updated_at);
        assert_eq!(phase(&next), GenerationPhase::Built);
        next.differences = Some(0);
        assert_eq!(phase(&next), GenerationPhase::Verified);
        next.differences = Some(3);
        assert_eq!(phase(&next), GenerationPhase::Differs);
    }

    #[test]
    fn a_generation_is_named_by_its_label() {
        assert_eq!(compared_label("catalog"), "live");
        assert_eq!(compared_label("catalog__prev"), "previous");
    }
}
