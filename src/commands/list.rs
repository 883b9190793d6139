//! `list [PREFIX] [-l | --json] [-z]`: the keys, sorted.

use std::io::{BufWriter, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Result};

use crate::cli::ListArgs;
use crate::output;
use crate::store::{Store, Unreadable};

pub fn run(args: &ListArgs, store: &dyn Store, out: &mut dyn Write) -> Result<()> {
    let prefix = args.prefix.as_deref().unwrap_or("");
    let entries = store.list_entries(prefix, args.long || args.json)?;
    // One write for many lines, not one a line.
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    let end = if args.null { '\0' } else { '\n' };
    let mut skipped = 0usize;
    for entry in &entries {
        match entry {
            Ok(entry) => {
                let modified = entry.details.as_ref().map(|d| rfc3339(d.modified));
                let details = entry
                    .details
                    .as_ref()
                    .zip(modified.as_deref())
                    .map(|(d, modified)| (d.etag.as_str(), d.size, modified));
                output::list_entry(&mut out, entry.key.as_str(), details, args.json, end)?;
            }
            // As ls does: name the entry, list the rest, fail at the end.
            Err(Unreadable { key, error }) => {
                skipped += 1;
                crate::error::report_skipped(key.as_str(), error);
            }
        }
    }
    out.flush()?;
    if skipped > 0 {
        return Err(anyhow!(
            "{skipped} of {} keys could not be read and were left out of the listing \
             (named above)",
            entries.len()
        ));
    }
    Ok(())
}

/// A time as RFC 3339 in UTC to the second, e.g. `2026-11-26T10:11:17Z`.
fn rfc3339(time: SystemTime) -> String {
    let seconds = match time.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_secs() as i64,
        Err(before) => -(before.duration().as_secs() as i64),
    };
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// The Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`), so no date crate is needed for one format.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_rfc3339_in_utc() {
        let at = |seconds| rfc3339(UNIX_EPOCH + Duration::from_secs(seconds));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_795_687_877), "2026-11-26T10:11:17Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
    }
}
