"""Containers: records on disk (`state`), names, create/start/stop/rm (`runtime`), the per-container
monitor (`monitor`, `native/`), mounts and volumes, logs, commit and export.

The one area that composes the others: may import `engine.image`, `engine.sandbox`, `engine.network`,
`engine.kernel`, `engine.util`. Nothing below it imports it.
"""
