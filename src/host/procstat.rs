//! The standard `process_*` metrics, read from /proc/self. The `prometheus`
//! crate's collector divides clock ticks by the tick rate in integers, so a
//! process that has used less than a second of CPU per scrape interval
//! reads 0 there; these are exact.

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub start_time_seconds: f64,
    pub open_fds: u64,
    pub max_fds: u64,
}

/// Clock ticks per second and page size, from the C library.
fn sysconf(name: libc::c_int) -> Option<f64> {
    // SAFETY: sysconf takes no pointers.
    let v = unsafe { libc::sysconf(name) };
    (v > 0).then_some(v as f64)
}

/// Fields of a /proc/PID/stat after the command name (which may hold
/// spaces and parentheses, so it is skipped up to the last `)`).
pub fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

pub fn read() -> ProcessStats {
    let mut s = ProcessStats::default();
    let tick = sysconf(libc::_SC_CLK_TCK).unwrap_or(100.0);
    let page = sysconf(libc::_SC_PAGESIZE).unwrap_or(4096.0);
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        let f = stat_fields(&stat);
        // After the name: state(0) ... utime(11) stime(12) ... starttime(19)
        // vsize(20) rss(21), counting from the field after `)`.
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        s.cpu_seconds = (num(11) + num(12)) / tick;
        s.virtual_bytes = num(20) as u64;
        s.resident_bytes = (num(21) * page) as u64;
        if let Some(boot) = boot_time() {
            s.start_time_seconds = boot + num(19) / tick;
        }
    }
    s.open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: limit is a valid rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        s.max_fds = limit.rlim_cur;
    }
    s
}

/// Boot time in seconds since the epoch, from /proc/stat's `btime`: read
/// once, since it never changes and /proc/stat grows with the CPU count.
fn boot_time() -> Option<f64> {
    static BOOT: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();
    *BOOT.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        stat.lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse::<f64>()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_moves_with_work_in_fractions_of_a_second() {
        let before = read();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(150) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let after = read();
        let used = after.cpu_seconds - before.cpu_seconds;
        assert!((0.05..1.0).contains(&used), "{used}");
        assert!(after.resident_bytes > 1 << 20 && after.virtual_bytes >= after.resident_bytes);
        assert!(after.open_fds >= 3 && after.max_fds >= after.open_fds);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64();
        assert!(
            after.start_time_seconds > now - 86_400.0 * 365.0
                && after.start_time_seconds <= now + 1.0
        );
    }

    #[test]
    fn command_names_with_spaces_and_parentheses() {
        let f = stat_fields("42 (a b) c)) S 1 2 3");
        assert_eq!(f.first(), Some(&"S"));
    }
}
