//! Formats floats the way Go's `strconv.FormatFloat(f, 'g', -1, 64)` does,
//! which is how the reference exporter's client library writes values and
//! histogram `le` labels. `le` is part of a series' identity, so
//! `le="1e-06"` must not become `le="0.000001"` for users moving over.

use std::fmt::Write;

pub fn write_go_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if v == 0.0 {
        out.push('0');
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.048576e6".
    let sci = format!("{:e}", v.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if v < 0.0 {
        out.push('-');
    }
    // Go picks %e when the exponent is below -4 or at least 6 (its
    // precision for the shortest form).
    if !(-4..6).contains(&exp) {
        // %e form: d[.ddd]e±XX with at least two exponent digits.
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
        return;
    }
    if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
}

pub fn go_float(v: f64) -> String {
    let mut s = String::new();
    write_go_float(&mut s, v);
    s
}

#[cfg(test)]
mod tests {
    use super::go_float;

    #[test]
    fn matches_go_shortest_g_format() {
        // Expected strings are what Go's strconv.FormatFloat(v, 'g', -1, 64) prints.
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (0.5, "0.5"),
            (1e-06, "1e-06"),
            (2e-06, "2e-06"),
            (0.000512, "0.000512"),
            (0.0001, "0.0001"),
            (0.00005, "5e-05"),
            (1.048576, "1.048576"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1048576.0, "1.048576e+06"),
            (16777216.0, "1.6777216e+07"),
            (134.217728, "134.217728"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (f64::INFINITY, "+Inf"),
            (1e21, "1e+21"),
            (12.0, "12"),
        ];
        for (v, want) in cases {
            assert_eq!(go_float(*v), *want, "formatting {v}");
        }
    }
}
