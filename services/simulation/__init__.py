"""Simulated hub events: the county simulator, its wiring to Kafka or a file, and small
sample files."""
