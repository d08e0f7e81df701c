"""Reading a growing file: incremental, from the end, across truncation and replacement."""

from __future__ import annotations

import json
import os

from hypothesis import given, settings, strategies as st

from codexdash.events import parse_lines
from codexdash.tail import SessionTail, open_session
from tests.conftest import SAMPLES


def append(path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def test_partial_line_is_kept_until_complete(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b"')
    tail = SessionTail(path)
    assert tail.read().lines == [b'{"a": 1}']
    assert tail.read().lines == []
    append(path, b': 2}\n')
    assert tail.read().lines == [b'{"b": 2}']


def test_truncation_and_replacement_restart(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"one\ntwo\n")
    tail = SessionTail(path)
    assert tail.read().lines == [b"one", b"two"]
    path.write_bytes(b"x\n")  # truncated
    chunk = tail.read()
    assert chunk.reset and chunk.lines == [b"x"]
    replacement = tmp_path / "new"
    replacement.write_bytes(b"fresh\nfile\nthat is longer\n")
    os.replace(replacement, path)
    chunk = tail.read()
    assert chunk.reset and chunk.lines == [b"fresh", b"file", b"that is longer"]
    path.unlink()
    assert tail.read().problem and "no longer exists" in tail.read().problem


def test_a_replacement_that_begins_as_the_file_did_is_read_on_from_where_it_was(tmp_path):
    from codexdash.tail import MATCH_BYTES

    path = tmp_path / "s.jsonl"
    lines = [b"%05d %s" % (i, b"y" * 50) for i in range(300)]
    path.write_bytes(b"\n".join(lines[:200]) + b"\n")
    opened = open_session(path, last=3)  # from its end: nothing before it is read

    def replace(data: bytes) -> None:
        (tmp_path / "new").write_bytes(data)
        os.replace(tmp_path / "new", path)

    assert opened.read_more().lines == []  # the first read takes what a replacement must repeat
    replace(b"\n".join(lines[:250]) + b"\n")
    more = opened.read_more()
    assert not more.reset and more.lines == lines[200:250]
    assert len(b"\n".join(lines[:250])) > 2 * MATCH_BYTES
    replace(b"\n".join(lines[:249]) + b"\n00249 changed\n")  # its last line read is not the same
    more = opened.read_more()
    assert more.reset and more.lines == [*lines[:249], b"00249 changed"]
    fresh = open_session(path, last=3)
    replace(path.read_bytes() + b"more\n")  # before its first read: not known, read again
    more = fresh.read_more()
    assert more.reset and more.lines[-1] == b"more"


@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12))
@settings(max_examples=150, deadline=None)
def test_any_split_of_any_bytes_gives_the_lines_of_the_whole(tmp_path_factory, data, cuts):
    path = tmp_path_factory.mktemp("t") / "s.jsonl"
    path.write_bytes(b"")
    tail = SessionTail(path)
    got = []
    previous = 0
    for cut in sorted(c for c in cuts if c <= len(data)) + [len(data)]:
        append(path, data[previous:cut])
        previous = cut
        got.extend(tail.read().lines)
    whole = data.split(b"\n")[:-1]  # the unterminated end is not a line yet
    assert got == whole
    assert parse_lines(got) == parse_lines(whole)


def test_open_from_the_end_matches_reading_forward(tmp_path):
    lines = (SAMPLES / "completed-tool-call.jsonl").read_bytes().splitlines()
    whole = parse_lines(lines)
    for last in (1, 3, 5, len(whole), 1000):
        opened = open_session(SAMPLES / "completed-tool-call.jsonl", last=last)
        assert opened.events == whole[-last:]
        assert opened.truncated == (last < len(whole))


def test_open_then_follow_sees_only_new_events(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes((SAMPLES / "completed-message.jsonl").read_bytes() + b'{"type": "event_msg", "payl')
    opened = open_session(path, last=2)
    assert len(opened.events) == 2
    append(path, b'oad": {"type": "error", "message": "late"}}\n')
    new = [e for line in opened.tail.read().lines for e in opened.parser.feed(line)]
    assert [e.text for e in new] == ["late"]


def test_very_long_line_and_invalid_utf8_do_not_break_reading(tmp_path):
    path = tmp_path / "s.jsonl"
    big = json.dumps({"type": "response_item", "payload": {"type": "function_call_output", "call_id": "c", "output": "x" * (5 << 20)}})
    path.write_bytes(b"\xff\xfe garbage\n" + big.encode() + b"\n" + (SAMPLES / "completed-message.jsonl").read_bytes())
    opened = open_session(path, last=1000)
    kinds = [e.kind for e in opened.events]
    assert kinds[0] == "notice" and "command_result" in kinds and kinds[-1] == "outcome"


def test_an_over_long_line_is_skipped_with_a_notice_and_reading_goes_on(tmp_path, monkeypatch):
    import codexdash.tail as tail_module
    from codexdash.tail import session_from

    monkeypatch.setattr(tail_module, "MAX_LINE_BYTES", 1000)
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"")
    session = session_from(path)
    append(path, b'{"type": "x", "pad": "' + b"y" * 1500)  # held back past the limit: dropped
    (notice,) = session.read_more().events
    assert notice.kind == "notice" and "skipped" in notice.text
    append(path, b"y" * 600 + b'"}\n' + (SAMPLES / "completed-message.jsonl").read_bytes().splitlines(keepends=True)[-1])
    assert [e.kind for e in session.read_more().events] == ["outcome"]  # the rest of it is dropped too


# ---- zstd-compressed sessions (Codex 0.171 rewrites a week-old file as rollout-...jsonl.zst) ----

def compress(data: bytes, frames: int = 1) -> bytes:
    import zstandard

    step = -(-len(data) // frames) or 1
    return b"".join(zstandard.ZstdCompressor().compress(data[i : i + step]) for i in range(0, len(data), step))


def compressed_copy(tmp_path, sample: str = "completed-tool-call.jsonl", frames: int = 1):
    plain = SAMPLES / sample
    path = tmp_path / (plain.name + ".zst")
    path.write_bytes(compress(plain.read_bytes(), frames))
    return plain, path


def test_a_compressed_session_reads_as_its_plain_twin(tmp_path):
    from codexdash.tail import session_from

    for frames in (1, 3):  # zstd streams may hold several frames
        plain, path = compressed_copy(tmp_path, frames=frames)
        whole = parse_lines(plain.read_bytes().splitlines())
        for last in (0, 1, 3, 5, len(whole), 1000):
            opened, twin = open_session(path, last=last), open_session(plain, last=last)
            assert opened.events == twin.events and opened.truncated == twin.truncated
        session = session_from(path)
        assert session.read_more().events == whole
        more = session.read_more()  # a compressed file is finished: nothing is read twice
        assert (more.events, more.reset, more.problem) == ([], False, None)
        assert opened.read_more().events == []


def test_the_head_and_a_turns_lines_of_a_compressed_session_are_read_across_its_frames(tmp_path):
    """read_head and read_turn_lines read a compressed file through the tail's own reader: every
    frame (here one a line, so the prompt is in a later one), and the head of a file cut short."""
    from codexdash.session_edits import read_turn_lines
    from codexdash.session_files import read_head

    plain = SAMPLES / "completed-tool-call.jsonl"
    lines = plain.read_bytes().splitlines(keepends=True)
    path = tmp_path / (plain.name + ".zst")
    path.write_bytes(compress(plain.read_bytes(), frames=len(lines)))
    assert read_head(path) == read_head(plain) and read_head(plain).prompt
    assert list(read_turn_lines(path)) == list(read_turn_lines(plain)) == lines
    assert list(read_turn_lines(path, len(lines[0]), len(lines[0]) + len(lines[1]))) == [lines[1]]
    path.write_bytes(path.read_bytes()[:-7])  # its end cut: its head is still read
    assert read_head(path) == read_head(plain)


def test_a_replaced_compressed_session_is_read_again(tmp_path):
    from codexdash.tail import session_from

    _plain, path = compressed_copy(tmp_path)
    session = session_from(path)
    assert session.read_more().events
    new = tmp_path / "new.zst"
    new.write_bytes(compress((SAMPLES / "completed-message.jsonl").read_bytes()))
    os.replace(new, path)
    more = session.read_more()
    assert more.reset and more.events == parse_lines((SAMPLES / "completed-message.jsonl").read_bytes().splitlines())


def test_the_end_of_a_large_compressed_session_is_read_in_bounded_memory(tmp_path):
    import tracemalloc

    def line(i: int) -> bytes:
        item = {"type": "function_call_output", "call_id": f"c{i}", "output": "x" * 100_000}
        return json.dumps({"type": "response_item", "payload": item}).encode() + b"\n"

    data = b"".join(line(i) for i in range(400)) + (SAMPLES / "completed-message.jsonl").read_bytes()  # 40 MB
    path = tmp_path / "big.jsonl.zst"
    path.write_bytes(compress(data))
    tracemalloc.start()
    try:
        opened = open_session(path, last=3)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert opened.truncated and opened.events[-1].kind == "outcome"
    assert peak < 8 << 20, f"peak {peak >> 20} MiB for a 40 MB session"


def test_a_damaged_or_cut_compressed_session_says_so(tmp_path):
    import pytest

    from codexdash.tail import session_from

    _plain, path = compressed_copy(tmp_path)
    good = path.read_bytes()
    for name, blob in (("cut", good[: len(good) // 2]), ("damaged", good[:40] + b"\xff" * 20 + good[60:]),
                       ("not zstd", b'{"type": "x"}\n' * 3)):
        bad = tmp_path / f"{name}.jsonl.zst"
        bad.write_bytes(blob)
        with pytest.raises(OSError) as caught:
            open_session(bad, last=10)
        assert "zstd-compressed and" in caught.value.strerror, name
        problem = session_from(bad).read_more().problem
        assert problem and "zstd-compressed and" in problem and "\n" not in problem


def test_a_compressed_session_without_the_zstd_library_says_so(tmp_path, monkeypatch):
    import sys

    import pytest

    _plain, path = compressed_copy(tmp_path)
    monkeypatch.setitem(sys.modules, "zstandard", None)  # `import zstandard` now fails
    with pytest.raises(OSError) as caught:
        open_session(path)
    assert "zstd-compressed and" in caught.value.strerror and "zstandard" in caught.value.strerror


def test_long_lines_in_a_compressed_session_are_skipped(tmp_path, monkeypatch):
    import codexdash.tail as tail_module
    from codexdash.tail import session_from

    monkeypatch.setattr(tail_module, "MAX_LINE_BYTES", 50_000)  # over the longest line of the sample
    path = tmp_path / "s.jsonl.zst"
    path.write_bytes(compress(b'{"pad": "' + b"y" * 200_000 + b'"}\n' + (SAMPLES / "completed-message.jsonl").read_bytes()))
    events = session_from(path).read_more().events
    assert events[-1].kind == "notice" and "skipped" in events[-1].text
    assert events[:-1] == parse_lines((SAMPLES / "completed-message.jsonl").read_bytes().splitlines())


def test_a_compressed_session_cut_anywhere_but_between_frames_says_so(tmp_path):
    import pytest

    lines = (SAMPLES / "completed-message.jsonl").read_bytes().splitlines(keepends=True)
    frames = [compress(b"".join(lines[:3])), compress(b"".join(lines[3:]))]
    whole = b"".join(frames)
    path = tmp_path / "cut.jsonl.zst"
    edges = {0, len(frames[0]), len(whole)}
    near_edges = {c + d for c in edges for d in range(-40, 41)}  # headers, block headers, checksums
    for cut in sorted(c for c in near_edges | set(range(0, len(whole), 97)) if 0 <= c <= len(whole)):
        path.write_bytes(whole[:cut])
        if cut in edges:
            open_session(path, last=5)  # whole frames: a shorter session, but a sound one
            continue
        with pytest.raises(OSError, match="zstd-compressed and"):
            open_session(path, last=5)
