//! Database and event store URLs may carry a password
//! (`postgres://user:secret@host/db`, `esdb://admin:secret@host:2113`,
//! `postgres://host/db?password=secret`). Whatever the binaries print —
//! the start-up banner, an error naming the URL, an error a driver worded
//! from it — goes through here first, so the password never reaches stdout
//! or the logs.

use std::fmt::Display;
use std::ops::Range;

/// What stands in for a password.
const MASK: &str = "***";

/// `url` with the password of its userinfo and any `password` query
/// parameter replaced by `***`; the rest as it was.
pub fn redacted(url: &str) -> String {
    let mut text = url.to_owned();
    for range in passwords(url).into_iter().rev() {
        text.replace_range(range, MASK);
    }
    text
}

/// `text` (an error message, say) with `url` shown [`redacted`] and every
/// password `url` carries replaced by `***`, wherever else it appears.
pub fn redacted_in(text: &str, url: &str) -> String {
    let shown = text.replace(url, &redacted(url));
    passwords(url)
        .into_iter()
        .fold(shown, |text, range| text.replace(&url[range], MASK))
}

/// `{url}: {error}` with both [`redacted`]: how the binaries say that what
/// `url` names failed.
pub fn url_error(url: &str, error: impl Display) -> String {
    redacted_in(&format!("{url}: {error}"), url)
}

/// Where the passwords in `url` are, in order: the userinfo's
/// (`user:password@`) and the values of `password=` query parameters,
/// never empty. The userinfo ends at the *last* `@`, so that a password
/// with an unencoded `/`, `?`, `#` or `@` is masked whole (a URL that
/// does not parse is the one most likely printed); an `@` later in the
/// query masks more than the password, never less.
fn passwords(url: &str) -> Vec<Range<usize>> {
    let Some(scheme_end) = url.find("://").map(|at| at + 3) else {
        return Vec::new();
    };
    let rest = &url[scheme_end..];
    // `scheme:///path` has no authority, so no userinfo.
    let host_start = rest
        .rfind('@')
        .filter(|_| !rest.starts_with('/'))
        .map_or(0, |at| at + 1);
    let authority_end = scheme_end
        + host_start
        + rest[host_start..]
            .find(['/', '?', '#'])
            .unwrap_or(rest.len() - host_start);
    let mut found = Vec::new();
    if let Some(userinfo) = host_start.checked_sub(1).map(|at| &rest[..at])
        && let Some(colon) = userinfo.find(':')
    {
        found.push(scheme_end + colon + 1..scheme_end + userinfo.len());
    }
    if let Some(query_start) = url[authority_end..].find('?').map(|at| authority_end + at + 1) {
        let query_end = url[query_start..].find('#').map_or(url.len(), |at| query_start + at);
        let mut start = query_start;
        for pair in url[query_start..query_end].split('&') {
            if let Some((name, _)) = pair.split_once('=')
                && name.eq_ignore_ascii_case("password")
            {
                found.push(start + name.len() + 1..start + pair.len());
            }
            start += pair.len() + 1;
        }
    }
    found.retain(|range| !range.is_empty());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_masked_and_the_rest_kept() {
        for (url, shown) in [
            (
                "postgres://user:SECRET@db:5432/shop",
                "postgres://user:***@db:5432/shop",
            ),
            ("postgres://user:SECRET@db", "postgres://user:***@db"),
            (
                "esdb://admin:SECRET@a:2113,b:2113?tls=false",
                "esdb://admin:***@a:2113,b:2113?tls=false",
            ),
            (
                "postgres://db/shop?user=u&password=SECRET&x=1",
                "postgres://db/shop?user=u&password=***&x=1",
            ),
            ("postgres://u:p%40ss@db/shop", "postgres://u:***@db/shop"),
            ("postgres://u:pa/ss?x#y@db/shop", "postgres://u:***@db/shop"),
            (
                "postgres://u:p@ss@db/shop?sslmode=require",
                "postgres://u:***@db/shop?sslmode=require",
            ),
        ] {
            assert_eq!(redacted(url), shown, "case {url}");
        }
    }

    #[test]
    fn urls_without_a_password_are_unchanged() {
        for url in [
            "postgres://user@db/shop",
            "postgres://db/shop",
            "sqlite://data/views.db?mode=rwc",
            "sqlite:///abs/path/a:b@c.db",
            "esdb://host:2113?tls=false",
            "postgres://user:@db/shop",
            "not a url",
        ] {
            assert_eq!(redacted(url), url, "case {url}");
        }
    }

    #[test]
    fn a_message_loses_the_password_wherever_it_appears() {
        let url = "postgres://user:SECRET@db/shop";
        let message = format!("cannot connect to {url:?}: password SECRET refused");
        assert_eq!(
            redacted_in(&message, url),
            "cannot connect to \"postgres://user:***@db/shop\": password *** refused"
        );
        assert_eq!(redacted_in("no secret here", url), "no secret here");
        assert_eq!(
            url_error(url, "refused SECRET"),
            "postgres://user:***@db/shop: refused ***"
        );
    }
}
