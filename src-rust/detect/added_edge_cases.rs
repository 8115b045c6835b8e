//! Every added detector on degenerate inputs: no panic, sensible shapes.

use super::test_data::normals;
use super::{
    conservation_laws, dependence_stats, distribution_shift_stats, information_flow_stats,
    outlier_scores,
};

fn run_all(columns: &[&[f64]]) {
    let m = columns.len();
    let outliers = outlier_scores(columns, 3.5).unwrap();
    assert!(outliers.metric.iter().all(|&k| (k as usize) < m));
    for (min_segment, permutations, max_test_n) in [(1, 1, 4), (20, 199, 10_000), (3, 5, 12)] {
        let rows =
            distribution_shift_stats(columns, min_segment, permutations, 7, max_test_n).unwrap();
        assert_eq!(rows.len(), m);
        for row in &rows {
            assert!(row[12] == 0.0 || row[12] == 1.0);
            if row[12] == 1.0 {
                assert!((0.0..=1.0).contains(&row[4]), "{row:?}");
            }
        }
    }
    for (min_pairs, permutations, max_test_n) in [(0, 1, 1), (30, 199, 10_000), (2, 3, 5)] {
        let rows = dependence_stats(columns, 0.7, min_pairs, permutations, 7, max_test_n).unwrap();
        assert_eq!(rows.len(), m * m.saturating_sub(1) / 2);
        for row in rows.iter().filter(|row| row[11] == 1.0) {
            assert!((0.0..=1.0).contains(&row[6]), "{row:?}");
        }
    }
    for (min_values, permutations, max_test_n, max_lag) in
        [(0, 1, 1, 1), (50, 199, 10_000, 3), (2, 3, 3, usize::MAX)]
    {
        let rows =
            information_flow_stats(columns, min_values, permutations, 7, max_test_n, max_lag)
                .unwrap();
        assert_eq!(rows.len(), m * m.saturating_sub(1));
        for row in rows.iter().filter(|row| row[9] == 1.0) {
            assert!((0.0..=1.0).contains(&row[6]), "{row:?}");
            assert!(row[4] >= 0.0 && row[5] >= 0.0, "{row:?}");
        }
    }
    // All subset sizes (max_terms 16) only on few metrics: 2^m fits.
    let widest = if m <= 6 { 16 } else { 3 };
    for (max_terms, sample_size) in [(2, 10), (4, 2000), (widest, 12)] {
        let laws =
            conservation_laws(columns, &vec![false; m], 1e-4, 7, max_terms, sample_size).unwrap();
        for law in &laws {
            assert_eq!(law.satisfied.len(), law.tasks.len());
            assert!(law.support >= 0.9);
        }
    }
}

#[test]
fn degenerate_inputs_never_panic() {
    let nan = f64::NAN;
    let empty: [f64; 0] = [];
    run_all(&[]);
    run_all(&[&empty]);
    run_all(&[&empty, &empty]);
    run_all(&[&[1.0]]);
    run_all(&[&[1.0], &[2.0], &[nan]]);
    run_all(&[&[nan; 30], &[nan; 30]]);
    run_all(&[&[3.0; 30], &[3.0; 30], &[-0.0; 30]]);
    let ramp: Vec<f64> = (0..60).map(f64::from).collect();
    let two_values: Vec<f64> = (0..60).map(|i| f64::from(i % 2)).collect();
    let sparse: Vec<f64> = (0..60)
        .map(|i| if i % 3 == 0 { nan } else { f64::from(i) })
        .collect();
    let huge: Vec<f64> = (0..60)
        .map(|i| if i % 2 == 0 { 1e308 } else { -1e308 })
        .collect();
    let tiny: Vec<f64> = (0..60).map(|i| f64::from(i) * 5e-324).collect();
    run_all(&[&ramp, &two_values, &sparse, &huge, &tiny]);
    let infinite: Vec<f64> = (0..40)
        .map(|i| if i == 7 { f64::INFINITY } else { f64::from(i) })
        .collect();
    // An infinity is invalid input for every detector (NaN marks absence).
    let with_infinity: [&[f64]; 2] = [&infinite, &ramp[..40]];
    assert!(outlier_scores(&with_infinity, 3.5).is_err());
    assert!(distribution_shift_stats(&with_infinity, 20, 199, 7, 10_000).is_err());
    assert!(dependence_stats(&with_infinity, 0.7, 30, 199, 7, 10_000).is_err());
    assert!(information_flow_stats(&with_infinity, 50, 199, 7, 10_000, 3).is_err());
    assert!(conservation_laws(&with_infinity, &[false, false], 1e-4, 7, 4, 2000).is_err());
    // 17 metrics (more than 16 law candidates) with a law among the last ones.
    let data: Vec<Vec<f64>> = (0..17).map(|k| normals(k, 40)).collect();
    let mut views: Vec<&[f64]> = data.iter().map(|c| &c[..]).collect();
    let copy = data[15].clone();
    views.push(&copy);
    run_all(&views);
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let data: Vec<Vec<f64>> = (0..5).map(|k| normals(50 + k, 700)).collect();
    let columns: Vec<&[f64]> = data.iter().map(|c| &c[..]).collect();
    let run = || {
        (
            distribution_shift_stats(&columns, 20, 99, 3, 300)
                .unwrap()
                .iter()
                .flat_map(|r| r.map(f64::to_bits))
                .collect::<Vec<_>>(),
            dependence_stats(&columns, 0.7, 30, 99, 3, 300)
                .unwrap()
                .iter()
                .flat_map(|r| r.map(f64::to_bits))
                .collect::<Vec<_>>(),
            information_flow_stats(&columns, 50, 99, 3, 300, 3)
                .unwrap()
                .iter()
                .flat_map(|r| r.map(f64::to_bits))
                .collect::<Vec<_>>(),
        )
    };
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(run);
    let many = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap()
        .install(run);
    assert_eq!(single, many);
}
