"""Renderers: they format what the core computed and never compute it again.

* :mod:`.terminal` — rich tables and panels for the CLI.
* :mod:`.report` — self-contained HTML and Markdown reports (figures from :mod:`.report.plots`).
* :mod:`.emit` — framework configs (DeepSpeed JSON, accelerate FSDP YAML) written from a Plan.
"""
