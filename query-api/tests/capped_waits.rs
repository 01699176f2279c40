//! A read waits for its `minPosition` with at most `READ_MAX_WAITERS`
//! reads waiting at a time: past the cap it answers 503 with
//! `Retry-After` at once, as a wait that ran out answers, and once the
//! waiting ones are answered the next one waits again.
//!
//! Alone in its test binary: it reads the process's metrics, which every
//! server in the process shares.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use api_common::verifier::Verifier;
use command_api::auth::tokens::SigningKey;
use tokio_util::sync::CancellationToken;

/// How long a read waits: long enough that "at once" is far below it.
const WAIT: Duration = Duration::from_secs(3);

/// A position no projection reaches: nothing runs them.
const AHEAD: &str = "/products?minPosition=1000";

/// Status, `Retry-After`, content type, and how long the answer took.
struct Answer {
    status: u16,
    retry_after: Option<String>,
    content_type: String,
    took: Duration,
}

async fn get(http: &reqwest::Client, url: String) -> Answer {
    let started = Instant::now();
    let response = http.get(url).send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let (retry_after, content_type) = (header("retry-after"), header("content-type").unwrap_or_default());
    let status = response.status().as_u16();
    response.bytes().await.unwrap();
    Answer {
        status,
        retry_after,
        content_type,
        took: started.elapsed(),
    }
}

/// The value of the sample `series` (name and labels) on `/metrics`.
async fn metric(http: &reqwest::Client, base: &str, series: &str) -> Option<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

fn assert_timed_out(answer: &Answer) {
    assert_eq!(answer.status, 503);
    assert_eq!(answer.retry_after.as_deref(), Some("1"));
    assert_eq!(answer.content_type, "application/problem+json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_the_cap_a_read_is_refused_at_once_and_waits_again_once_places_free_up() {
    let (views_url, _folder) = test_support::sqlite_views();
    let db = views::connect(&views_url, 4).await.unwrap();
    views::migrate(&db).await.unwrap();
    let public_key = SigningKey::generate().unwrap().public_key_pem();
    let config = query_api::config::Config {
        views_url,
        pool: views::Pool::sized(4),
        startup_wait: api_common::startup_wait::DEFAULT_STARTUP_WAIT,
        listen: ([127, 0, 0, 1], 0).into(),
        verifier: Verifier::from_pem(&public_key, "shop".to_owned(), "shop".to_owned()).unwrap(),
        read_wait: WAIT,
        http: Default::default(),
        max_read_waiters: 2,
        metrics_addr: None,
    };
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let api = query_api::startup::start(db, config, shutdown).await.unwrap();
    let base = format!("http://{}", api.address);
    let http = reqwest::Client::new();
    let waiting = r#"waiting_requests{wait="min-position"}"#;
    let capped = r#"waits_capped_total{wait="min-position"}"#;

    let park = || get(&http, format!("{base}{AHEAD}"));
    let past_the_cap = async {
        test_support::wait_for("two reads waiting for their position", || async {
            match metric(&http, &base, waiting).await {
                Some(2.0) => Ok(()),
                other => Err(format!("{waiting} is {other:?}")),
            }
        })
        .await;
        park().await
    };
    let (first, second, third) = tokio::join!(park(), park(), past_the_cap);

    assert_timed_out(&third);
    assert!(
        third.took < WAIT / 3,
        "past the cap it answered after {:?}, not at once",
        third.took
    );
    assert_eq!(metric(&http, &base, capped).await, Some(1.0));
    for parked in [first, second] {
        assert_timed_out(&parked);
        assert!(parked.took >= WAIT, "a parked read waited only {:?}", parked.took);
    }
    assert_eq!(metric(&http, &base, waiting).await, Some(0.0));
    let again = park().await;
    assert_timed_out(&again);
    assert!(
        again.took >= WAIT,
        "with places free a read waits again, not {:?}",
        again.took
    );
    assert_eq!(metric(&http, &base, capped).await, Some(1.0), "it was not capped");
}
