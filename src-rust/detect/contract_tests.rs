//! The contract every registered detector keeps: its result has exactly its `FIELDS`, it
//! never panics on degenerate input, it refuses infinities and ragged columns, it stops at a
//! spent deadline, and its result does not depend on the thread count.

use super::shared::test_data::normals;
use super::{run_detector, Column, REGISTRY};
use crate::args::{Params, Value};
use crate::error::CoreError;

/// Parameter sets to try on every detector: the defaults, then small values of every count
/// (and of the clustering threshold) so that tiny inputs are tested too.
fn parameter_sets(name: &str) -> Vec<Params> {
    let detector = super::detector(name).unwrap();
    let has = |param: &str| detector.params.iter().any(|spec| spec.name == param);
    let mut sets = vec![Params::new()];
    let mut small = Params::new();
    for (param, value) in [
        ("min_segment", Value::from(2i64)),
        ("permutations", Value::from(3i64)),
        ("max_test_n", Value::from(4i64)),
        ("min_pairs", Value::from(1i64)),
        ("min_values", Value::from(1i64)),
        ("max_lag", Value::from(5i64)),
        ("sample_size", Value::from(10i64)),
        ("max_terms", Value::from(8i64)),
        ("threshold", Value::from(1.0)),
    ] {
        if has(param) {
            small.insert(param.to_owned(), value);
        }
    }
    sets.push(small);
    sets
}

fn run_everything(columns: &[&[f64]]) {
    for detector in REGISTRY {
        for params in parameter_sets(detector.name) {
            let table = run_detector(detector.name, columns, &params)
                .unwrap_or_else(|error| panic!("{}: {error}", detector.name));
            assert_eq!(table.names(), detector.fields, "{}", detector.name);
            for (name, column) in table.into_columns() {
                if let Column::Float(values) = column {
                    let p_value = name == "p_value";
                    assert!(
                        !p_value || values.iter().all(|p| p.is_nan() || (0.0..=1.0).contains(p)),
                        "{}: {values:?}",
                        detector.name
                    );
                }
            }
        }
    }
}

#[test]
fn degenerate_inputs_never_panic() {
    let nan = f64::NAN;
    let empty: [f64; 0] = [];
    run_everything(&[]);
    run_everything(&[&empty]);
    run_everything(&[&empty, &empty]);
    run_everything(&[&[1.0]]);
    run_everything(&[&[1.0], &[2.0], &[nan]]);
    run_everything(&[&[nan; 30], &[nan; 30]]);
    run_everything(&[&[3.0; 30], &[3.0; 30], &[-0.0; 30]]);
    let ramp: Vec<f64> = (0..60).map(f64::from).collect();
    let two_values: Vec<f64> = (0..60).map(|i| f64::from(i % 2)).collect();
    let sparse: Vec<f64> = (0..60)
        .map(|i| if i % 3 == 0 { nan } else { f64::from(i) })
        .collect();
    let huge: Vec<f64> = (0..60)
        .map(|i| if i % 2 == 0 { 1e308 } else { -1e308 })
        .collect();
    let tiny: Vec<f64> = (0..60).map(|i| f64::from(i) * 5e-324).collect();
    run_everything(&[&ramp, &two_values, &sparse, &huge, &tiny]);
    // 17 metrics (more than 16 law candidates) with a law among the last ones.
    let data: Vec<Vec<f64>> = (0..17).map(|k| normals(k, 40)).collect();
    let mut views: Vec<&[f64]> = data.iter().map(|c| &c[..]).collect();
    let copy = data[15].clone();
    views.push(&copy);
    run_everything(&views);
}

#[test]
fn infinities_and_ragged_columns_are_refused() {
    let ramp: Vec<f64> = (0..40).map(f64::from).collect();
    let infinite: Vec<f64> = (0..40)
        .map(|i| if i == 7 { f64::INFINITY } else { f64::from(i) })
        .collect();
    for detector in REGISTRY {
        for columns in [
            &[&infinite[..], &ramp[..]][..],
            &[&ramp[..], &ramp[..5]][..],
        ] {
            match run_detector(detector.name, columns, &Params::new()) {
                Err(CoreError::InvalidArgument { argument, .. }) => {
                    assert_eq!(argument, "columns", "{}", detector.name)
                }
                other => panic!("{}: {other:?}", detector.name),
            }
        }
    }
}

#[test]
fn unknown_detectors_and_parameters_are_refused() {
    let error = run_detector("clusters", &[], &Params::new()).unwrap_err();
    assert!(
        error.to_string().contains("no detector \"clusters\""),
        "{error}"
    );
    for detector in REGISTRY {
        let params = Params::new().with("no_such_parameter", 1.0);
        let error = run_detector(detector.name, &[], &params).unwrap_err();
        assert!(
            error.to_string().contains("no_such_parameter"),
            "{}: {error}",
            detector.name
        );
    }
}

#[test]
fn a_spent_deadline_stops_every_detector() {
    let data: Vec<Vec<f64>> = (0..4).map(|k| normals(k, 200)).collect();
    let columns: Vec<&[f64]> = data.iter().map(|c| &c[..]).collect();
    for detector in REGISTRY {
        let params = Params::new().with("deadline", 0.0);
        assert!(
            matches!(
                run_detector(detector.name, &columns, &params),
                Err(CoreError::Timeout { .. })
            ),
            "{}",
            detector.name
        );
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let data: Vec<Vec<f64>> = (0..5).map(|k| normals(50 + k, 700)).collect();
    let columns: Vec<&[f64]> = data.iter().map(|c| &c[..]).collect();
    let run = || {
        REGISTRY
            .iter()
            .map(|detector| {
                let mut specific = Params::new();
                for spec in detector.params {
                    if ["permutations", "max_test_n"].contains(&spec.name) {
                        specific.insert(spec.name.to_owned(), Value::from(99i64));
                    }
                }
                format!(
                    "{:?}",
                    run_detector(detector.name, &columns, &specific).unwrap()
                )
            })
            .collect::<Vec<_>>()
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
