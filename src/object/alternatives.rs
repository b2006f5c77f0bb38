//! Programs that stand in for each other (`programs.one_of` in a config):
//! of each group, the first program the kernel loads and attaches is used,
//! and the rest are never loaded.
//!
//! One object can then carry a program for each generation of a hook (a
//! tracepoint renamed, a function's arguments changed, a typed tracepoint
//! that an older kernel passes as plain integers), as libbpf-tools' loaders
//! pick theirs in C, and the config says which replace which. A program that
//! only loads on the kernels it is right for (one that dereferences its
//! typed arguments, say) makes the choice by itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::error::{AttachError, LoadFailure, ObjectError};

/// Why an alternative was passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassedOver {
    Load(LoadFailure),
    Attach(AttachError),
}

impl fmt::Display for PassedOver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PassedOver::Load(why) => write!(f, "not loaded: {why}"),
            PassedOver::Attach(why) => write!(f, "not attached: {why}"),
        }
    }
}

/// An alternative left out because an earlier one failed and a later one
/// runs, or because an earlier one runs.
#[derive(Debug, Clone)]
pub struct UnusedProgram {
    pub name: String,
    pub section: String,
    /// The group member that runs instead.
    pub instead: String,
    /// Its own failure, for those tried before the one that runs.
    pub why: Option<PassedOver>,
}

/// A program the config leaves out (`programs.include` or `exclude`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    pub name: String,
    pub section: String,
    /// The config key that leaves it out.
    pub by: &'static str,
}

/// The groups of one object and what trying them has shown so far, and
/// the programs the config leaves out whatever the kernel takes.
#[derive(Debug, Default)]
pub struct Alternatives {
    groups: Vec<Vec<String>>,
    passed_over: BTreeMap<String, PassedOver>,
    left_out: Vec<LeftOut>,
}

impl Alternatives {
    /// Checks every name against the object's programs.
    pub fn new(groups: &[Vec<String>], programs: &BTreeSet<String>) -> Result<Self, ObjectError> {
        for (g, group) in groups.iter().enumerate() {
            for (i, name) in group.iter().enumerate() {
                if !programs.contains(name) {
                    return Err(ObjectError::NoSuchProgram {
                        group: g,
                        index: i,
                        name: name.clone(),
                        available: programs.iter().cloned().collect(),
                    });
                }
            }
        }
        Ok(Self {
            groups: groups.to_vec(),
            passed_over: BTreeMap::new(),
            left_out: Vec::new(),
        })
    }

    /// Leaves out what `include` does not name and what `exclude` names,
    /// each by program name or section (`sections`: name → section). An
    /// entry that names no program is refused: it is a typo, or an object
    /// other than the one the config was written for.
    pub fn leave_out(
        &mut self,
        include: &[String],
        exclude: &[String],
        sections: &BTreeMap<String, String>,
    ) -> Result<(), ObjectError> {
        let matches = |entry: &str, name: &str, section: &str| entry == name || entry == section;
        for (key, list) in [("include", include), ("exclude", exclude)] {
            for (i, entry) in list.iter().enumerate() {
                if !sections.iter().any(|(n, s)| matches(entry, n, s)) {
                    return Err(ObjectError::ProgramChoice {
                        key: format!("programs.{key}[{i}]"),
                        name: entry.clone(),
                        why: "names no program or section of the object",
                        available: sections.iter().map(|(n, s)| format!("{n} ({s})")).collect(),
                    });
                }
            }
        }
        for (name, section) in sections {
            let by = if exclude.iter().any(|e| matches(e, name, section)) {
                "programs.exclude"
            } else if !include.is_empty() && !include.iter().any(|e| matches(e, name, section)) {
                "programs.include"
            } else {
                continue;
            };
            self.left_out.push(LeftOut {
                name: name.clone(),
                section: section.clone(),
                by,
            });
        }
        Ok(())
    }

    pub fn left_out(&self) -> &[LeftOut] {
        &self.left_out
    }

    fn group_of(&self, name: &str) -> Option<&Vec<String>> {
        self.groups.iter().find(|g| g.iter().any(|n| n == name))
    }

    /// The member of `group` tried now: the first not passed over, if any.
    fn current<'a>(&self, group: &'a [String]) -> Option<&'a String> {
        group.iter().find(|n| !self.passed_over.contains_key(*n))
    }

    /// Programs not to load in this attempt: every group member but the
    /// one being tried.
    pub fn held_back(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.left_out.iter().map(|l| l.name.clone()).collect();
        for group in &self.groups {
            let current = self.current(group);
            out.extend(group.iter().filter(|n| Some(*n) != current).cloned());
        }
        out
    }

    /// Records that `name` failed. True when it was an alternative with
    /// another one left to try, so the failure is not the config's: the
    /// caller tries again without it.
    pub fn pass_over(&mut self, name: &str, why: PassedOver) -> bool {
        let Some(group) = self.group_of(name) else {
            return false;
        };
        let last = group.last().is_some_and(|n| n == name);
        if last {
            return false;
        }
        self.passed_over.insert(name.to_string(), why);
        true
    }

    /// The failures of the members passed over in a group whose last member
    /// failed too, so the caller can report every member's reason.
    pub fn exhausted(&self, name: &str) -> Vec<(String, PassedOver)> {
        self.group_of(name)
            .map(|group| {
                group
                    .iter()
                    .filter_map(|n| Some((n.clone(), self.passed_over.get(n)?.clone())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The members left out, once the current members are known to run:
    /// `sections` names each program's section.
    pub fn unused(&self, sections: &BTreeMap<String, String>) -> Vec<UnusedProgram> {
        let mut out = Vec::new();
        for group in &self.groups {
            let Some(instead) = self.current(group) else {
                continue;
            };
            for name in group.iter().filter(|n| *n != instead) {
                out.push(UnusedProgram {
                    name: name.clone(),
                    section: sections.get(name).cloned().unwrap_or_default(),
                    instead: instead.clone(),
                    why: self.passed_over.get(name).cloned(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_and_exclude_by_name_or_section() {
        let sections: BTreeMap<String, String> = [
            ("entry_btf", "tp_btf/irq_handler_entry"),
            ("entry", "raw_tp/irq_handler_entry"),
            ("exit_btf", "tp_btf/irq_handler_exit"),
            ("exit", "raw_tp/irq_handler_exit"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let all = sections.keys().cloned().collect();
        let mut alt = Alternatives::new(&[], &all).expect("valid");
        alt.leave_out(
            &[],
            &["raw_tp/irq_handler_entry".into(), "exit".into()],
            &sections,
        )
        .expect("valid");
        assert_eq!(alt.held_back(), names(&["entry", "exit"]));
        let mut alt = Alternatives::new(&[], &all).expect("valid");
        alt.leave_out(
            &["entry_btf".into(), "tp_btf/irq_handler_exit".into()],
            &[],
            &sections,
        )
        .expect("valid");
        assert_eq!(alt.held_back(), names(&["entry", "exit"]));
        assert!(alt.left_out().iter().all(|l| l.by == "programs.include"));
        let mut alt = Alternatives::new(&[], &all).expect("valid");
        let e = alt
            .leave_out(&[], &["raw_tp/irq_handler".into()], &sections)
            .expect_err("no such program");
        assert!(
            matches!(&e, ObjectError::ProgramChoice { key, .. } if key == "programs.exclude[0]"),
            "{e:?}"
        );
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn refused(detail: &str) -> PassedOver {
        PassedOver::Load(LoadFailure::Refused {
            errno: libc::EACCES,
            detail: detail.into(),
        })
    }

    #[test]
    fn the_first_member_is_tried_then_the_next_and_the_last_failure_is_the_configs() {
        let groups = vec![vec!["a".to_string(), "b".into(), "c".into()]];
        let mut alt = Alternatives::new(&groups, &names(&["a", "b", "c", "other"])).expect("valid");
        assert_eq!(alt.held_back(), names(&["b", "c"]));
        assert!(alt.pass_over("a", refused("old kernel")));
        assert_eq!(alt.held_back(), names(&["a", "c"]));
        // Programs outside every group are not alternatives.
        assert!(!alt.pass_over("other", refused("x")));
        let sections: BTreeMap<String, String> =
            [("a", "tp_btf/a"), ("b", "fentry/b"), ("c", "kprobe/c")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let unused = alt.unused(&sections);
        assert_eq!(unused.len(), 2);
        assert_eq!(
            (unused[0].name.as_str(), unused[0].instead.as_str()),
            ("a", "b")
        );
        assert!(unused[0]
            .why
            .as_ref()
            .is_some_and(|w| w.to_string().contains("old kernel")));
        assert_eq!(
            (unused[1].name.as_str(), unused[1].section.as_str()),
            ("c", "kprobe/c")
        );
        assert!(unused[1].why.is_none(), "never tried");

        assert!(alt.pass_over("b", refused("no trampolines")));
        assert_eq!(alt.held_back(), names(&["a", "b"]));
        // The last member's failure is the config's, with the others'.
        assert!(!alt.pass_over("c", refused("no kprobes")));
        let all = alt.exhausted("c");
        assert_eq!(
            all.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn a_name_the_object_lacks_is_refused_with_its_place() {
        let groups = vec![
            vec!["a".to_string(), "b".into()],
            vec!["c".into(), "typo".into()],
        ];
        let e = Alternatives::new(&groups, &names(&["a", "b", "c"])).expect_err("typo");
        assert_eq!(
            e,
            ObjectError::NoSuchProgram {
                group: 1,
                index: 1,
                name: "typo".into(),
                available: vec!["a".into(), "b".into(), "c".into()]
            }
        );
    }
}
