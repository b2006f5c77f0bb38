//! The fd limit. Every map, program and link is an fd, and so is every
//! connection; the usual soft limit of 1024 is a leftover of `select()`,
//! which nothing here uses. Go raises the soft limit to the hard one at
//! start-up, and so does this.

use std::io;

/// The soft and hard `RLIMIT_NOFILE` after raising soft to hard.
pub fn raise_nofile() -> io::Result<(libc::rlim_t, libc::rlim_t)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit that outlives the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        lim = raised;
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Fds open now.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_limit_becomes_the_hard_one() {
        let (soft, hard) = raise_nofile().expect("rlimit");
        assert_eq!(soft, hard);
        assert!(open_fds() >= 3, "stdin, stdout and stderr at least");
    }
}
