"""A fixed small budget of the robustness fuzzer (tests/fuzz.py), each case in a child process.

The long run is ``python tests/fuzz.py --cases 5000`` (or SKDEEP_FUZZ_CASES).
"""

import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzz  # noqa: E402


def test_fuzz_fixed_budget():
    reports = []
    counts, failures = fuzz.fuzz(int(os.environ.get("SKDEEP_FUZZ_CI_CASES", 150)), derandomize=True,
                                 report=reports.append)
    assert not failures, "\n".join(reports)
    assert counts["ok"] > 0 and counts["clear_error"] > 0
