"""Leaf helpers every area uses: atomic writes and locks (`fsutil`), sizes and durations read and
printed as Docker does (`units`), RFC 3339 times (`timefmt`), random choices without OpenSSL
(`randomness`), Go's template and tab-writer rules for `--format` (`gotemplate`, `gofmt`,
`tabwriter`), a full disk under the state root (`diskfull`), timestamps of the run path for
bench/run (`trace`, off unless DOCKUI_TRACE is set).

May import only the standard library and `engine.errors`; nothing in the engine is
below it.
"""
