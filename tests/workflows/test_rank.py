"""The rank workflow as a library call: typed request in, RankDocument out, nothing printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qlora_eval.errors import ConfigError, InputError
from qlora_eval.workflows.document import RankDocument
from qlora_eval.workflows.rank import RankRequest, rank
from tests.cli.helpers import write_tournament


def test_rank_files_returns_a_document_and_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reviews = write_tournament(tmp_path / "reviews", prompts=10)
    request = RankRequest(inputs=(str(reviews),), format="qlora", method="bt", rounds=50, seed=4)
    outcome = rank(request)
    assert capsys.readouterr() == ("", "")
    document = outcome.document
    assert [m.model for m in document.ranking.models] == [r.model for r in outcome.result.ratings]
    assert document.ranking.seed == 4 and document.judges == ("gpt-4",) and len(document.inputs) == 12
    assert RankDocument.from_json(json.loads(document.dumps())) == document
    again = rank(request).document
    assert again.ranking.models == document.ranking.models and again.data_sha256 == document.data_sha256


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        (RankRequest(), ConfigError, "nothing to rank"),
        (RankRequest(inputs=("x",), db=Path("s.db")), ConfigError, "not both"),
        (RankRequest(db=Path("s.db"), format="qlora"), ConfigError, "--format applies to INPUT"),
        (RankRequest(db=Path("/nonexistent/s.db")), InputError, "no store here"),
    ],
)
def test_bad_requests(request_: RankRequest, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        rank(request_)
