//! The average distance over a cluster's member pairs: exact up to 4,096 members (in
//! parallel row blocks), else estimated from a fixed-seed sample of pairs.

use rayon::prelude::*;

use super::{
    Group, EXACT_AVERAGE_MAX_MEMBERS, GATHER_MAX_VALUES, SAMPLE_DRAWS, SAMPLE_SEED_BASE,
    SEQUENTIAL_AVERAGE_MAX_MEMBERS, STAGE,
};
use crate::args::Budget;
use crate::error::CoreResult;
use crate::rng::{Modulo, SplitMix64};

/// (avg_distance, sampled) of one cluster.
pub(super) fn average_distance(
    columns: &[&[f64]],
    groups: &[Group],
    group_of: &[u32],
    cluster: usize,
    members: &[u32],
    budget: &Budget,
) -> CoreResult<(f64, bool)> {
    budget.check(STAGE)?;
    if members.len() > EXACT_AVERAGE_MAX_MEMBERS {
        return Ok((sampled_average(columns, cluster, members), true));
    }
    let group = group_of[members[0] as usize];
    let uniform = members.iter().all(|&task| group_of[task as usize] == group);
    let average = if uniform {
        exact_average_uniform(columns, &groups[group as usize].dims, members, budget)?
    } else {
        exact_average_mixed(columns, members, budget)?
    };
    Ok((average, false))
}

/// Rows of a cluster's exact average per rayon job: all of them for small clusters.
pub(super) fn min_rows_per_job(members: usize) -> usize {
    if members <= SEQUENTIAL_AVERAGE_MAX_MEMBERS {
        members.max(1)
    } else {
        16
    }
}

/// Exact mean distance when every member has the same metrics `dims` (all pairs count).
pub(super) fn exact_average_uniform(
    columns: &[&[f64]],
    dims: &[usize],
    members: &[u32],
    budget: &Budget,
) -> CoreResult<f64> {
    let k = members.len();
    let coordinates: Vec<Vec<f64>> = dims
        .iter()
        .map(|&dim| {
            members
                .iter()
                .map(|&task| columns[dim][task as usize])
                .collect()
        })
        .collect();
    let row_sums: Vec<f64> = (0..k.saturating_sub(1))
        .into_par_iter()
        .with_min_len(min_rows_per_job(k))
        .map_init(Vec::new, |squared, a| {
            if a % 64 == 0 {
                budget.check(STAGE)?;
            }
            // squared[b - a - 1] = d2(a, b), accumulated metric by metric (column order).
            squared.clear();
            squared.resize(k - a - 1, 0.0);
            for column in &coordinates {
                let origin = column[a];
                for (d2, &value) in squared.iter_mut().zip(&column[a + 1..]) {
                    let difference = value - origin;
                    *d2 += difference * difference;
                }
            }
            // Four independent partial sums let the square roots vectorise.
            let mut lanes = [0.0f64; 4];
            let chunks = squared.chunks_exact(4);
            let remainder = chunks.remainder();
            for chunk in chunks {
                for (lane, &d2) in lanes.iter_mut().zip(chunk) {
                    *lane += d2.sqrt();
                }
            }
            let mut sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
            for &d2 in remainder {
                sum += d2.sqrt();
            }
            Ok(sum)
        })
        .collect::<CoreResult<_>>()?;
    let pairs = (k * (k - 1) / 2) as f64;
    Ok(row_sums.iter().sum::<f64>() / pairs)
}

/// Exact mean distance over the member pairs that share a metric (members with different
/// metric sets).
pub(super) fn exact_average_mixed(
    columns: &[&[f64]],
    members: &[u32],
    budget: &Budget,
) -> CoreResult<f64> {
    let m = columns.len();
    let k = members.len();
    let rows = gather_rows(columns, members);
    let row_totals: Vec<(f64, usize)> = (0..k.saturating_sub(1))
        .into_par_iter()
        .with_min_len(min_rows_per_job(k))
        .map(|a| {
            if a % 64 == 0 {
                budget.check(STAGE)?;
            }
            let origin = &rows[a * m..(a + 1) * m];
            let mut sum = 0.0;
            let mut count = 0usize;
            for b in a + 1..k {
                if let Some(distance) = shared_distance(origin, &rows[b * m..(b + 1) * m]) {
                    sum += distance;
                    count += 1;
                }
            }
            Ok((sum, count))
        })
        .collect::<CoreResult<_>>()?;
    let (sum, count) = row_totals
        .iter()
        .fold((0.0, 0usize), |(s, c), &(rs, rc)| (s + rs, c + rc));
    Ok(if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    })
}

/// Estimated mean distance of a large cluster from its fixed-seed pair sample.
pub(super) fn sampled_average(columns: &[&[f64]], cluster: usize, members: &[u32]) -> f64 {
    let k = members.len();
    let modulo = Modulo::new(k as u64);
    let mut rng = SplitMix64::new(SAMPLE_SEED_BASE.wrapping_add(cluster as u64));
    let mut draw = || modulo.reduce(rng.next_u64()) as usize;
    let mut sum = 0.0;
    let mut count = 0usize;
    let mut add = |distance: Option<f64>| {
        if let Some(distance) = distance {
            sum += distance;
            count += 1;
        }
    };
    let m = columns.len();
    if k.saturating_mul(m) <= GATHER_MAX_VALUES {
        // The members' rows side by side: the random pairs then hit the cache.
        let rows = gather_rows(columns, members);
        for _ in 0..SAMPLE_DRAWS / 2 {
            let (a, b) = (draw(), draw());
            if a != b {
                add(shared_distance(
                    &rows[a * m..(a + 1) * m],
                    &rows[b * m..(b + 1) * m],
                ));
            }
        }
    } else {
        let mut row_a = vec![0.0; m];
        let mut row_b = vec![0.0; m];
        for _ in 0..SAMPLE_DRAWS / 2 {
            let (a, b) = (draw(), draw());
            if a != b {
                for (metric, column) in columns.iter().enumerate() {
                    row_a[metric] = column[members[a] as usize];
                    row_b[metric] = column[members[b] as usize];
                }
                add(shared_distance(&row_a, &row_b));
            }
        }
    }
    if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    }
}

/// Row-major (task × metric) copy of the tasks' values.
pub(super) fn gather_rows(columns: &[&[f64]], tasks: &[u32]) -> Vec<f64> {
    let m = columns.len();
    let mut rows = vec![0.0; tasks.len() * m];
    for (metric, column) in columns.iter().enumerate() {
        for (row, &task) in tasks.iter().enumerate() {
            rows[row * m + metric] = column[task as usize];
        }
    }
    rows
}

/// Distance over the metrics both rows have (NaN = absent), None when they share none.
#[inline]
pub(super) fn shared_distance(a: &[f64], b: &[f64]) -> Option<f64> {
    let mut shared = false;
    let mut d2 = 0.0;
    for (&x, &y) in a.iter().zip(b) {
        if !x.is_nan() && !y.is_nan() {
            shared = true;
            let difference = x - y;
            d2 += difference * difference;
        }
    }
    shared.then(|| d2.sqrt())
}
