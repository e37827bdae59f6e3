"""Benchmarks run by ``workbench bench NAME`` (see BENCHMARKS.md)."""
