//! The serial recording loop of `Kiln.fire_all`, run natively.
//!
//! `fire_chunk` pulls up to `limit` tasks from a Python iterator, fires each one, times it
//! and checks its metrics, and hands back one chunk in columnar form: labels, outputs, the
//! distinct metric-name layouts, each recorded task's layout, one flat float64 buffer of
//! values, firing times and durations. The common case (a `TaskOutput` whose metrics are a
//! dict of str -> float/int) never leaves Rust; everything else goes through the
//! recorder's Python methods, so labels, errors and messages are exactly those of the
//! NumPy backend's `fire_chunk` (`crackle_runtime/_numpy/record.py`).
//!
//! Nothing fired is lost: a failure that stops the loop is returned with the chunk (the
//! `stop` field), so the kiln stores every earlier task before raising.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use numpy::IntoPyArray;
use pyo3::exceptions::PyException;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};

/// What the loop caches per task class: the class, its fixed label (None: call the
/// recorder's `label_of` per task) and whether the class has a `cool` hook.
struct Kind<'py> {
    class: Bound<'py, PyType>,
    fixed: Option<Bound<'py, PyAny>>,
    hook: bool,
}

/// A metric value the fast path accepts: an exact float or `numpy.float64` (`float64`), or
/// an exact int or bool, that converts to a finite f64 (for ints: correctly rounded, as
/// `float(value)`). Reading any of these runs no Python code. Anything else (other float
/// or int subclasses, NumPy integers, Decimal, inf, ints beyond the float range) returns
/// None and the task goes through the recorder's validation, which converts or raises.
fn fast_value(value: &Bound<'_, PyAny>, float64: &Bound<'_, PyAny>) -> Option<f64> {
    let number = if value.is_exact_instance_of::<PyFloat>() || value.get_type().is(float64) {
        value.cast::<PyFloat>().ok()?.value()
    } else if value.is_exact_instance_of::<PyInt>() || value.is_exact_instance_of::<PyBool>() {
        value.extract::<f64>().ok()?
    } else {
        return None;
    };
    number.is_finite().then_some(number)
}

/// The values of a dict of metrics if every key is a non-empty str and every value passes
/// `fast_value`, appended to `values`; the keys match `layout` by identity when `same` is
/// returned true.
fn fast_metrics<'py>(
    metrics: &Bound<'py, PyDict>,
    layout: Option<&Vec<Bound<'py, PyAny>>>,
    float64: &Bound<'py, PyAny>,
    values: &mut Vec<f64>,
) -> Option<bool> {
    let start = values.len();
    let mut same = layout.is_some_and(|names| names.len() == metrics.len());
    for (position, (key, value)) in metrics.iter().enumerate() {
        if same {
            same = layout.is_some_and(|names| key.is(&names[position]));
        }
        if !same {
            match key.cast_exact::<PyString>() {
                Ok(name) if name.to_str().is_ok_and(|text| !text.is_empty()) => {}
                _ => {
                    values.truncate(start);
                    return None;
                }
            }
        }
        match fast_value(&value, float64) {
            Some(number) => values.push(number),
            None => {
                values.truncate(start);
                return None;
            }
        }
    }
    Some(same)
}

/// Fire the next at most `limit` tasks of `tasks` (stopping early once the chunk has run
/// for `max_seconds`, so a progress bar moves) and return the recorded chunk, a dict with
/// the keys `CHUNK_FIELDS`; see `crackle_runtime._numpy.record.fire_chunk`.
#[pyfunction]
pub fn fire_chunk<'py>(
    py: Python<'py>,
    tasks: &Bound<'py, PyAny>,
    limit: usize,
    skip: bool,
    recorder: &Bound<'py, PyAny>,
    max_seconds: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let mut iterator = tasks.try_iter()?;
    let mut state = Recorder::new(py, recorder, skip)?;
    let labels = PyList::empty(py);
    let outputs = PyList::empty(py);
    let hooks = PyList::empty(py);
    let failures = PyList::empty(py);
    let mut layout_of: Vec<i64> = Vec::new();
    let mut fired_at: Vec<f64> = Vec::new();
    let mut duration: Vec<f64> = Vec::new();
    let mut stop: Option<Stop<'py>> = None;
    let mut count = 0usize;
    let mut done = false;

    // one wall-clock reading per chunk; firing times follow the monotonic clock from it
    let wall_zero_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64() * 1000.0);
    let clock_zero = Instant::now();

    while count < limit {
        let task = match iterator.next() {
            None => {
                done = true;
                break;
            }
            Some(Ok(task)) => task,
            Some(Err(error)) => {
                stop = Some(Stop::raw(py, None, error));
                break;
            }
        };
        count += 1;
        match state.record_one(&task) {
            Ok(Step::Recorded(fired)) => {
                if fired.hook {
                    hooks.append((labels.len(), &task, &fired.output))?;
                }
                labels.append(&fired.label)?;
                outputs.append(&fired.output)?;
                layout_of.push(fired.layout as i64);
                let since_zero = (fired.started - clock_zero).as_secs_f64();
                fired_at.push(wall_zero_ms + since_zero * 1000.0);
                duration.push(fired.seconds);
                if let Some(error) = fired.interrupt {
                    stop = Some(Stop::raw(py, Some(&fired.label), error));
                    break;
                }
                if since_zero + fired.seconds >= max_seconds {
                    break;
                }
            }
            Ok(Step::Failed { label, error }) => {
                failures.append((label, error))?;
                if clock_zero.elapsed().as_secs_f64() >= max_seconds {
                    break;
                }
            }
            Err(reason) => {
                stop = Some(reason);
                break;
            }
        }
    }

    // a signal that arrived after the last task's fire() (Ctrl-C) stops the loop here, so
    // the caller stores the chunk before raising it
    if let Err(error) = py.check_signals() {
        if stop.is_none() {
            stop = Some(Stop::raw(py, None, error));
        }
    }
    let layouts = PyList::new(py, &state.layouts)?;
    let stop = match stop {
        Some(Stop {
            label,
            error,
            task_failure,
        }) => (label, error, task_failure).into_pyobject(py)?.into_any(),
        None => py.None().into_bound(py),
    };
    let chunk = PyDict::new(py);
    let fields: [(&str, Bound<'py, PyAny>); 12] = [
        ("count", count.into_pyobject(py)?.into_any()),
        ("done", PyBool::new(py, done).to_owned().into_any()),
        ("labels", labels.into_any()),
        ("outputs", outputs.into_any()),
        ("layouts", layouts.into_any()),
        ("layout_of", layout_of.into_pyarray(py).into_any()),
        ("values", state.values.into_pyarray(py).into_any()),
        ("fired_at", fired_at.into_pyarray(py).into_any()),
        ("duration", duration.into_pyarray(py).into_any()),
        ("hooks", hooks.into_any()),
        ("failures", failures.into_any()),
        ("stop", stop),
    ];
    debug_assert!(fields.iter().map(|(name, _)| *name).eq(CHUNK_FIELDS));
    for (name, value) in fields {
        chunk.set_item(name, value)?;
    }
    // left on the recorder too, so that a Ctrl-C handled as this call returns (before the
    // caller holds the chunk) loses nothing: the caller finds it there
    recorder.setattr(intern!(py, "pending"), &chunk)?;
    Ok(chunk)
}

/// The names of `fire_chunk`'s result, in order (exported as `_native.CHUNK_FIELDS`).
pub const CHUNK_FIELDS: [&str; 12] = [
    "count",
    "done",
    "labels",
    "outputs",
    "layouts",
    "layout_of",
    "values",
    "fired_at",
    "duration",
    "hooks",
    "failures",
    "stop",
];

/// One recorded task.
struct Fired<'py> {
    label: Bound<'py, PyAny>,
    output: Bound<'py, PyAny>,
    layout: usize,
    started: Instant,
    seconds: f64,
    hook: bool,
    /// a non-Exception error (Ctrl-C) raised while the output was checked; the output was
    /// checked again and recorded, and the loop stops with this error
    interrupt: Option<PyErr>,
}

enum Step<'py> {
    Recorded(Fired<'py>),
    /// `fire()` raised an Exception and the mode is skip.
    Failed {
        label: Bound<'py, PyAny>,
        error: Py<PyAny>,
    },
}

/// Why the loop stops: `task_failure` is true when the task's `fire()` raised (the kiln
/// wraps it in TaskPanickedError); otherwise `error` is raised as it is.
struct Stop<'py> {
    label: Bound<'py, PyAny>,
    error: Py<PyAny>,
    task_failure: bool,
}

impl<'py> Stop<'py> {
    fn raw(py: Python<'py>, label: Option<&Bound<'py, PyAny>>, error: PyErr) -> Self {
        Stop {
            label: label.map_or_else(|| py.None().into_bound(py), Clone::clone),
            error: error.into_value(py).into_any(),
            task_failure: false,
        }
    }
}

/// The recorder's Python methods, the error mode, the per-class cache, the layouts met
/// so far and the chunk's flat value buffer.
struct Recorder<'py> {
    py: Python<'py>,
    skip: bool,
    output_type: Bound<'py, PyAny>,
    classify: Bound<'py, PyAny>,
    label_of: Bound<'py, PyAny>,
    fire_function: Bound<'py, PyAny>,
    slow_record: Bound<'py, PyAny>,
    float64: Bound<'py, PyAny>,
    kinds: Vec<Kind<'py>>,
    last_kind: usize,
    /// the distinct metric-name layouts (tuples of validated names), in first-seen order,
    /// their key objects (for the identity check of the common case), and a dict from
    /// layout to index (Python's own tuple hashing and equality)
    layouts: Vec<Bound<'py, PyTuple>>,
    layout_keys: Vec<Vec<Bound<'py, PyAny>>>,
    layout_index: Bound<'py, PyDict>,
    current_layout: usize,
    values: Vec<f64>,
}

impl<'py> Recorder<'py> {
    fn new(py: Python<'py>, recorder: &Bound<'py, PyAny>, skip: bool) -> PyResult<Self> {
        Ok(Recorder {
            py,
            skip,
            output_type: recorder.getattr(intern!(py, "output_type"))?,
            classify: recorder.getattr(intern!(py, "classify"))?,
            label_of: recorder.getattr(intern!(py, "label_of"))?,
            fire_function: recorder.getattr(intern!(py, "fire_function"))?,
            slow_record: recorder.getattr(intern!(py, "slow_record"))?,
            float64: recorder.getattr(intern!(py, "float64_type"))?,
            kinds: Vec::new(),
            last_kind: 0,
            layouts: Vec::new(),
            layout_keys: Vec::new(),
            layout_index: PyDict::new(py),
            current_layout: 0,
            values: Vec::new(),
        })
    }

    /// The index of the layout `names` (a dict lookup, as the NumPy backend does), adding
    /// it when new.
    fn layout_of(&mut self, names: Bound<'py, PyTuple>) -> PyResult<usize> {
        let index = match self.layout_index.get_item(&names)? {
            Some(known) => known.extract()?,
            None => {
                let index = self.layouts.len();
                self.layout_index.set_item(&names, index)?;
                self.layout_keys.push(names.iter().collect());
                self.layouts.push(names);
                index
            }
        };
        self.current_layout = index;
        Ok(index)
    }

    /// The class's fixed label (or None) and hook flag, cached per chunk.
    fn kind(&mut self, task: &Bound<'py, PyAny>) -> PyResult<usize> {
        let class = task.get_type();
        let last = self.kinds.get(self.last_kind);
        if !last.is_some_and(|kind| kind.class.is(&class)) {
            self.last_kind = match self.kinds.iter().position(|kind| kind.class.is(&class)) {
                Some(index) => index,
                None => {
                    let (fixed, hook) = self.classify.call1((task,))?.extract()?;
                    self.kinds.push(Kind { class, fixed, hook });
                    self.kinds.len() - 1
                }
            };
        }
        Ok(self.last_kind)
    }

    fn record_one(&mut self, task: &Bound<'py, PyAny>) -> Result<Step<'py>, Stop<'py>> {
        let py = self.py;
        let kind = self
            .kind(task)
            .map_err(|error| Stop::raw(py, None, error))?;
        let hook = self.kinds[kind].hook;
        let label = match &self.kinds[kind].fixed {
            Some(label) => label.clone(),
            None => self
                .label_of
                .call1((task,))
                .map_err(|error| Stop::raw(py, None, error))?,
        };
        let fire = match task.getattr_opt(intern!(py, "fire")) {
            Ok(Some(fire)) if fire.is_callable() => fire,
            Ok(_) => self
                .fire_function
                .call1((task,))
                .map_err(|error| Stop::raw(py, Some(&label), error))?,
            Err(error) => return Err(Stop::raw(py, Some(&label), error)),
        };

        let started = Instant::now();
        let fired = fire.call0();
        let seconds = started.elapsed().as_secs_f64();
        let output = match fired {
            Ok(output) => output,
            Err(error) if error.is_instance_of::<PyException>(py) => {
                let error = error.into_value(py).into_any();
                if self.skip {
                    return Ok(Step::Failed { label, error });
                }
                return Err(Stop {
                    label,
                    error,
                    task_failure: true,
                });
            }
            Err(error) => return Err(Stop::raw(py, Some(&label), error)),
        };
        let (stored, interrupt) = match self.store(&label, output.clone()) {
            Err(error) if !error.is_instance_of::<PyException>(py) => {
                (self.store(&label, output), Some(error))
            }
            stored => (stored, None),
        };
        let (output, layout) = stored.map_err(|error| Stop::raw(py, Some(&label), error))?;
        Ok(Step::Recorded(Fired {
            label,
            output,
            layout,
            started,
            seconds,
            hook,
            interrupt,
        }))
    }

    /// Append the output's values and return (output, layout). The fast path takes a
    /// TaskOutput holding a plain dict of plain numbers; anything else goes through the
    /// recorder's `slow_record(label, output) -> (output, names, values)`, which validates
    /// (raising InvalidMetricError or TaskPanickedError).
    fn store(
        &mut self,
        label: &Bound<'py, PyAny>,
        output: Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, usize)> {
        if output.get_type().is(&self.output_type) {
            let metrics = output.getattr(intern!(self.py, "metrics"))?;
            if let Ok(metrics) = metrics.cast_exact::<PyDict>() {
                let start = self.values.len();
                let current = self.layout_keys.get(self.current_layout);
                if let Some(same) = fast_metrics(metrics, current, &self.float64, &mut self.values)
                {
                    if same {
                        return Ok((output, self.current_layout));
                    }
                    let names = PyTuple::new(self.py, metrics.keys())?;
                    return match self.layout_of(names) {
                        Ok(layout) => Ok((output, layout)),
                        Err(error) => {
                            self.values.truncate(start);
                            Err(error)
                        }
                    };
                }
            }
        }
        let checked = self.slow_record.call1((label, output))?;
        let (output, names, numbers): (Bound<'py, PyAny>, Bound<'py, PyTuple>, Vec<f64>) =
            checked.extract()?;
        let layout = self.layout_of(names)?;
        self.values.extend_from_slice(&numbers);
        Ok((output, layout))
    }
}
