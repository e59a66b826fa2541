"""The attempt record (``detailed_balance.attempts``) is what the collector writes and readers read;
the design names are one tuple that the CLI offers."""

import json
import typing

import pytest

from detailed_balance.attempts import (
    OUTCOMES,
    REQUIRED,
    AttemptRecord,
    attempt_problem,
    attempt_record,
    record_problem,
    state_problem,
)
from detailed_balance.cli import main
from detailed_balance.collect import DESIGNS, AnimalAgent, Collector, RunConfig
from detailed_balance.counts import check_state_names
from detailed_balance.errors import DataError
from detailed_balance.formats import read_attempt_log, write_attempt_log
from detailed_balance.synthetic import reversible_chain, sample_counts
from detailed_balance.testing.server import ThreadedLoopbackServer

FIELDS = set(typing.get_type_hints(AttemptRecord))
ALWAYS = set(AttemptRecord.__required_keys__)


def total(counts) -> int:
    return int(counts.count.sum() + counts.self_count.sum() + counts.rejected.sum())


def test_a_collected_log_has_exactly_the_record_fields(tmp_path):
    agent = AnimalAgent()
    cfg = RunConfig(
        agent=agent.name,
        template_hash=agent.template_hash(),
        api=agent.api,
        model="loopback-model",
        attempts=60,
    )
    faults = {"garbage": 0.2, "huge": 0.1, "500": 0.1}
    out = tmp_path / "r.jsonl"
    with ThreadedLoopbackServer(faults=faults, huge_chars=20_000, retry_after=0.0) as server:
        Collector(agent, cfg, [server.base_url], concurrency=4, progress=False).run(str(out))
    records = [json.loads(line) for line in out.read_text().splitlines()[1:]]
    assert len(records) >= 60
    seen = set()
    for rec in records:
        assert ALWAYS <= set(rec) <= FIELDS, set(rec) ^ FIELDS
        assert ("truncated" in rec) == (rec["outcome"] == "unparseable" and len(rec["raw"]) > 16000)
        assert attempt_problem(rec) is None and rec["outcome"] in OUTCOMES
        assert all(rec[f] is not None for f in REQUIRED)
        seen.add(rec["outcome"])
    assert {"transition", "unparseable"} <= seen  # the faults were drawn
    counts = read_attempt_log(out)  # the reader takes what the writer wrote
    assert total(counts) == sum(r["outcome"] != "error" for r in records)


def test_a_log_built_from_attempt_record_is_read_back(tmp_path):
    recs = [
        attempt_record("r", 0, "cat", outcome="transition", target="dog"),
        attempt_record("r", 1, "dog", outcome="self", target="dog"),
        attempt_record("r", 2, "dog", outcome="invalid", reason="not an animal"),
        attempt_record("r", 3, "dog"),  # an error: not counted
    ]
    assert all(attempt_problem(r) is None for r in recs)
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    counts = read_attempt_log(path)
    assert total(counts) == 3 and sorted(counts.states) == ["cat", "dog"]
    assert counts.rejected.sum() == 1 and counts.self_count.sum() == 1


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"attempt": True}, "not a non-negative integer"),
        ({"attempt": -1}, "not a non-negative integer"),
        ({"outcome": "maybe"}, "unknown outcome"),
        ({"source": ""}, "without a source"),
        ({"target": None}, "without a target"),
    ],
)
def test_attempt_problem_names_what_is_wrong(change, problem):
    rec = {**attempt_record("r", 0, "cat", outcome="transition", target="dog"), **change}
    assert problem in attempt_problem(rec)


def test_state_names_that_readers_refuse_are_refused():
    assert state_problem("red fox") is None
    for bad in ("a\x00b", "a\nb", "a\u2028b", "\ud800", "x" * 4097):
        assert state_problem(bad)


def test_readers_and_the_collector_share_one_state_name_rule():
    """counts.check_state_names (readers) says no exactly when attempts.state_problem does."""
    names = ["red fox", "x^2 + 1", "猫", "a\x00b", "a\tb", "a\x85b", "a\u2029b", "b\udfff", 3, None]
    names += ["x" * 4096, "x" * 4097]
    for name in names:
        refused = state_problem(name) is not None
        try:
            check_state_names([name], file="t.csv")
            raised = False
        except DataError as exc:
            raised = True
            assert state_problem(name) in str(exc)
        assert raised == refused, name


def test_the_synthetic_log_writer_writes_records_of_the_schema(tmp_path):
    counts = sample_counts(reversible_chain(4, seed=1), attempts_per_source=15, seed=2)
    path = tmp_path / "s.jsonl"
    write_attempt_log(counts, path)
    recs = [json.loads(line) for line in path.read_text().splitlines()[1:]]
    assert len(recs) == 60 and all(set(r) == ALWAYS for r in recs)
    assert all(attempt_problem(r) is None for r in recs)
    back = read_attempt_log(path)
    assert back.states == counts.states and back.rejected.tolist() == counts.rejected.tolist()


def test_a_reader_needs_less_than_a_resume():
    """Hand-written logs may omit the id or the target of ``self``; resuming needs both."""
    rec = {"source": "cat", "outcome": "self"}
    assert record_problem(rec) is None
    assert "not a non-negative integer" in attempt_problem(rec)
    assert "without a target" in attempt_problem({**rec, "attempt": 0})
    assert "differs from its source" in record_problem({**rec, "target": "dog"})


def test_the_cli_offers_exactly_the_designs(capsys):
    assert main(["collect", "--design", "nope", "--attempts", "1", "--out", "x.jsonl"]) == 2
    err = capsys.readouterr().err
    assert all(repr(d) in err for d in DESIGNS) and DESIGNS[0] == RunConfig.design


def test_the_synthetic_sampler_uses_the_collect_designs():
    from detailed_balance import synthetic

    assert synthetic.DESIGNS is DESIGNS
    chain = reversible_chain(4, seed=0)
    for design in DESIGNS:  # every collection design can be simulated
        counts = sample_counts(chain, design=design, total_attempts=40, start=0, seed=1)
        assert total(counts) == 40
