"""Serving: prefill and decode per replica layout, KV cache, continuous batching, and the
throughput a replica layout sustains under time-to-first-token and time-per-token targets.

Reuses `chipmix.perf` for op FLOPs/bytes (`perf.ops`), the roofline (`perf.roofline`) and
collectives (`perf.collectives`), and the chip calibration; adds only what serving needs.
"""
