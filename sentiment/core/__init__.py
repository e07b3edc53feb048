"""Domain types, clock, time buckets and small async helpers: plain code, no I/O."""
