"""Workflows (L5): library functions that chain the engines on typed inputs and return typed results.

They read no argv and print nothing; the CLI and the web app (L6) parse, call one and show its result.

- :mod:`.rank`: verdict files or the store -> battles -> ratings -> diagnostics -> :class:`.document.RankDocument`.
- :mod:`.tournament`: generate -> judge -> rate -> report (:func:`.tournament.run_tournament`,
  :func:`.tournament.dry_run`); rating and report in :mod:`.tournament_report`.
- :mod:`.check`: the CI regression gate on two rank documents.
- :mod:`.document` / :mod:`.tournament_document`: the typed, versioned JSON of ``rank --json`` and
  ``tournament --json`` (the one definition of those files).
- :mod:`.mmlu`: MMLU result files -> report. :mod:`.relative`: relative (score-pair) rankings.

Submodules are imported on demand (nothing here is imported eagerly), so ``qlora-eval rank`` stays light.
"""
