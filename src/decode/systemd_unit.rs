//! `systemd_unit`: a cgroup path (chain `uint`, `cgroup` first) to the
//! systemd unit it belongs to: `/system.slice/nginx.service` gives
//! `nginx.service`. The innermost service, scope, socket, mount, swap or
//! timer wins (`user@1000.service/app.slice/run-u7.scope` gives
//! `run-u7.scope`), then the innermost slice; a path with no unit gives an
//! empty value.

use super::registry::{Entry, Guess};
use super::{DecodeError, Decoded, Decoder};

pub const ENTRY: Entry = Entry {
    name: "systemd_unit",
    options: &[],
    pure: false,
    reads: &[],
    ours: true,
    input: "cgroup path",
    output: "the innermost unit: `/system.slice/nginx.service` is `nginx.service`; empty if none",
    guess: Guess::NONE,
    build: |_, _| Ok(Box::new(SystemdUnit)),
};

pub struct SystemdUnit;

const UNITS: [&str; 6] = [".service", ".scope", ".socket", ".mount", ".swap", ".timer"];

impl Decoder for SystemdUnit {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let path = std::str::from_utf8(input)
            .map_err(|_| DecodeError::Invalid("a cgroup path must be UTF-8".into()))?;
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let unit = parts
            .iter()
            .rev()
            .find(|p| UNITS.iter().any(|u| p.ends_with(u)))
            .or_else(|| parts.iter().rev().find(|p| p.ends_with(".slice")));
        Ok(Decoded::Value(
            unit.map(|u| u.as_bytes().to_vec()).unwrap_or_default(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn innermost_unit() {
        for (path, unit) in [
            ("/sys/fs/cgroup/system.slice/nginx.service", "nginx.service"),
            (
                "/user.slice/user-1000.slice/user@1000.service/app.slice/run-u7.scope",
                "run-u7.scope",
            ),
            (
                "/user.slice/user-1000.slice/user@1000.service",
                "user@1000.service",
            ),
            ("/system.slice", "system.slice"),
            ("/", ""),
        ] {
            assert_eq!(
                SystemdUnit.decode(path.as_bytes()),
                Ok(Decoded::Value(unit.as_bytes().to_vec())),
                "{path}"
            );
        }
    }
}
