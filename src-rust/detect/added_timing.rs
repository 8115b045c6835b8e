//! Timing of the added detectors on null data (run with
//! `cargo test --release added_detectors_timing -- --ignored --nocapture`).

use std::time::{Duration, Instant};

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

use super::test_data::normals;
use super::{
    conservation_laws, dependence_stats, distribution_shift_stats, information_flow_stats,
    outlier_scores,
};

/// 100k tasks × 16 metrics of iid N(0, 1) noise, the Python layer's default parameters.
#[test]
#[ignore = "timing; run explicitly in release mode"]
fn added_detectors_timing() {
    let n = 100_000;
    let m = 16;
    let data: Vec<Vec<f64>> = (0..m).map(|k| normals(1000 + k as u64, n)).collect();
    let columns: Vec<&[f64]> = data.iter().map(|c| &c[..]).collect();
    let seed = 0x5EED_CAFE;
    let cpu = cpu_time();
    let total = Instant::now();
    let mut report = Vec::new();
    let mut timed = |name: &str, run: &mut dyn FnMut() -> String| {
        let (cpu, start) = (cpu_time(), Instant::now());
        let detail = run();
        report.push(format!(
            "{name} {:.0?} (CPU {:.0?}, {detail})",
            start.elapsed(),
            cpu_time() - cpu
        ));
    };
    timed("outliers", &mut || {
        format!(
            "{} flagged",
            outlier_scores(&columns, 3.5).unwrap().task.len()
        )
    });
    timed("shift", &mut || {
        let rows = distribution_shift_stats(&columns, 20, 199, seed, 10_000).unwrap();
        format!("{} perms", rows.iter().map(|r| r[5]).sum::<f64>())
    });
    timed("dependence", &mut || {
        let rows = dependence_stats(&columns, 0.7, 30, 199, seed, 10_000).unwrap();
        format!("{} perms", rows.iter().map(|r| r[7]).sum::<f64>())
    });
    timed("flow", &mut || {
        let rows = information_flow_stats(&columns, 50, 199, seed, 10_000, 3).unwrap();
        format!("{} perms", rows.iter().map(|r| r[7]).sum::<f64>())
    });
    timed("laws", &mut || {
        let laws = conservation_laws(&columns, &vec![false; m], 1e-4, seed, 4, 2000).unwrap();
        format!("{} laws", laws.len())
    });
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
    use super::permutation::PermutationBuffer;
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
        sink += super::ranks::min_ranks(&values)[0];
    }
    println!(
        "min_ranks 100k: {:?} per call ({sink})",
        start.elapsed() / 10
    );
}

#[test]
#[ignore = "timing"]
fn laws_timing() {
    let n = 100_000;
    let m = 16;
    let data: Vec<Vec<f64>> = (0..m).map(|k| normals(1000 + k as u64, n)).collect();
    let columns: Vec<&[f64]> = data.iter().map(|c| &c[..]).collect();
    let start = Instant::now();
    let laws = conservation_laws(&columns, &vec![false; m], 1e-4, 7, 4, 2000).unwrap();
    println!("laws: {:?} ({} laws)", start.elapsed(), laws.len());
}

#[test]
#[ignore = "timing"]
fn flow_and_dependence_timing() {
    let n = 100_000;
    let m = 16;
    let data: Vec<Vec<f64>> = (0..m).map(|k| normals(1000 + k as u64, n)).collect();
    let columns: Vec<&[f64]> = data.iter().map(|c| &c[..]).collect();
    let cpu = cpu_time();
    let start = Instant::now();
    let flow = information_flow_stats(&columns, 50, 199, 0x5EED_CAFE, 10_000, 3).unwrap();
    println!(
        "flow: {:?} CPU {:?} ({} rows)",
        start.elapsed(),
        cpu_time() - cpu,
        flow.len()
    );
    let cpu = cpu_time();
    let start = Instant::now();
    let dep = dependence_stats(&columns, 0.7, 30, 199, 0x5EED_CAFE, 10_000).unwrap();
    println!(
        "dependence: {:?} CPU {:?} ({} rows)",
        start.elapsed(),
        cpu_time() - cpu,
        dep.len()
    );
}
