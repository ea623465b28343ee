"""``jutella bench``: the load benchmark (see docs/performance.md)."""
