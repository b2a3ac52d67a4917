"""Every dataset format, the real OA file, and bad rows reported with file and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qlora_eval.errors import InputError
from qlora_eval.train.config import OASST1_HUB_ID, DatasetFormat
from qlora_eval.train.data import ALPACA_PROMPT_NO_INPUT, Segment, hf_chat_renderer, load_examples


def _write(path: Path, rows: list[Any]) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_real_oa_file_is_input_output(shared_data: Path) -> None:
    data = load_examples(str(shared_data / "oa_questions.jsonl"), DatasetFormat.INPUT_OUTPUT)
    assert len(data.examples) == 953
    assert data.sha256 == "6fb3b5d42975bd72c5a22612435d9daee2de29fdf1fe595d65754b18a4dc57f4"
    first = data.examples[0]
    assert first.segments[0].text.startswith("### Human:") and first.segments[0].text.endswith("### Assistant:")
    assert [s.trainable for s in first.segments] == [False, True]
    assert first.target_start == 1
    assert first.source.endswith("oa_questions.jsonl:1")


def test_input_output(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", [{"input": "Q?", "output": "A."}, "", {"input": "", "output": "B"}])
    data = load_examples(path, DatasetFormat.INPUT_OUTPUT)
    assert [e.segments for e in data.examples] == [
        (Segment("Q?", False), Segment("A.", True)),
        (Segment("", False), Segment("B", True)),
    ]
    assert data.examples[1].source == f"{path}:3"  # blank lines keep their numbers


def test_alpaca_with_and_without_input(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "a.jsonl",
        [{"instruction": "Add", "input": "1 2", "output": "3"}, {"instruction": "Greet", "output": "Hi"}],
    )
    a, b = load_examples(path, DatasetFormat.ALPACA).examples
    assert a.segments[0].text.endswith("### Instruction:\nAdd\n\n### Input:\n1 2\n\n### Response: ")
    assert b.segments[0] == Segment(ALPACA_PROMPT_NO_INPUT.format(instruction="Greet"), False)
    assert a.segments[1] == Segment("3", True)


def test_guanaco_masks_human_turns(tmp_path: Path) -> None:
    text = "### Human: Hi ### Assistant: Hello ### Human: Bye ### Assistant: Bye now"
    (example,) = load_examples(_write(tmp_path / "g.jsonl", [{"text": text}]), DatasetFormat.GUANACO).examples
    assert example.segments == (
        Segment("### Human: Hi ### Assistant:", False),
        Segment(" Hello ", True),
        Segment("### Human: Bye ### Assistant:", False),
        Segment(" Bye now", True),
    )
    assert example.target_start == 0  # the whole conversation is the target region, as in the QLoRA scripts
    assert "".join(s.text for s in example.segments) == text


def test_chat_uses_the_template(tmp_path: Path, tiny_llama_dir: Path) -> None:
    from transformers import AutoTokenizer

    renderer = hf_chat_renderer(AutoTokenizer.from_pretrained(tiny_llama_dir))
    row = {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
            {"role": "assistant", "content": "Ciao"},
        ]
    }
    (example,) = load_examples(_write(tmp_path / "c.jsonl", [row]), DatasetFormat.CHAT, chat_renderer=renderer).examples
    assert example.segments == (
        Segment("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", False),
        Segment("Hello", True),
        Segment("<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n", False),
        Segment("Ciao", True),
    )
    assert example.target_start == 3


def test_oasst1_reads_the_guanaco_hub_set(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    calls = []

    def fake_load_dataset(name: str, split: str) -> dict[str, list[str]]:
        calls.append((name, split))
        return {"text": ["### Human: a ### Assistant: b", "### Human: c ### Assistant: d"]}

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = load_examples("oasst1", DatasetFormat.GUANACO)
    assert calls == [(OASST1_HUB_ID, "train")]
    assert len(data.examples) == 2 and data.examples[1].segments[-1] == Segment(" d", True)


@pytest.mark.parametrize(
    ("fmt", "rows", "line", "message"),
    [
        (DatasetFormat.INPUT_OUTPUT, [{"input": "a", "output": "b"}, {"input": "a"}], 2, "missing field 'output'"),
        (DatasetFormat.INPUT_OUTPUT, [{"input": "a", "output": 3}], 1, "'output' must be a string"),
        (DatasetFormat.INPUT_OUTPUT, ["{not json"], 1, "not valid JSON"),
        (DatasetFormat.INPUT_OUTPUT, [{"input": "a", "output": "b"}, "", "[1, 2]"], 3, "JSON object"),
        (DatasetFormat.ALPACA, [{"instruction": "x", "input": 5, "output": "y"}], 1, "'input' must be a string"),
        (DatasetFormat.ALPACA, [{"instruction": " ", "output": "y"}], 1, "'instruction' is empty"),
        (DatasetFormat.GUANACO, [{"text": "### Human: no reply"}], 1, "must contain '### Assistant:'"),
        (DatasetFormat.GUANACO, [{"text": "### Human: a ### Assistant: b ### Human: c"}], 1, "end with an assistant"),
        (DatasetFormat.CHAT, [{"messages": []}], 1, "'messages'"),
        (DatasetFormat.CHAT, [{"messages": [{"role": "user", "content": "a"}]}], 1, "last message"),
        (DatasetFormat.CHAT, [{"messages": [{"role": "bot", "content": "a"}]}], 1, "role 'bot'"),
    ],
)
def test_bad_rows_name_file_and_line(
    tmp_path: Path, fmt: DatasetFormat, rows: list[Any], line: int, message: str
) -> None:
    path = _write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(InputError, match=message) as info:
        load_examples(path, fmt, chat_renderer=lambda messages, add: "x")
    assert info.value.source == path
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_examples(str(tmp_path / "nope.jsonl"), DatasetFormat.INPUT_OUTPUT)
    with pytest.raises(InputError, match="no rows"):
        load_examples(_write(tmp_path / "empty.jsonl", [""]), DatasetFormat.INPUT_OUTPUT)
