//! Parsing of VALE port names `valeX:Y`.

use crate::error::ValeError;

/// Longest switch or port part of a name.
pub const PART_MAX: usize = 32;

fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= PART_MAX
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Splits `valeX:Y` into `(X, Y)`. X and Y are 1..=32 letters, digits or `_`.
pub fn parse(name: &str) -> Result<(&str, &str), ValeError> {
    let bad = || ValeError::BadName(name.to_string());
    let rest = name.strip_prefix("vale").ok_or_else(bad)?;
    let (sw, port) = rest.split_once(':').ok_or_else(bad)?;
    if !valid_part(sw) || !valid_part(port) {
        return Err(bad());
    }
    Ok((sw, port))
}

/// Whether `s` is a valid switch part (for vale-ctl arguments).
pub fn valid_switch(s: &str) -> bool {
    valid_part(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!(parse("vale0:1").unwrap(), ("0", "1"));
        assert_eq!(parse("valeab_c:port_9").unwrap(), ("ab_c", "port_9"));
        for bad in [
            "",
            "vale",
            "vale0",
            "vale:1",
            "vale0:",
            "eth0",
            "vale0:1:2",
            "vale0/x:1",
            "vale0:a b",
            "vale0:..",
            "VALE0:1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let long = format!("vale{}:1", "a".repeat(33));
        assert!(parse(&long).is_err());
    }
}
