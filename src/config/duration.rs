//! Go-style durations (`30s`, `1m`, `1h30m`, `500ms`), the form the
//! reference's `flush_interval` takes.

use std::time::Duration;

/// Go's largest duration, `1<<63 - 1` nanoseconds: what the reference
/// could be given, so nothing it accepts is refused here.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parses a positive duration: zero would make a timer spin, and a value
/// past Go's range could not have come from a reference config.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration such as 30s, 1m or 1h30m");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (whole, frac) = match rest[..num_end].split_once('.') {
            Some((w, f)) => (w, f),
            None => (&rest[..num_end], ""),
        };
        if whole.is_empty() && frac.is_empty() {
            return Err(bad());
        }
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale: u128 = match &rest[..unit_end] {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_end..];
        let too_large = || format!("{s:?} is longer than the largest duration, about 292 years");
        // Digits beyond what can matter are cut before parsing, so a
        // thousand-digit number is "too large", not an overflow.
        if whole.trim_start_matches('0').len() > 20 {
            return Err(too_large());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let mut part = whole.checked_mul(scale).ok_or_else(too_large)?;
        // Fraction digits past nanosecond precision cannot change the sum.
        let mut unit = scale;
        for d in frac.bytes().take(20) {
            if !d.is_ascii_digit() {
                return Err(bad());
            }
            unit /= 10;
            part += u128::from(d - b'0') * unit;
        }
        nanos = nanos.checked_add(part).ok_or_else(too_large)?;
        if nanos > MAX_NANOS {
            return Err(too_large());
        }
    }
    if nanos == 0 {
        return Err(format!("{s:?} is zero; the duration must be positive"));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3µs"), Ok(Duration::from_micros(3)));
        assert_eq!(
            parse_duration("2562047h47m16.854775807s"),
            Ok(Duration::from_nanos(i64::MAX as u64)),
            "Go's maximum"
        );
    }

    #[test]
    fn refusals_say_why() {
        for bad in ["", "10", "5d", "s", ".s", "1.2.3s", "-1s"] {
            let e = parse_duration(bad).expect_err(bad);
            assert!(e.contains("is not a duration"), "{bad}: {e}");
        }
        for zero in ["0s", "0h0m", "0.0000000001s"] {
            let e = parse_duration(zero).expect_err(zero);
            assert!(e.contains("must be positive"), "{zero}: {e}");
        }
        for huge in [
            "9999999999999999999h",
            "2562048h",
            "99999999999999999999999999999999999999999s",
        ] {
            let e = parse_duration(huge).expect_err(huge);
            assert!(e.contains("longer than the largest"), "{huge}: {e}");
        }
    }
}
