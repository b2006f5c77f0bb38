//! The standard `process_*` families, read from `/proc/self` at scrape
//! time. Ours rather than the `prometheus` crate's `process` feature: that
//! one rounds CPU time to whole seconds, and these are exact to the tick.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, Opts};

/// (name, help, counter?) of each family, in the order they are written.
const FAMILIES: [(&str, &str, bool); 6] = [
    (
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        true,
    ),
    (
        "process_max_fds",
        "Maximum number of open file descriptors.",
        false,
    ),
    (
        "process_open_fds",
        "Number of open file descriptors.",
        false,
    ),
    (
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        false,
    ),
    (
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        false,
    ),
    (
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        false,
    ),
];

pub struct ProcessCollector {
    descs: Vec<Desc>,
}

impl ProcessCollector {
    pub fn new() -> Self {
        let descs = FAMILIES
            .iter()
            .map(|(name, help, _)| {
                Desc::new(
                    name.to_string(),
                    help.to_string(),
                    Vec::new(),
                    Default::default(),
                )
                .expect("static metric definition is valid")
            })
            .collect();
        Self { descs }
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let p = crate::host::procstat::read();
        let values = [
            p.cpu_seconds,
            p.max_fds as f64,
            p.open_fds as f64,
            p.resident_bytes as f64,
            p.start_time_seconds,
            p.virtual_bytes as f64,
        ];
        FAMILIES
            .iter()
            .zip(values)
            .flat_map(|(&(name, help, counter), value)| {
                let opts = Opts::new(name, help);
                if counter {
                    let c = Counter::with_opts(opts).expect("static metric definition is valid");
                    c.inc_by(value);
                    c.collect()
                } else {
                    let g = Gauge::with_opts(opts).expect("static metric definition is valid");
                    g.set(value);
                    g.collect()
                }
            })
            .collect()
    }
}
