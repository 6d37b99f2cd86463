"""Aggregation of run metrics, tables and figures."""
