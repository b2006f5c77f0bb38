//! CPU lists: which CPUs are online (software perf events open one fd per
//! online CPU) and how many are possible (per-CPU map values come once per
//! possible CPU, online or not).

#[derive(Debug, thiserror::Error)]
pub enum CpuListError {
    #[error("reading {path}: {source}")]
    Read {
        path: &'static str,
        source: std::io::Error,
    },
    #[error("bad CPU list {0:?}")]
    Parse(String),
}

const ONLINE: &str = "/sys/devices/system/cpu/online";

pub fn online() -> Result<Vec<u32>, CpuListError> {
    let text = std::fs::read_to_string(ONLINE).map_err(|source| CpuListError::Read {
        path: ONLINE,
        source,
    })?;
    parse_list(&text)
}

/// Parses the kernel's CPU list format: `0-3,6`.
pub fn parse_list(text: &str) -> Result<Vec<u32>, CpuListError> {
    let bad = || CpuListError::Parse(text.to_string());
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if b < a || b - a > 1 << 16 {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(cpus)
}

/// Whether this process may run on more than one CPU (its affinity and
/// its cgroup's CPU quota, as the standard library reads them). With one,
/// a second thread has nothing to overlap with: scrapes then read in turn.
/// Read once: a pod's CPU limit rarely changes under a running process.
pub fn spare() -> bool {
    static SPARE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SPARE.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// How many CPUs the kernel could ever bring online.
pub fn possible() -> usize {
    // SAFETY: a plain query with no arguments.
    let n = unsafe { libbpf_sys::libbpf_num_possible_cpus() };
    if n > 0 {
        n as usize
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_lists() {
        assert_eq!(parse_list("0-3,6\n").ok(), Some(vec![0, 1, 2, 3, 6]));
        assert_eq!(parse_list("0").ok(), Some(vec![0]));
        assert!(parse_list("a-b").is_err());
        assert!(parse_list("3-1").is_err());
        assert!(parse_list("0-4294967295").is_err(), "bounded");
    }

    #[test]
    fn this_machine_has_cpus() {
        let online = online().expect("online CPUs readable");
        assert!(!online.is_empty());
        assert!(possible() >= online.len());
    }
}
