"""The shard plan (extractors.plan): a video keeps its shard for good, new videos go into new shards,
and a list file is rewritten only when its content changes (so Snakemake reruns only that shard)."""

from __future__ import annotations

import json
import os

import pytest

from extractors.plan import list_path, main, plan_shards, read_list, read_lists, write_plan


def _manifest(path, ids, root="/data", **extra):
    path.write_text("".join(json.dumps({"video_id": v, "path": f"{root}/{v}", "split": "train", **extra}) + "\n"
                            for v in ids))
    return path


def _stamps(lists):
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in sorted(lists.glob("shard-*.jsonl"))}


def test_first_plan_sorts_by_id_and_cuts_shards(tmp_path):
    manifest = _manifest(tmp_path / "m.jsonl", ["b", "e", "a", "d", "c"])
    plan = write_plan(manifest, tmp_path / "lists", 2, tmp_path / "plan.json")
    assert [e["videos"] for e in plan["shards"]] == [2, 2, 1]
    assert read_list(list_path(tmp_path / "lists", 0)) == [("a", "/data/a"), ("b", "/data/b")]
    assert read_list(list_path(tmp_path / "lists", 2)) == [("e", "/data/e")]
    assert plan["new_shards"] == ["shard-00000", "shard-00001", "shard-00002"] and plan["relisted_shards"] == []
    assert json.loads((tmp_path / "plan.json").read_text()) == plan


def test_same_videos_rewrite_nothing(tmp_path):
    lists = tmp_path / "lists"
    write_plan(_manifest(tmp_path / "m.jsonl", ["a", "b", "c"]), lists, 2, tmp_path / "plan.json")
    before = _stamps(lists)
    # Another dev split, relabelled rows, the rows in another order: the same videos.
    _manifest(tmp_path / "m.jsonl", ["c", "a", "b"], split="dev", label=1)
    plan = write_plan(tmp_path / "m.jsonl", lists, 2, tmp_path / "plan.json")
    assert _stamps(lists) == before and plan["new_shards"] == [] and plan["relisted_shards"] == []


def test_new_videos_are_appended_in_new_shards(tmp_path):
    lists = tmp_path / "lists"
    write_plan(_manifest(tmp_path / "m.jsonl", ["b", "d", "f"]), lists, 2, tmp_path / "plan.json")
    before = _stamps(lists)
    # "a" and "c" sort before the old videos: they still go after them, into a new shard.
    plan = write_plan(_manifest(tmp_path / "m.jsonl", ["a", "b", "c", "d", "e", "f", "g"]), lists, 2,
                      tmp_path / "plan.json")
    assert {k: v for k, v in _stamps(lists).items() if k in before} == before  # old lists untouched
    assert plan["new_shards"] == ["shard-00002", "shard-00003"]
    assert [v for v, _ in read_list(list_path(lists, 2))] == ["a", "c"]
    assert [v for v, _ in read_list(list_path(lists, 3))] == ["e", "g"]
    assert [v for v, _ in read_list(list_path(lists, 1))] == ["f"]  # the short last shard stays short


def test_a_moved_video_relists_only_its_shard_and_a_dropped_one_stays(tmp_path):
    lists = tmp_path / "lists"
    write_plan(_manifest(tmp_path / "m.jsonl", ["a", "b", "c", "d"]), lists, 2, tmp_path / "plan.json")
    before = _stamps(lists)
    rows = [{"video_id": "a", "path": "/data/a"}, {"video_id": "b", "path": "/elsewhere/b"},
            {"video_id": "c", "path": "/data/c"}]  # d left the manifest
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    plan = write_plan(tmp_path / "m.jsonl", lists, 2, tmp_path / "plan.json")
    assert plan["relisted_shards"] == ["shard-00000"]
    assert read_list(list_path(lists, 0)) == [("a", "/data/a"), ("b", "/elsewhere/b")]
    assert _stamps(lists)["shard-00001.jsonl"] == before["shard-00001.jsonl"]
    assert [v for v, _ in read_list(list_path(lists, 1))] == ["c", "d"]


def test_a_gap_or_a_bad_line_is_a_named_error(tmp_path):
    lists = tmp_path / "lists"
    write_plan(_manifest(tmp_path / "m.jsonl", ["a", "b", "c"]), lists, 1, tmp_path / "plan.json")
    os.remove(list_path(lists, 1))
    with pytest.raises(ValueError, match=r"not numbered 0\.\.1"):
        read_lists(lists)
    list_path(lists, 1).write_text('{"video_id": "b"}\n')
    with pytest.raises(ValueError, match=r"shard-00001\.jsonl:1: not a shard list line"):
        read_lists(lists)
    with pytest.raises(ValueError, match="listed in two shard lists"):
        plan_shards([], {0: [("a", "/a")], 1: [("a", "/a")]}, 2)


def test_cli(tmp_path, capsys):
    manifest = _manifest(tmp_path / "m.jsonl", ["a", "b", "c"])
    assert main(["--manifest", str(manifest), "--lists", str(tmp_path / "l"), "--shard-size", "2",
                 "--out", str(tmp_path / "plan.json")]) == 0
    assert "3 videos in 2 shards; new: 2" in capsys.readouterr().out
    assert main(["--manifest", str(tmp_path / "none.jsonl"), "--lists", str(tmp_path / "l"), "--shard-size", "2",
                 "--out", str(tmp_path / "plan.json")]) == 1
    assert "none.jsonl: manifest not found" in capsys.readouterr().err
