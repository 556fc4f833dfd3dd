"""Side-by-side benchmarks: sparkml-jobs vs Spark MLlib vs single-process numpy / scikit-learn.

``make bench`` runs :mod:`benchmarks.run`; ``python -m benchmarks.profile_kmeans`` breaks one
k-means iteration's time down.
"""
