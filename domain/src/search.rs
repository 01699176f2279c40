//! The search key of a name: what the catalog stores beside each product's
//! name and what a name search is turned into, so that both sides fold case
//! with one function, whatever the database (SQLite's `lower()` and `LIKE`
//! fold ASCII only; Postgres' follow the database's locale).

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;

/// `text` folded for caseless matching: Unicode canonical caseless matching
/// (Unicode 16, §3.13 D145: decompose, apply full default case folding from
/// `CaseFolding.txt`), recomposed to NFC so that a fragment matches whole
/// characters. "Éclair", "ÉCLAIR" and "e\u{301}clair" all fold to
/// "éclair"; full folding, unlike `str::to_lowercase`, maps "ß" to "ss", so
/// "Straße" is found by "STRASSE" and "strasse" (and "ﬁ" by "fi").
///
/// Changing what this returns changes the stored keys: the catalog must
/// then be replayed (`projectors replay catalog`).
pub fn fold(text: &str) -> String {
    text.nfd().default_case_fold().nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_beyond_ascii() {
        for name in ["Éclair", "éclair", "ÉCLAIR", "E\u{301}CLAIR"] {
            assert_eq!(fold(name), "éclair", "{name:?}");
        }
        assert_eq!(fold("Mug"), "mug");
    }

    #[test]
    fn folds_fully_not_just_to_lowercase() {
        assert_eq!(fold("Straße"), "strasse");
        assert_eq!(fold("STRASSE"), "strasse");
        assert_eq!(fold("ΟΔΥΣΣΕΥΣ"), fold("οδυσσευς"));
        assert_eq!(fold("ﬁne"), "fine");
    }

    #[test]
    fn leaves_uncased_text_and_like_wildcards_alone() {
        assert_eq!(fold("東京 50%_off\\"), "東京 50%_off\\");
    }
}
