"""Building blocks shared by the NumPy backend's detectors, one module for each module of
the Rust core's ``detect::shared``: column checks and views (``columns``), seeded
permutations and the sequential permutation test (``permutation``), order statistics,
binning and entropies of codes (``ranks``), and the smallest eigenpairs (``eigen``)."""
