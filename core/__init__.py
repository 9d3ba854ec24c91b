"""The shared foundations layer: what every other package builds on, and nothing that trains.

Model registry (``registry``: locating and loading the embedded pretrained models), text
(``text``: sentence splitting and tokenising), corpora (``corpora``: EPITOME, ESConv,
CounselChat loaders and the seeded splits), configs (``configuration``: dataclasses with help,
YAML and ``--set`` overrides), JSONL I/O (``jsonio``: atomic writes, error records, resume) and
provenance (``provenance``: git commit and machine info written beside results).

``core`` imports no other package of the toolkit; ``classifiers``, ``rewards`` and ``partner``
import it.
"""
