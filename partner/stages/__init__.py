"""Pipeline stages of partner-train: one module per stage, each with ``run(cfg, force) -> Path``.

A stage writes into ``cfg.run_dir/<stage>/`` and is skipped when that folder holds a finished
output (its ``.complete`` marker), unless ``force``.
"""
