"""The dashboard's parts that need no screen: fitting columns and the status line to a width,
the remembered layout, the terminal's notification sequences, the table of keys."""

from __future__ import annotations

import json
import os
import stat

from rich.text import Text

from codexdash.ui import keys, saved_state
from codexdash.ui.columns import BY_KEY, COLUMNS, fit
from codexdash.ui.status_line import Facts, Part, status_text
from codexdash.ui.status_line import fit as fit_status
from codexdash.ui.terminal_alert import TerminalAlert, alert_sequences

DEFAULT = [c.key for c in COLUMNS if c.shown]


def drawn_width(fitted) -> int:
    return sum(w + 2 for _c, w in fitted)


def test_columns_fill_the_width_and_the_narrow_drop_the_least_useful_never_the_name():
    for width in (20, 40, 60, 78, 86, 123, 200):
        fitted = fit(DEFAULT, {}, width)
        keys_ = [c.key for c, _w in fitted]
        assert "name" in keys_
        if width >= 60:
            assert drawn_width(fitted) == width, (width, fitted)  # the prompt or the name takes what is left
    at_80 = [c.key for c, _w in fit(DEFAULT, {}, 78)]
    assert at_80[:3] == ["state", "id", "name"] and "cwd" in at_80 and "mem" not in at_80
    wide = dict((c.key, w) for c, w in fit(DEFAULT, {}, 200))
    assert wide["prompt"] > 30  # the prompt gets the width that is left


def test_a_hidden_name_is_shown_anyway_and_widths_are_the_operators():
    fitted = fit(["cwd", "state"], {"cwd": 30}, 120)
    assert [c.key for c, _w in fitted] == ["name", "cwd", "state"]
    assert dict((c.key, w) for c, w in fitted)["cwd"] == 30


def test_adding_a_column_is_one_line():
    from codexdash.ui.columns import Column

    host = Column("host", "Host", 10, 6, lambda row, width: Text("buildbox"))
    assert host.sort is None and host.shown and not host.flex  # everything else has a default


def test_saved_state_round_trip_is_owner_only(tmp_path):
    path = tmp_path / "state" / "codexdash" / "dashboard.json"
    state = saved_state.SavedState(columns=["name", "cwd"], widths={"cwd": 20}, sort=("tokens", True),
                                   hide_external=True, unseen=["abc"], closed_at=1000.0)
    saved_state.save(path, state)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert saved_state.load(path) == state


def test_a_bad_state_file_never_crashes_and_keeps_what_makes_sense(tmp_path):
    path = tmp_path / "dashboard.json"
    for content in (b"", b"\xff\xfe", b"[" * 100_000, b"null", b'"text"', b"{", b"[]"):
        path.write_bytes(content)
        assert saved_state.load(path) == saved_state.SavedState()
    path.write_text(json.dumps({"columns": ["name", "nope", 3, "cwd", "cwd"], "widths": {"cwd": 9999, "name": 30, "x": 5},
                                "sort": ["nope", True], "hide_external": "yes", "unseen": ["a", 5], "closed_at": True}))
    state = saved_state.load(path)
    assert state.columns == ["name", "cwd"] and state.widths == {"name": 30}
    assert state.sort == saved_state.SavedState().sort and state.hide_external is False
    assert state.unseen == ["a"] and state.closed_at is None
    assert saved_state.load(tmp_path / "missing.json") == saved_state.SavedState()
    (tmp_path / "dir.json").mkdir()
    assert saved_state.load(tmp_path / "dir.json") == saved_state.SavedState()


def facts(**kw) -> Facts:
    base = dict(host="buildbox", title="codexdash", codex_home="/home/operator/.codex",
                statuses=["running", "running", "completed", "failed"], tokens={"running": 12_000, "completed": 900},
                attention={"failed": 1, "stalled": 1, "unseen": 2})
    base.update(kw)
    return Facts(**base)


def test_the_status_line_shortens_by_priority_and_never_loses_what_needs_the_operator():
    wide = status_text(facts(), 200).plain
    assert "⚑ 4: 1 failed 1 stalled 2 unseen" in wide and "running 2 (12.0k tok)" in wide
    assert "Σ 12.9k tokens" in wide and "CODEX_HOME" in wide and "buildbox" in wide
    for width in (120, 100, 80, 60, 40):
        line = status_text(facts(query="api"), width).plain
        assert len(line) <= width
        assert "⚑ 4" in line, (width, line)
    at_80 = status_text(facts(), 80).plain
    assert "CODEX_HOME" not in at_80 and "running 2" in at_80 and "failed 1" in at_80
    at_40 = status_text(facts(), 40).plain
    assert len(at_40) <= 40 and "⚑ 4" in at_40
    assert ("●2" in at_40 or "running 2" in at_40) and ("✖1" in at_40 or "failed 1" in at_40), at_40
    assert "✔1" in at_40  # shortened to give the running and failed their words back


def test_status_parts_shrink_the_least_important_step_first():
    parts = [Part(Text("AAAA"), (Text("A"), 1)), Part(Text("BBBB"), (Text("B"), 5)), Part(Text("CCCC"), (Text(""), 9))]
    assert fit_status(parts, 14).plain == "AAAA BBBB CCCC"
    assert fit_status(parts, 9).plain == "AAAA BBBB"
    assert fit_status(parts, 6).plain == "AAAA B"
    assert fit_status(parts, 3).plain == "A B"


def test_alert_sequences_bell_osc9_osc777_and_tmux_passthrough():
    plain = alert_sequences("codexdash", "fix ci; now\x1b]0;pwned\x07 failed", in_tmux=False)
    assert plain == "\x07\x1b]9;codexdash: fix ci  now ]0 pwned  failed\x07\x1b]777;notify;codexdash;fix ci  now ]0 pwned  failed\x07"
    wrapped = alert_sequences("codexdash", "done", in_tmux=True)
    assert wrapped == ("\x07\x1bPtmux;\x1b\x1b]9;codexdash: done\x07\x1b\\"
                       "\x1bPtmux;\x1b\x1b]777;notify;codexdash;done\x07\x1b\\")


def test_alerts_are_configurable_and_off_under_term_dumb():
    sent: list[str] = []
    TerminalAlert(sent.append, True, {"TERM": "xterm-256color"})("codexdash", "a")
    TerminalAlert(sent.append, False, {"TERM": "xterm-256color"})("codexdash", "b")
    TerminalAlert(sent.append, True, {"TERM": "dumb"})("codexdash", "c")
    assert len(sent) == 1 and "a" in sent[0]
    tmux = []
    TerminalAlert(tmux.append, True, {"TERM": "tmux-256color", "TMUX": "/tmp/tmux-0/default,1,0"})("codexdash", "d")
    assert "Ptmux;" in tmux[0]


def test_one_table_of_keys_makes_the_bindings_help_and_palette():
    app_keys = {b.key for b in keys.bindings("app")}
    table_keys = {b.key for b in keys.bindings("table")}
    for wanted in ("n", "c", "R", "k,delete", "s", "S", "C", "z", "x", "q", "question_mark"):
        assert wanted in app_keys
    for wanted in ("home,g", "end,G", "pageup", "pagedown", "up", "down"):
        assert wanted in table_keys
    every = [k for key in keys.KEYS for k in key.keys.split(",")]
    assert len(every) == len(set(every)), "a key bound twice"
    titles = [k.palette for k in keys.palette_entries()]
    assert len(titles) == len(set(titles))
    assert keys.shown("k,delete") == "k / Del" and keys.shown("home,g") == "Home / g"


def test_every_column_sorts():
    assert all(c.sort is not None for c in COLUMNS)
    assert BY_KEY["name"].drop == 0


def test_threads_together_keeps_blocks_where_their_first_row_is():
    from types import SimpleNamespace as NS

    from codexdash.ui.threads import together

    def row(jid, parent, created):
        return NS(job=NS(id=jid, parent_id=parent, created_at=created))

    a, a1, a2 = row("a", None, 1), row("a1", "a", 3), row("a2", "a1", 5)
    b, orphan = row("b", None, 4), row("o", "gone", 2)  # its parent not shown: a block of its own
    loop1, loop2 = row("l1", "l2", 6), row("l2", "l1", 7)  # a broken record never hangs the table
    rows = [a2, b, orphan, a, a1, loop2, loop1]
    ids = [r.job.id for r in together(rows)]
    assert ids[:5] == ["a", "a1", "a2", "b", "o"] and sorted(ids[5:]) == ["l1", "l2"]
    plain = [b, a]
    assert together(plain) == plain


def test_the_colours_cache_gives_what_textual_gave_whichever_widget_asks():
    from textual._styles_cache import StylesCache
    from textual.color import Color

    from codexdash.ui.textual_fixes import keep_no_removed_widgets

    keep_no_removed_widgets()
    keep_no_removed_widgets()  # once is enough: a second app changes nothing
    fixed = StylesCache.get_inner_outer
    assert not hasattr(fixed, "cache_clear")  # no cache keyed by the asking widget
    base, background = Color(10, 20, 30), Color(200, 100, 50, 0.5)
    for asking in (StylesCache(), StylesCache()):
        assert asking.get_inner_outer(base, background) == fixed.__wrapped__(None, base, background)


async def test_a_change_is_composited_from_the_widgets_showing_it_into_the_same_bytes(monkeypatch):
    from textual.app import App
    from textual.containers import Horizontal, Vertical
    from textual.geometry import Region
    from textual.widget import Widget
    from textual.widgets import Static

    from codexdash.ui import textual_fixes

    textual_fixes.composite_only_what_changed()
    textual_fixes.composite_only_what_changed()  # once is enough
    from textual._compositor import Compositor

    fixed = Compositor._get_renders
    assert fixed.__wrapped__ is not None

    class Screenful(App):
        CSS = "#left, #pane { width: 1fr; } #status, #footer { height: 1; } Horizontal { height: 1fr; }"

        def compose(self):
            yield Static("status " * 20, id="status")
            with Horizontal():
                with Vertical(id="left"):
                    yield Static("\n".join(f"row {i} " * 4 for i in range(12)), id="table")
                yield Static("\n".join(f"pane line {i}" for i in range(12)), id="pane")
            yield Static("footer " * 20, id="footer")

    drawn = []
    render_lines = Widget.render_lines

    def counted(self, crop):
        drawn.append(self.id)
        return render_lines(self, crop)

    monkeypatch.setattr(Widget, "render_lines", counted)
    async with Screenful().run_test(size=(80, 14)) as pilot:
        await pilot.pause()
        compositor = pilot.app.screen._compositor
        changed = [Region(4, y, 3, 1) for y in (2, 3, 6)]  # cells of the table only
        frames = {}
        for name, get_renders in (("textual", fixed.__wrapped__), ("fixed", fixed)):
            monkeypatch.setattr(Compositor, "_get_renders", get_renders)
            drawn.clear()
            compositor._dirty_regions.update(changed)
            frames[name] = (compositor.render_partial_update().render_segments(pilot.app.console), set(drawn))
    assert frames["fixed"][0] == frames["textual"][0]
    assert {"status", "pane", "footer"} <= frames["textual"][1]
    assert "table" in frames["fixed"][1] and not {"status", "pane", "footer"} & frames["fixed"][1]


def test_attention_tells_each_end_once_and_keeps_nothing_per_job_ended():
    import time

    from codexdash.jobs import JobView
    from codexdash.store import Job, JobStatus
    from codexdash.ui.attention import ENDED, Attention

    at = time.time()
    jobs = [Job(id=f"job{i:07d}", status=JobStatus.RUNNING, prompt="x", cwd="/", created_at=at, started_at=at)
            for i in range(50)]
    attention = Attention([], None, 600)
    assert attention.update([JobView(j) for j in jobs], set()) == []
    for job in jobs:
        job.status, job.ended_at = JobStatus.COMPLETED, at + 1
    told = attention.update([JobView(j) for j in jobs], set())
    assert [(what, v.job.id) for what, v in told] == [(ENDED, j.id) for j in jobs]
    assert attention.update([JobView(j) for j in jobs], set()) == []  # told once
    assert attention.status == {}  # nothing kept of them but the unseen marks
    assert attention.unseen == {j.id for j in jobs}
