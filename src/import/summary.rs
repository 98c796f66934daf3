//! The line an import ends with: `imported 3, already present 1, rejected 2 (lines: 4, 9)`.

use crate::store::ImportCount;
use std::fmt;

/// Line numbers listed in the summary; every rejected line was reported on its own already.
const SUMMARY_LINES: usize = 20;

/// What an import did, as its last line says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub imported: usize,
    pub present: usize,
    /// Line numbers, in file order.
    pub rejected: Vec<u64>,
}

impl Tally {
    pub(super) fn add(&mut self, count: ImportCount) {
        self.imported += count.stored;
        self.present += count.present;
    }
}

impl fmt::Display for Tally {
    /// `imported 3, already present 1, rejected 2 (lines: 4, 9)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (imported, present, rejected) = (self.imported, self.present, self.rejected.len());
        write!(
            f,
            "imported {imported}, already present {present}, rejected {rejected}"
        )?;
        if rejected == 0 {
            return Ok(());
        }
        let listed: Vec<String> = self
            .rejected
            .iter()
            .take(SUMMARY_LINES)
            .map(u64::to_string)
            .collect();
        write!(f, " (lines: {}", listed.join(", "))?;
        if rejected > SUMMARY_LINES {
            write!(f, " and {} more", rejected - SUMMARY_LINES)?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_lists_rejected_lines() {
        let mut tally = Tally {
            imported: 3,
            present: 1,
            rejected: vec![],
        };
        assert_eq!(
            tally.to_string(),
            "imported 3, already present 1, rejected 0"
        );
        tally.rejected = vec![4, 9];
        assert_eq!(
            tally.to_string(),
            "imported 3, already present 1, rejected 2 (lines: 4, 9)"
        );
        tally.rejected = (1..=25).collect();
        assert!(tally.to_string().ends_with("19, 20 and 5 more)"), "{tally}");
    }
}
