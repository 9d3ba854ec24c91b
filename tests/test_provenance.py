import re

from core.provenance import git_commit, machine_info


def test_git_commit_names_head_or_says_unknown(tmp_path):
    assert re.fullmatch(r"[0-9a-f]{4,40}(-dirty)?", git_commit())
    assert git_commit(tmp_path) == "unknown"  # not a repository


def test_machine_info_has_what_a_results_file_needs():
    info = machine_info()
    for key in ("platform", "python", "cpu_count", "torch", "torch_threads"):
        assert info[key]
