//! Run time and run count per loaded program, read from the kernel at
//! scrape time. The kernel only counts while `kernel.bpf_stats_enabled` is
//! 1, so with it off the families are left out rather than shown at 0.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{CounterVec, Opts};

use crate::object::program_info::prog_info;

const RUN_TIME: (&str, &str) = (
    "ebpf_exporter_ebpf_program_run_time_seconds",
    "How long eBPF programs ran, while kernel.bpf_stats_enabled is 1",
);
const RUN_COUNT: (&str, &str) = (
    "ebpf_exporter_ebpf_program_run_count_total",
    "How many times eBPF programs ran, while kernel.bpf_stats_enabled is 1",
);

/// Descriptors of the running programs, which each load replaces.
pub type Programs = Arc<Mutex<Vec<OwnedFd>>>;

pub struct ProgramStats {
    /// The running configs' programs, as the last load left them.
    programs: Programs,
    descs: Vec<Desc>,
}

fn counters((name, help): (&str, &str)) -> CounterVec {
    CounterVec::new(Opts::new(name, help), &["id"]).expect("static metric definition is valid")
}

impl ProgramStats {
    /// The collector, and the handle through which loads set its programs.
    pub fn new() -> (Self, Programs) {
        let programs = Programs::default();
        let descs = [RUN_TIME, RUN_COUNT]
            .into_iter()
            .flat_map(|f| counters(f).desc().into_iter().cloned().collect::<Vec<_>>())
            .collect();
        let stats = Self {
            programs: programs.clone(),
            descs,
        };
        (stats, programs)
    }
}

fn stats_enabled() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").is_ok_and(|s| s.trim() == "1")
}

impl Collector for ProgramStats {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let programs = self.programs.lock().unwrap_or_else(|p| p.into_inner());
        if programs.is_empty() || !stats_enabled() {
            return Vec::new();
        }
        let (run_time, run_count) = (counters(RUN_TIME), counters(RUN_COUNT));
        for fd in programs.iter() {
            let Some(info) = prog_info(fd.as_fd()) else {
                continue;
            };
            let label = info.id.to_string();
            run_time
                .with_label_values(&[label.as_str()])
                .inc_by(info.run_time_ns as f64 / 1e9);
            run_count
                .with_label_values(&[label.as_str()])
                .inc_by(info.run_cnt as f64);
        }
        let mut families = run_time.collect();
        families.extend(run_count.collect());
        families
    }
}
