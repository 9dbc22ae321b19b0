"""Leaf helpers every area uses: atomic writes and locks (`fsutil`), sizes, durations and times (`units`).

May import only the standard library and `engine.errors`; nothing in the engine is below it.
"""
