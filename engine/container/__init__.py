"""Containers: records on disk (`state`, `names`), the verbs (`options`, `create`, `start`,
`lifecycle`, `removal`, `cleanup`, `sweep`, `reconcile`, `inspect`, `exec`), the per-container monitor
(`monitor/`, its long-lived stage also in C under `monitor/native/`), mounts and volumes, logs, the
STATUS and PORTS texts (`status`), commit and export; `runtime` is the former single module's
namespace, kept for callers that have not moved.

The one area that composes the others: may import `engine.image`, `engine.sandbox`, `engine.network`,
`engine.events`, `engine.kernel`, `engine.util`, `engine.config`, `engine.errors`. Only `engine.stats`,
`engine.api` and the front ends import it (pyproject.toml's import contracts).
"""
