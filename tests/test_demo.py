"""The demo's data selection (fast) and the whole demo (slow)."""

import numpy as np
import pytest

from detailed_balance.collect.dataset import dataset_path
from detailed_balance.demo import demo_counts, run_demo
from detailed_balance.formats import read_counts


def test_demo_selects_a_connected_two_way_core_of_the_shipped_dataset():
    counts = read_counts(dataset_path())
    core = demo_counts(counts, n_states=40)
    assert 30 <= core.n_states <= 40
    # one two-way component, and every kept row keeps all of its attempts (leaving = escape)
    assert len(np.unique(core.two_way_components())) == 1
    kept = [counts.index(s) for s in core.states]
    assert core.attempts.tolist() == counts.attempts[kept].tolist()


@pytest.mark.slow
def test_demo_runs_end_to_end_on_a_synthetic_chain(tmp_path):
    report = run_demo(tmp_path / "demo", synthetic=True)
    index = (report / "index.md").read_text()
    assert "Verdict" in index and (report / "figures" / "potential_landscape.png").exists()
