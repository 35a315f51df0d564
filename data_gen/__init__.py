"""Pure-NumPy data generation for arithmetic tasks (never imports jax).

Flow: tasks (Problem) -> formats (Text) -> tokenizers (tokens) -> positions (ids).
"""
