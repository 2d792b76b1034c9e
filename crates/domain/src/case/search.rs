//! Search terms of a person's identity, for finding likely duplicates and
//! for the desk's search, without keeping names in clear: the store keeps
//! only a keyed hash of each term (a blind index), deleted with the
//! person's key on erasure. Pure: normalisation only.

use super::PersonIdentity;

/// What a term is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TermKind {
    /// One word of a name (any kind: document, used, alias).
    Name,
    /// The birth year.
    BirthYear,
    /// A document number.
    Document,
    /// Two name words of one identity together (or its only word): what
    /// finds likely duplicates whose birth year is not known.
    NamePair,
    /// The same with the birth year: what finds likely duplicates, without
    /// reading everyone who shares one common word.
    NamePairYear,
}

impl TermKind {
    /// Its name in the index.
    pub fn as_str(self) -> &'static str {
        match self {
            TermKind::Name => "name",
            TermKind::BirthYear => "birth_year",
            TermKind::Document => "document",
            TermKind::NamePair => "name_pair",
            TermKind::NamePairYear => "name_pair_year",
        }
    }
}

/// One normalised search term.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Term {
    /// What it is of.
    pub kind: TermKind,
    /// The normalised value.
    pub value: String,
}

/// Fold a letter to its base Latin letter (accents off), lowercase.
fn fold(c: char) -> char {
    let c = c.to_lowercase().next().unwrap_or(c);
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'ď' | 'đ' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
        'ğ' => 'g',
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' => 'i',
        'ł' => 'l',
        'ñ' | 'ń' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
        'ř' => 'r',
        'ś' | 'š' | 'ş' | 'ș' => 's',
        'ť' | 'ţ' | 'ț' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => 'u',
        'ý' | 'ÿ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        other => other,
    }
}

/// The words of a name, normalised: lowercase, accents off, split on
/// anything not a letter or digit, words of two characters or more.
pub fn name_words(text: &str) -> Vec<String> {
    let folded: String = text.chars().map(fold).collect();
    let mut words: Vec<String> = folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(str::to_owned)
        .collect();
    words.sort();
    words.dedup();
    words
}

/// A document number, normalised: letters and digits only, uppercase.
pub fn document_number(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The name words of an identity paired with each other considered at
/// most: past this many words, the rest still count as words.
const MAX_PAIRED_WORDS: usize = 8;

/// Every search term of an identity, each once, in order: its name words,
/// birth year and document numbers, and the pairs of name words (alone and
/// with the birth year) that [`duplicate_drivers`] looks up.
pub fn terms(identity: &PersonIdentity) -> Vec<Term> {
    let mut words: Vec<String> = identity
        .names
        .iter()
        .flat_map(|n| name_words(&n.text))
        .collect();
    words.sort();
    words.dedup();
    let year = identity
        .birth_date
        .as_deref()
        .and_then(|b| b.get(..4))
        .map(str::to_owned);
    let paired = &words[..words.len().min(MAX_PAIRED_WORDS)];
    let pairs: Vec<String> = match paired {
        [only] => vec![only.clone()],
        _ => paired
            .iter()
            .enumerate()
            .flat_map(|(i, a)| paired[i + 1..].iter().map(move |b| format!("{a} {b}")))
            .collect(),
    };
    let mut out: Vec<Term> = Vec::new();
    for pair in pairs {
        if let Some(year) = &year {
            out.push(Term {
                kind: TermKind::NamePairYear,
                value: format!("{pair}|{year}"),
            });
        }
        out.push(Term {
            kind: TermKind::NamePair,
            value: pair,
        });
    }
    out.extend(words.into_iter().map(|value| Term {
        kind: TermKind::Name,
        value,
    }));
    if let Some(year) = year {
        out.push(Term {
            kind: TermKind::BirthYear,
            value: year,
        });
    }
    out.extend(
        identity
            .documents
            .iter()
            .map(|d| document_number(&d.number))
            .filter(|n| n.len() >= 4)
            .map(|value| Term {
                kind: TermKind::Document,
                value,
            }),
    );
    out.sort();
    out.dedup();
    out
}

/// The terms that find the likely duplicates of an identity with these
/// `terms` (see the store's `likely_duplicate`: the same document, or two
/// name words — all, if it has fewer — with the same birth year, or any
/// birth year when its own is unknown): its document numbers and its name
/// pairs, with the birth year when it has one. Each is shared by few
/// people, however common one of its words.
pub fn duplicate_drivers(terms: &[Term]) -> Vec<Term> {
    let has_year = terms.iter().any(|t| t.kind == TermKind::BirthYear);
    let pair_kind = match has_year {
        true => TermKind::NamePairYear,
        false => TermKind::NamePair,
    };
    terms
        .iter()
        .filter(|t| t.kind == TermKind::Document || t.kind == pair_kind)
        .cloned()
        .collect()
}

/// The terms of a free-text query of the desk's search: its words as name
/// words, a four-digit word also as a birth year, a word with digits also
/// as a document number.
pub fn query_terms(q: &str) -> Vec<Term> {
    let mut out = Vec::new();
    for word in name_words(q) {
        if word.len() == 4 && word.bytes().all(|b| b.is_ascii_digit()) {
            out.push(Term {
                kind: TermKind::BirthYear,
                value: word.clone(),
            });
        }
        if word.bytes().any(|b| b.is_ascii_digit()) && word.len() >= 4 {
            out.push(Term {
                kind: TermKind::Document,
                value: document_number(&word),
            });
        }
        out.push(Term {
            kind: TermKind::Name,
            value: word,
        });
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{IdentityDocument, PersonName};

    fn identity(names: &[&str], birth: Option<&str>, doc: Option<&str>) -> PersonIdentity {
        PersonIdentity {
            names: names
                .iter()
                .map(|n| PersonName {
                    kind: "as_used".into(),
                    text: (*n).into(),
                })
                .collect(),
            birth_date: birth.map(str::to_owned),
            documents: doc
                .map(|d| {
                    vec![IdentityDocument {
                        kind: "passport".into(),
                        number: d.into(),
                        issuing_country: None,
                        expires_on: None,
                    }]
                })
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    #[test]
    fn names_fold_case_accents_and_order() {
        assert_eq!(name_words("DIALLO, Amína  N."), ["amina", "diallo"]);
        assert_eq!(name_words("Amina Diallo"), name_words("diallo amina"));
        assert_eq!(name_words("Şükrü Öztürk"), ["ozturk", "sukru"]);
    }

    #[test]
    fn terms_of_an_identity() {
        let t = terms(&identity(
            &["Demo Amina Diallo", "Amina"],
            Some("1994-03"),
            Some("ab 123-456"),
        ));
        let kinds: Vec<(TermKind, &str)> = t.iter().map(|t| (t.kind, t.value.as_str())).collect();
        assert!(kinds.contains(&(TermKind::Name, "amina")));
        assert!(kinds.contains(&(TermKind::Name, "diallo")));
        assert!(kinds.contains(&(TermKind::BirthYear, "1994")));
        assert!(kinds.contains(&(TermKind::Document, "AB123456")));
        assert!(kinds.contains(&(TermKind::NamePair, "amina diallo")));
        assert!(kinds.contains(&(TermKind::NamePairYear, "demo diallo|1994")));
        assert_eq!(
            t.iter().filter(|t| t.value == "amina").count(),
            1,
            "each term once"
        );
    }

    #[test]
    fn duplicates_are_found_by_documents_and_name_pairs() {
        let with_year = terms(&identity(&["Amina Diallo"], Some("1994"), Some("AB1234")));
        let drivers = duplicate_drivers(&with_year);
        let kinds: Vec<(TermKind, &str)> =
            drivers.iter().map(|t| (t.kind, t.value.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (TermKind::Document, "AB1234"),
                (TermKind::NamePairYear, "amina diallo|1994")
            ]
        );
        let no_year = terms(&identity(&["Amina"], None, None));
        let drivers = duplicate_drivers(&no_year);
        assert_eq!(
            drivers,
            [Term {
                kind: TermKind::NamePair,
                value: "amina".into()
            }],
            "a one-word name is its own pair"
        );
    }

    #[test]
    fn query_words_can_be_years_and_documents() {
        let q = query_terms("Diallo 1994 AB123456");
        assert!(q.contains(&Term {
            kind: TermKind::BirthYear,
            value: "1994".into()
        }));
        assert!(q.contains(&Term {
            kind: TermKind::Document,
            value: "AB123456".into()
        }));
        assert!(q.contains(&Term {
            kind: TermKind::Name,
            value: "diallo".into()
        }));
    }
}
