"""Crowd-safety science as plain functions and classes over numbers and numpy arrays.

Nothing here imports Kafka or Faust: the same code serves streaming, backtesting and benchmarks.
"""
