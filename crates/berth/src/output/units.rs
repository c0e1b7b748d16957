//! Human-readable sizes and durations, matching Docker's `go-units`.

/// Decimal sizes as Docker prints them in tables (`HumanSizeWithPrecision(size, 3)`): 4.26MB, 1.2GB, 0B.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", precision3(value), UNITS[unit])
}

/// Go's `%.4g` as go-units uses it: 3 significant digits, no trailing zeros.
fn precision3(value: f64) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{value:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// "About an hour", "2 days", "Less than a second": go-units `HumanDuration`.
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let minutes = s / 60;
    let hours = s / 3600;
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    }
}

/// "3 hours ago" for a unix timestamp; Docker shows `N/A`-like empty text for unknown times.
pub fn since(timestamp: i64) -> String {
    if timestamp <= 0 {
        return "N/A".into();
    }
    let now = chrono::Utc::now().timestamp();
    format!("{} ago", human_duration(now - timestamp))
}

/// Binary sizes for `-m 512m`-style flags (used by the container flags): b, k, m, g (case-insensitive), as Docker's RAMInBytes.
#[allow(dead_code)]
pub fn parse_ram(text: &str) -> anyhow::Result<i64> {
    let t = text.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size: '{text}'"))?;
    let mult: f64 = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0_f64.powi(4),
        _ => anyhow::bail!("invalid size: '{text}'"),
    };
    Ok((value * mult) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_017), "4.26MB");
        assert_eq!(human_size(1_240_000), "1.24MB");
        assert_eq!(human_size(206_000_000), "206MB");
        assert_eq!(human_size(12_300), "12.3kB");
    }

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }

    #[test]
    fn ram_sizes() {
        assert_eq!(parse_ram("512m").unwrap(), 512 << 20);
        assert_eq!(parse_ram("1g").unwrap(), 1 << 30);
        assert_eq!(parse_ram("100").unwrap(), 100);
        assert!(parse_ram("12x").is_err());
    }
}
