"""A small partner-ab study (export of the fixture systems) and wide rating files for it."""

import csv
import json
from pathlib import Path

from partner.ab.export import ExportConfig, export

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "ab"
SYSTEMS = [str(FIX / "partner.jsonl"), str(FIX / "bart.jsonl")]


def make_study(tmp_path, harm=True):
    """Export the fixture systems (plus the original) into ``tmp_path/study``; (export result, key)."""
    cfg = ExportConfig(include_original="original", attention_checks=2, harm_question=harm)
    res = export(SYSTEMS, tmp_path / "study", cfg)
    return res, json.loads((tmp_path / "study" / "key.json").read_text())


def wide(path, key, rater, overall, harm_fn=lambda k: "none", extra_rows=()):
    """Wide survey export: rater_id,item_id,empathy,fluency,specificity,overall,harm."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rater_id", "item_id", "empathy", "fluency", "specificity", "overall", "harm"])
        for item, k in key["items"].items():
            if k["is_attention_check"]:
                e = k["expected"]
                w.writerow([rater, item, e["empathy"], e["fluency"], e["specificity"], e["overall"], "none"])
            else:
                w.writerow([rater, item, "tie", "A", "tie", overall(k), harm_fn(k)])
        for row in extra_rows:
            w.writerow(row)
    return str(path)


def prefer_overall(system):
    return lambda k: "A" if k["system_a"] == system else "B" if k["system_b"] == system else "tie"
