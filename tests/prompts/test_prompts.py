"""Prompt sets: the real Vicuna and OA files, the demo set, user files, checksums and downloads."""

from __future__ import annotations

import collections
import filecmp
import functools
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from qlora_eval.errors import ConfigError, InputError
from qlora_eval.prompts import (
    BUILTIN_SETS,
    build_oa_from_oasst1,
    file_sha256,
    load_manifest,
    load_prompt_set,
    locate_set_file,
    parse_guanaco_conversation,
)
from qlora_eval.types import Role

REPO = Path(__file__).resolve().parents[2]


def test_vicuna_has_80_prompts_in_9_categories(shared_data: Path) -> None:
    s = load_prompt_set("vicuna", data_dir=shared_data)
    assert len(s) == 80
    assert s.sha256 == "590c39157bc561eadd7f03cad4be18c2b597f93029780af65f86718f39eafa87"
    assert s.version == "qlora-2023-05"
    counts = collections.Counter(p.category for p in s.prompts)
    assert set(counts) == {
        "generic", "knowledge", "roleplay", "common-sense", "fermi", "counterfactual", "coding", "math", "writing"
    }  # fmt: skip
    assert counts["generic"] == 10 and counts["coding"] == 7 and counts["math"] == 3
    assert s.prompts[0].prompt_id == "1"
    assert s.prompts[0].question == "How can I improve my time management skills?"


def test_oa_has_953_conversations_with_previous_turns(shared_data: Path) -> None:
    s = load_prompt_set("oa", data_dir=shared_data)
    assert len(s) == 953
    lengths = collections.Counter(len(p.turns) for p in s.prompts)
    assert lengths == {1: 517, 3: 414, 5: 22}
    multi = next(p for p in s.prompts if len(p.turns) == 5)
    assert [t.role for t in multi.turns] == [Role.USER, Role.ASSISTANT] * 2 + [Role.USER]
    assert all(p.reference for p in s.prompts)
    first = s.prompts[0]
    first_row = json.loads((shared_data / "oa_questions.jsonl").read_text().splitlines()[0])
    assert first.prompt_id == first_row["question_id"]
    text = "".join(t.content for p in s.prompts for t in p.turns)
    assert "### Human:" not in text and "### Assistant:" not in text


def test_demo_set_ships_in_the_package_and_covers_categories() -> None:
    s = load_prompt_set("demo")
    assert len(s) == 12
    assert s.sha256 == file_sha256(Path(s.source))
    assert {p.category for p in s.prompts} == {
        "generic", "knowledge", "roleplay", "common-sense", "fermi", "counterfactual", "coding", "math", "writing"
    }  # fmt: skip
    assert s.prompts[0].question == "What is the capital of France?"


@pytest.mark.parametrize("name", BUILTIN_SETS)
def test_top_level_prompts_folder_mirrors_the_package_manifests(name: str) -> None:
    assert filecmp.cmp(REPO / "prompts" / f"{name}.yaml", REPO / "qlora_eval" / "data" / "prompts" / f"{name}.yaml")
    assert load_manifest(name).name == name


def test_unknown_set_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="vicuna, oa, demo"):
        load_prompt_set("mt-bench")


def test_wrong_checksum_in_data_dir_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "vicuna_questions.jsonl").write_text('{"question_id": 1, "text": "x", "category": "generic"}\n')
    with pytest.raises(InputError, match="sha256") as info:
        load_prompt_set("vicuna", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert "vicuna_questions.jsonl" in str(info.value)


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_download_once_checked_and_cached(file_server: tuple[str, Path], tmp_path: Path) -> None:
    url, root = file_server
    demo = load_manifest("demo")
    content = (REPO / "prompts" / "demo.jsonl").read_bytes()
    (root / "set.jsonl").write_bytes(content)
    manifest = replace(demo, name="remote", filename="remote.jsonl", url=f"{url}/set.jsonl")
    cache = tmp_path / "cache"
    got = locate_set_file(manifest, data_dir=None, cache_dir=cache)
    assert got == cache / "remote.jsonl"
    assert got.read_bytes() == content
    (root / "set.jsonl").unlink()  # the second lookup must not need the server
    assert locate_set_file(manifest, data_dir=None, cache_dir=cache) == got


def test_download_with_wrong_checksum_leaves_nothing(file_server: tuple[str, Path], tmp_path: Path) -> None:
    url, root = file_server
    (root / "set.jsonl").write_text("changed upstream\n")
    manifest = replace(load_manifest("demo"), filename="remote.jsonl", url=f"{url}/set.jsonl")
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match="expected c3a4d673"):
        locate_set_file(manifest, data_dir=None, cache_dir=cache)
    assert list(cache.iterdir()) == []


def test_unreachable_download_says_use_data_dir(tmp_path: Path) -> None:
    manifest = replace(load_manifest("demo"), filename="remote.jsonl", url="http://127.0.0.1:9/none.jsonl")
    with pytest.raises(InputError, match="--data-dir"):
        locate_set_file(manifest, data_dir=None, cache_dir=tmp_path)


def test_user_jsonl_with_prompt_field_and_conversations(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    rows = [
        {"q": "Hello?", "id": "a", "cat": "generic"},
        {
            "q": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Yo"},
                {"role": "user", "content": "Why?"},
            ],
            "id": "b",
            "cat": "chat",
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    s = load_prompt_set(str(path), prompt_field="q", id_field="id", category_field="cat")
    assert s.name == "mine" and s.sha256 == file_sha256(path) and s.version == f"sha256:{s.sha256[:12]}"
    assert [p.prompt_id for p in s.prompts] == ["a", "b"]
    assert [len(p.turns) for p in s.prompts] == [1, 3]
    assert s.prompts[1].question == "Why?" and s.prompts[1].category == "chat"


def test_user_csv_numbers_rows_without_id_field(tmp_path: Path) -> None:
    path = tmp_path / "qs.csv"
    path.write_text('prompt,other\n"What is 2+2?",x\n"Say hi, please",y\n')
    s = load_prompt_set(str(path), prompt_field="prompt")
    assert [(p.prompt_id, p.question) for p in s.prompts] == [("1", "What is 2+2?"), ("2", "Say hi, please")]


def test_user_file_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"prompt": "no text field"}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:2: field 'text' is missing.*--prompt-field"):
        load_prompt_set(str(path))
    path.write_text('{"text": "ok"}\n{not json\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:2: not valid JSON"):
        load_prompt_set(str(path))
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"text": "a", "id": 1}\n{"text": "b", "id": 1}\n')
    with pytest.raises(InputError, match="appears twice"):
        load_prompt_set(str(dup), id_field="id")


def test_parse_guanaco_conversation() -> None:
    turns = parse_guanaco_conversation("### Human: Hi there ### Assistant: Hello! ### Human: Bye ### Assistant:")
    assert [(t.role, t.content) for t in turns] == [
        (Role.USER, "Hi there"), (Role.ASSISTANT, "Hello!"), (Role.USER, "Bye")
    ]  # fmt: skip
    with pytest.raises(ValueError, match="start with"):
        parse_guanaco_conversation("Hi ### Assistant:")
    with pytest.raises(ValueError, match="expected"):
        parse_guanaco_conversation("### Human: a ### Human: b ### Assistant:")


def test_build_oa_from_a_hand_made_oasst1_tree() -> None:
    datasets = pytest.importorskip("datasets")
    rows = [
        {"message_id": "p1", "parent_id": None, "role": "prompter", "text": "What is AI?", "lang": "en", "rank": None},
        {"message_id": "a1", "parent_id": "p1", "role": "assistant", "text": "Second best", "lang": "en", "rank": 1},
        {"message_id": "a2", "parent_id": "p1", "role": "assistant", "text": "Best answer", "lang": "en", "rank": 0},
        {"message_id": "p2", "parent_id": "a2", "role": "prompter", "text": "More?", "lang": "en", "rank": None},
        {"message_id": "a3", "parent_id": "p2", "role": "assistant", "text": "Sure.", "lang": "en", "rank": 0},
        {"message_id": "p3", "parent_id": "a1", "role": "prompter", "text": "No reply yet", "lang": "en", "rank": None},
        {"message_id": "q1", "parent_id": None, "role": "prompter", "text": "Hola", "lang": "es", "rank": None},
        {"message_id": "b1", "parent_id": "q1", "role": "assistant", "text": "¡Hola!", "lang": "es", "rank": None},
    ]
    s = build_oa_from_oasst1(datasets.Dataset.from_list(rows))
    assert [p.prompt_id for p in s.prompts] == ["p1", "p2", "q1"]  # p3 has no reply
    by_id = {p.prompt_id: p for p in s.prompts}
    assert [t.content for t in by_id["p2"].turns] == ["What is AI?", "Best answer", "More?"]
    assert by_id["p1"].reference == "Best answer"
    assert by_id["q1"].reference == "¡Hola!"
    assert s.sha256 == build_oa_from_oasst1(rows).sha256
    with pytest.raises(InputError, match="ancestor"):
        build_oa_from_oasst1([*rows, {"message_id": "x", "parent_id": "gone", "role": "prompter", "text": "?"},
                              {"message_id": "y", "parent_id": "x", "role": "assistant", "text": "!"}])  # fmt: skip


def test_limit_keeps_version_and_hash() -> None:
    s = load_prompt_set("demo")
    small = s.limit(3)
    assert len(small) == 3 and small.sha256 == s.sha256 and small.version == s.version
    with pytest.raises(ConfigError):
        s.limit(0)
