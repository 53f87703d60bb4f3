//! GTID sets as the server prints `gtid_executed`
//! (`3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7,<uuid>:tag:1-3`), parsed
//! just enough to subtract one from another: the transactions of a
//! recipient that its donor does not have, which an in-place clone
//! discards.

use std::collections::BTreeMap;
use std::fmt;

/// A GTID set: per source (UUID, lower case) and tag (empty for none), the
/// sorted, disjoint intervals of transaction numbers (inclusive).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GtidSet {
    sets: BTreeMap<(String, String), Vec<(u64, u64)>>,
}

impl GtidSet {
    /// Parses the server's text; None if it is not a GTID set.
    pub fn parse(text: &str) -> Option<GtidSet> {
        let mut set = GtidSet::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let mut parts = entry.split(':').map(str::trim);
            let uuid = parts.next()?.to_ascii_lowercase();
            if uuid.len() != 36 || !uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                return None;
            }
            let mut tag = String::new();
            for part in parts {
                match interval(part) {
                    Some(range) => set.add(&uuid, &tag, range),
                    None if is_tag(part) => tag = part.to_ascii_lowercase(),
                    None => return None,
                }
            }
        }
        Some(set)
    }

    fn add(&mut self, uuid: &str, tag: &str, (start, end): (u64, u64)) {
        let ranges = self.sets.entry((uuid.to_owned(), tag.to_owned())).or_default();
        ranges.push((start, end));
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for &(s, e) in ranges.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *ranges = merged;
    }

    /// The transactions of `self` that `other` does not have.
    pub fn minus(&self, other: &GtidSet) -> GtidSet {
        let mut out = GtidSet::default();
        for (key, ranges) in &self.sets {
            let theirs = other.sets.get(key).map(Vec::as_slice).unwrap_or_default();
            let mut left = Vec::new();
            for &(start, end) in ranges {
                // The first number not yet covered by `other` (None past u64::MAX).
                let mut from = Some(start);
                for &(s, e) in theirs.iter().filter(|(s, e)| *e >= start && *s <= end) {
                    let Some(f) = from else { break };
                    if s > f {
                        left.push((f, s - 1));
                    }
                    from = e.checked_add(1).map(|n| n.max(f));
                }
                if let Some(f) = from.filter(|f| *f <= end) {
                    left.push((f, end));
                }
            }
            if !left.is_empty() {
                out.sets.insert(key.clone(), left);
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// How many transactions.
    pub fn count(&self) -> u64 {
        self.sets.values().flatten().fold(0u64, |n, (s, e)| n.saturating_add(e - s + 1))
    }
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut previous: Option<&str> = None;
        for ((uuid, tag), ranges) in &self.sets {
            if previous == Some(uuid.as_str()) {
                // Same source, another tag: continues the entry.
            } else {
                if previous.is_some() {
                    f.write_str(",")?;
                }
                f.write_str(uuid)?;
            }
            if !tag.is_empty() {
                write!(f, ":{tag}")?;
            }
            for (s, e) in ranges {
                if s == e {
                    write!(f, ":{s}")?;
                } else {
                    write!(f, ":{s}-{e}")?;
                }
            }
            previous = Some(uuid);
        }
        Ok(())
    }
}

/// `5` or `1-5` (transaction numbers start at 1).
fn interval(part: &str) -> Option<(u64, u64)> {
    let (start, end) = match part.split_once('-') {
        Some((s, e)) => (s.parse().ok()?, e.parse().ok()?),
        None => {
            let n = part.parse().ok()?;
            (n, n)
        }
    };
    (start >= 1 && start <= end).then_some((start, end))
}

/// A tag: a letter or underscore, then letters, digits, underscores; at
/// most 32 characters.
fn is_tag(part: &str) -> bool {
    let mut bytes = part.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_') && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') && part.len() <= 32
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "6b7f3c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f";

    #[test]
    fn parses_what_the_server_prints() {
        let set = GtidSet::parse(&format!("{}:1-5:7,\n{B}:1-3", A.to_uppercase())).unwrap();
        assert_eq!(set.to_string(), format!("{A}:1-5:7,{B}:1-3"));
        assert_eq!(set.count(), 9);
        assert_eq!(GtidSet::parse("").unwrap(), GtidSet::default());
        let tagged = GtidSet::parse(&format!("{A}:1-2:Tag_1:5-6")).unwrap();
        assert_eq!(tagged.to_string(), format!("{A}:1-2:tag_1:5-6"));
        for bad in ["nonsense", &format!("{A}:0"), &format!("{A}:5-3"), &format!("{A}:1-x"), &format!("{A}:9tag:1")] {
            assert_eq!(GtidSet::parse(bad), None, "{bad}");
        }
        // Adjacent and overlapping intervals merge.
        assert_eq!(GtidSet::parse(&format!("{A}:3-4:1-2,{A}:2-6")).unwrap().to_string(), format!("{A}:1-6"));
    }

    #[test]
    fn the_recipients_transactions_the_donor_lacks() {
        let recipient = GtidSet::parse(&format!("{A}:1-10:15,{B}:1-3")).unwrap();
        let donor = GtidSet::parse(&format!("{A}:1-4:6-8,{B}:1-3")).unwrap();
        let lost = recipient.minus(&donor);
        assert_eq!(lost.to_string(), format!("{A}:5:9-10:15"));
        assert_eq!(lost.count(), 4);
        assert!(donor.minus(&recipient).is_empty());
        assert!(recipient.minus(&recipient).is_empty());
        assert_eq!(recipient.minus(&GtidSet::default()), recipient);
        // Tags are sources of their own.
        let tagged = GtidSet::parse(&format!("{A}:1-3:t:1-3")).unwrap();
        assert_eq!(tagged.minus(&GtidSet::parse(&format!("{A}:1-3")).unwrap()).to_string(), format!("{A}:t:1-3"));
    }
}
