"""The tiny media fixtures of the extraction tests (tests/helpers/clips.py) are what they say."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.clips import make_bad_files, make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


def test_clip_has_both_streams(clip):
    import av

    with av.open(str(clip)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
        assert container.streams.audio[0].rate == 16000
        assert container.streams.video[0].frames == 25


def test_bad_files_are_what_they_say(tmp_path):
    import av

    bad = make_bad_files(tmp_path)
    assert bad["zero-byte"].stat().st_size == 0
    with av.open(str(bad["no-audio"])) as container:
        assert len(container.streams.audio) == 0 and len(container.streams.video) == 1
    with pytest.raises(av.error.FFmpegError):
        av.open(str(bad["truncated"])).close()
