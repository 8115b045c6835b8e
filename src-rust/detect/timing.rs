//! Timing of every registered detector on null data (run with
//! `cargo test --release detectors_timing -- --ignored --nocapture`).

use std::time::{Duration, Instant};

use super::shared::test_data::normals;
use super::{run_detector, REGISTRY};
use crate::args::Params;

/// CPU time (user + system) of this process so far, from /proc/self/stat (Linux; 0 elsewhere).
fn cpu_time() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let after_name = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            // Fields 14 and 15 (utime, stime) are at 11 and 12 after the name.
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ = 100
}

/// 100k tasks × 16 metrics of iid N(0, 1) noise, every detector with its defaults.
#[test]
#[ignore = "timing; run explicitly in release mode"]
fn detectors_timing() {
    let n = 100_000;
    let m = 16;
    let data: Vec<Vec<f64>> = (0..m).map(|k| normals(1000 + k as u64, n)).collect();
    let columns: Vec<&[f64]> = data.iter().map(|c| &c[..]).collect();
    let (cpu, total) = (cpu_time(), Instant::now());
    let mut report = Vec::new();
    for detector in REGISTRY {
        let (cpu, start) = (cpu_time(), Instant::now());
        let table = run_detector(detector.name, &columns, &Params::new()).unwrap();
        let perms: i64 = table
            .get("perms_run")
            .and_then(|column| column.as_int())
            .map_or(0, |runs| runs.iter().sum());
        report.push(format!(
            "{} {:.0?} (CPU {:.0?}, {perms} permutation rounds)",
            detector.name,
            start.elapsed(),
            cpu_time() - cpu
        ));
    }
    println!(
        "threads {}: {}; total {:.3?} (CPU {:.2?})",
        rayon::current_num_threads(),
        report.join(", "),
        total.elapsed(),
        cpu_time() - cpu
    );
}

#[test]
#[ignore = "timing"]
fn permutation_timing() {
    use super::shared::permutation::PermutationBuffer;
    let mut buffer = PermutationBuffer::default();
    let start = Instant::now();
    let mut sink = 0usize;
    for r in 0..1000u64 {
        sink += buffer.fill(r, 10_000)[0];
    }
    println!("perm 10k: {:?} per call ({sink})", start.elapsed() / 1000);
    let values = normals(1, 100_000);
    let start = Instant::now();
    for _ in 0..10 {
        sink += super::shared::ranks::min_ranks(&values)[0];
    }
    println!(
        "min_ranks 100k: {:?} per call ({sink})",
        start.elapsed() / 10
    );
}
