"""Feature cache: round trip, random access without reading the shard, fp16, completeness checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from extractors.cache import (
    FeatureCache,
    ShardWriter,
    VideoFeatures,
    check_shard,
    is_complete_shard,
    num_shards,
    shard_name,
    shard_rows,
    write_shard,
)


def _video(video_id: str, num: int, seed: int, dv: int = 6, da: int = 4) -> VideoFeatures:
    rng = np.random.default_rng(seed)
    return VideoFeatures(
        video_id=video_id,
        visual=rng.standard_normal((num, dv)).astype(np.float32),
        audio=rng.standard_normal((num, da)).astype(np.float32),
        timestamps=np.arange(num) / 25.0,
        fps=25.0,
        meta={"path": f"/data/{video_id}.mp4", "audio_offset": 0.01, "native_fps": 25.0},
    )


@pytest.fixture
def videos():
    return [_video("a.mp4", 5, 0), _video("b.mp4", 3, 1), _video("c.mp4", 7, 2)]


def test_round_trip_and_random_access(tmp_path, videos):
    write_shard(tmp_path / shard_name(0), videos[:2], [{"video_id": "x.mp4", "path": "/x", "reason": "empty"}],
                meta={"visual": {"name": "random-weights(seed=0)"}})
    write_shard(tmp_path / shard_name(1), videos[2:], meta={"visual": {"name": "r"}})
    cache = FeatureCache(tmp_path)
    assert cache.video_ids() == ["a.mp4", "b.mp4", "c.mp4"] and len(cache) == 3
    for video in reversed(videos):  # any order
        got = cache.get(video.video_id)
        np.testing.assert_array_equal(got.visual, video.visual)
        np.testing.assert_array_equal(got.audio, video.audio)
        np.testing.assert_array_equal(got.timestamps, video.timestamps)
        assert got.visual.dtype == np.float32 and got.fps == 25.0
        assert got.meta["audio_offset"] == 0.01 and got.meta["path"] == video.meta["path"]
    assert cache.get("a.mp4").meta["extractor"]["visual"]["name"] == "random-weights(seed=0)"
    assert cache.failures() == [{"video_id": "x.mp4", "path": "/x", "reason": "empty"}]
    with pytest.raises(KeyError):
        cache.get("missing.mp4")


def test_reads_are_memory_mapped(tmp_path, videos):
    write_shard(tmp_path / shard_name(0), videos)
    cache = FeatureCache(tmp_path)
    got = cache.get("b.mp4")
    visual, _, _ = cache._arrays[tmp_path / shard_name(0)]
    assert isinstance(visual, np.memmap)  # the shard is mapped, not loaded
    assert not np.shares_memory(got.visual, visual)  # the caller's copy holds only its own rows
    assert got.visual.shape == (3, 6)


def test_fp16_option(tmp_path, videos):
    write_shard(tmp_path / shard_name(0), videos, fp16=True)
    assert np.load(tmp_path / shard_name(0) / "visual.npy").dtype == np.float16
    got = FeatureCache(tmp_path).get("c.mp4")
    assert got.visual.dtype == np.float32
    np.testing.assert_allclose(got.visual, videos[2].visual, rtol=1e-3, atol=1e-3)


def test_index_contents(tmp_path, videos):
    write_shard(tmp_path / shard_name(0), videos)
    index = json.loads((tmp_path / shard_name(0) / "index.json").read_text())
    assert [(e["video_id"], e["row"], e["T"]) for e in index["videos"]] == [
        ("a.mp4", 0, 5), ("b.mp4", 5, 3), ("c.mp4", 8, 7)]
    assert index["visual_dim"] == 6 and index["audio_dim"] == 4 and index["rows"] == 15


def test_incomplete_shards_are_detected_and_skipped(tmp_path, videos):
    good = write_shard(tmp_path / shard_name(0), videos[:1])
    broken = write_shard(tmp_path / shard_name(1), videos[1:])
    assert is_complete_shard(good) and is_complete_shard(broken)
    # An array cut short (a crash while copying, a full disk) is found by opening it.
    data = (broken / "audio.npy").read_bytes()
    (broken / "audio.npy").write_bytes(data[:-16])
    assert not is_complete_shard(broken) and "unreadable" in check_shard(broken)
    # An index that disagrees with the arrays.
    other = write_shard(tmp_path / shard_name(2), [_video("d.mp4", 4, 3)])
    index = json.loads((other / "index.json").read_text())
    index["videos"][0]["T"] = 9
    (other / "index.json").write_text(json.dumps(index))
    assert not is_complete_shard(other)
    assert not is_complete_shard(tmp_path / shard_name(7))
    cache = FeatureCache(tmp_path)
    assert cache.video_ids() == ["a.mp4"] and set(cache.skipped) == {shard_name(1), shard_name(2)}


def test_writer_abort_leaves_nothing(tmp_path, videos):
    writer = ShardWriter(tmp_path / shard_name(0), {})
    writer.add(videos[0])
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_dims_must_agree(tmp_path):
    with pytest.raises(ValueError, match="dims"):
        write_shard(tmp_path / shard_name(0), [_video("a", 2, 0), _video("b", 2, 1, dv=5)])
    assert list(tmp_path.iterdir()) == []


def test_shards_from_manifest_are_stable(tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    ids = [f"train/{i:03d}.mp4" for i in (7, 1, 4, 9, 2)]
    manifest.write_text("".join(json.dumps({"video_id": v, "path": f"/d/{v}"}) + "\n" for v in ids))
    assert num_shards(manifest, 2) == 3 and num_shards(manifest, 5) == 1
    assert [r["video_id"] for r in shard_rows(manifest, 0, 2)] == ["train/001.mp4", "train/002.mp4"]
    assert [r["video_id"] for r in shard_rows(manifest, 2, 2)] == ["train/009.mp4"]
    with pytest.raises(ValueError, match="out of range"):
        shard_rows(manifest, 3, 2)
    (tmp_path / "dup.jsonl").write_text(manifest.read_text() + json.dumps({"video_id": ids[0], "path": "/"}) + "\n")
    with pytest.raises(ValueError, match="duplicate"):
        num_shards(tmp_path / "dup.jsonl", 2)


def _meta(sha: str) -> dict:
    return {"visual": {"name": "tsn", "sha256": sha, "random_weights": False},
            "audio": {"name": "random-weights(seed=0)", "sha256": None, "layer": None, "random_weights": True},
            "settings": {"fps": 25.0, "crop_size": 64, "device": "cpu"}, "cache_dtype": "float32"}


def test_summary_cli(tmp_path, videos):
    from extractors.cache import main

    write_shard(tmp_path / "f" / shard_name(0), videos[:2], [{"video_id": "x", "path": "/x", "reason": "empty"}],
                meta=_meta("aa"))
    write_shard(tmp_path / "f" / shard_name(1), videos[2:], meta=dict(_meta("aa"), settings={
        "fps": 25.0, "crop_size": 64, "device": "cuda"}))  # another device: same features
    assert main(["--cache", str(tmp_path / "f"), "--out", str(tmp_path / "s.json")]) == 0
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["videos"] == 3 and summary["rows"] == 15 and summary["shards"] == ["shard-00000", "shard-00001"]
    assert summary["failures"][0]["reason"] == "empty"
    assert summary["extractor"]["random_weights"] == {"visual": False, "audio": True}


def test_summary_refuses_mixed_extractors_and_incomplete_shards(tmp_path, videos, capsys):
    from extractors.cache import main

    write_shard(tmp_path / shard_name(0), videos[:2], meta=_meta("aa"))
    write_shard(tmp_path / shard_name(1), videos[2:], meta=_meta("bb"))
    assert main(["--cache", str(tmp_path), "--out", str(tmp_path / "s.json")]) == 1
    assert "another extractor" in capsys.readouterr().err and not (tmp_path / "s.json").exists()
    (tmp_path / shard_name(1) / "visual.npy").unlink()
    assert main(["--cache", str(tmp_path), "--out", str(tmp_path / "s.json")]) == 1
    assert "incomplete" in capsys.readouterr().err


def test_summary_tells_the_resize_modes_apart(tmp_path, videos, capsys):
    from extractors.cache import main

    decoder = dict(_meta("aa"), settings=dict(_meta("aa")["settings"], resize="decoder"))
    reference = dict(_meta("aa"), settings=dict(_meta("aa")["settings"], resize="reference"))
    write_shard(tmp_path / "a" / shard_name(0), videos[:2], meta=decoder)
    write_shard(tmp_path / "a" / shard_name(1), videos[2:], meta=decoder)
    assert main(["--cache", str(tmp_path / "a"), "--out", str(tmp_path / "a.json")]) == 0
    write_shard(tmp_path / "b" / shard_name(0), videos[:2], meta=decoder)
    write_shard(tmp_path / "b" / shard_name(1), videos[2:], meta=reference)
    assert main(["--cache", str(tmp_path / "b"), "--out", str(tmp_path / "b.json")]) == 1
    assert "another extractor" in capsys.readouterr().err
