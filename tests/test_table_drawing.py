"""The jobs table draws only what changed: a tick on one job draws that row, rows off screen are
never drawn, rows gone are forgotten, and the cursor follows its job. The drawing is counted on
the table's strip cache (rows and cells drawn), not timed. The app's own refresh is held off:
each test shows the views it made, as the app would."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from unittest import mock

import pytest
from hypothesis import given, settings, strategies as st
from rich.console import Console
from rich.style import Style

from codexdash.jobs import JobView
from codexdash.procs import ProcessStats
from codexdash.store import Job, JobStatus
from codexdash.ui.app import CodexdashApp
from codexdash.ui.columns import CELL_PADDING, COLUMNS, STALL_SECONDS, Column, Row
from codexdash.ui.line_table import changed_spans
from codexdash.ui.row_strips import RowStrips, cell_key
from codexdash.views import ExternalView, RemoteExternalView, RemoteView
from tests.ui_support import add_many_jobs, until

SIZE = (140, 36)


@pytest.fixture
def app(sandbox):
    sandbox.engine.settings = sandbox.settings.with_overrides(refresh_interval=3600)
    return CodexdashApp(sandbox.engine, cwd=str(sandbox.root), host="testhost")


async def started(pilot, count: int):
    """The app with `count` jobs shown, and those jobs' views."""
    app = pilot.app
    await until(pilot, lambda: app.table.row_count == count and app.refreshes >= 1, message="the jobs")
    return list(app.views)


def show(app, views) -> None:
    app.views = views
    app.table.show(views)


def ticked(views, live_id: str, uptime: float):
    """The views with one job running for `uptime` seconds."""
    return [dataclasses.replace(v, stats=ProcessStats(0.0, 0, uptime, 1)) if v.job.id == live_id else v
            for v in views]


async def test_a_tick_on_one_live_job_draws_that_row_and_that_cell_only(sandbox, app):
    ids = add_many_jobs(sandbox.engine.store, 40)
    async with app.run_test(size=SIZE) as pilot:
        views = await started(pilot, 40)
        table, strips = app.table, app.table.strips
        live = next(v for v in views if v.job.id == ids[2])
        live.job.status = JobStatus.RUNNING  # in memory only: the views shown are the test's
        show(app, ticked(views, ids[2], 5.0))
        await pilot.pause()
        rows, cells = strips.rows_drawn, strips.cells_drawn
        show(app, ticked(views, ids[2], 6.0))  # a second later: one cell changes
        await pilot.pause()
        assert (strips.rows_drawn - rows, strips.cells_drawn - cells) == (1, 1)
        assert "6s" in [c.plain for c in table.row_cells(2)]
        show(app, ticked(views, ids[2], 6.0))  # nothing changed: nothing drawn
        await pilot.pause()
        assert (strips.rows_drawn - rows, strips.cells_drawn - cells) == (1, 1)


async def test_rows_off_screen_are_not_drawn(sandbox, app):
    add_many_jobs(sandbox.engine.store, 300)
    async with app.run_test(size=SIZE) as pilot:
        views = await started(pilot, 300)
        table, strips = app.table, app.table.strips
        on_screen = table.body_height()
        assert 0 < on_screen < 40
        strips.clear()
        before = strips.rows_drawn
        show(app, views)
        assert strips.rows_drawn - before == on_screen and len(strips) == on_screen
        await pilot.press("end")
        await pilot.pause()
        show(app, views)
        assert len(strips) == on_screen  # the last page's rows, the first page's forgotten
        assert table.selected_job_id in strips


async def test_jobs_no_longer_shown_leave_nothing_behind(sandbox, app):
    ids = add_many_jobs(sandbox.engine.store, 60)
    async with app.run_test(size=SIZE) as pilot:
        views = await started(pilot, 60)
        strips = app.table.strips
        assert ids[0] in strips and ids[5] in strips
        show(app, [v for v in views if v.job.id not in ids[:10]])  # the newest ten gone
        await pilot.pause()
        assert app.table.row_count == 50
        assert not any(jid in strips for jid in ids[:10])
        assert len(strips) <= app.table.body_height()


async def test_the_cursor_stays_on_its_job_when_rows_move(sandbox, app):
    ids = add_many_jobs(sandbox.engine.store, 40)
    async with app.run_test(size=SIZE) as pilot:
        views = await started(pilot, 40)
        table = app.table
        await pilot.press("down", "down", "down")
        assert table.selected_job_id == ids[3]
        app._sort_by("name")  # task 000 … task 039: the same order; reversed by a second press
        app._sort_by("name")
        assert table.sort_spec == ("name", True) and table.selected_job_id == ids[3]
        assert table.cursor_row == 36
        top = table.scroll_offset.y
        assert top <= table.cursor_row < top + table.body_height()  # and in view
        newest = dataclasses.replace(views[0], job=type(views[0].job)(**{**views[0].job.__data__, "id": "new0000000",
                                                                          "name": "task 999"}))
        show(app, [newest, *views])  # a job sorted above it: the cursor moves down with its job
        assert table.selected_job_id == ids[3] and table.cursor_row == 37


async def test_a_click_on_a_header_sorts_and_a_click_on_a_row_selects_it(sandbox, app):
    ids = add_many_jobs(sandbox.engine.store, 10)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 10)
        table = app.table
        x = sum(w + 2 * CELL_PADDING for col, w in table.fitted[:table.shown_keys.index("name")]) + 2
        await pilot.click("#jobs", offset=(x, 0))
        await until(pilot, lambda: table.sort_spec == ("name", False), message="sorted by name")
        assert "Name ▲" in [c.plain for c in table.header_cells()]
        await pilot.click("#jobs", offset=(x, 4))  # the fourth row
        assert table.selected_job_id == ids[3] and table.cursor_row == 3


async def test_a_tick_repaints_the_changed_cell_not_its_line(sandbox, app, monkeypatch):
    ids = add_many_jobs(sandbox.engine.store, 10)
    async with app.run_test(size=SIZE) as pilot:
        views = await started(pilot, 10)
        table = app.table
        next(v for v in views if v.job.id == ids[2]).job.status = JobStatus.RUNNING
        show(app, ticked(views, ids[2], 5.0))
        await pilot.pause()
        repainted = []
        monkeypatch.setattr(table, "refresh", lambda *regions, **kw: repainted.extend(regions))
        show(app, ticked(views, ids[2], 6.0))
        x = sum(table.column_widths()[: table.shown_keys.index("time")])
        # The Time cell ("5s" → "6s", left-aligned): its first character, on that row's line only.
        assert [(r.x, r.y, r.height) for r in repainted] == [(x + CELL_PADDING, 1 + 2, 1)] and repainted[0].width <= 6


def test_every_column_of_the_table_says_what_its_cell_reads():
    """One that does not has its cell made again each time its row is (a live job's: each second)."""
    assert [c.key for c in COLUMNS if c.reads is Column.reads] == []


BASE = 1_790_000_000.0
# Each input of a row, with values that show the same and values that do not (a second apart,
# either side of a minute, a day, a stall...). Times are seconds from BASE.
ROW_INPUTS = {
    "kind": st.sampled_from(["local", "external", "remote", "unreachable", "remote external"]),
    "status": st.sampled_from(["starting", "running", "stopping", "completed", "failed", "killed", "lost",
                               "failed_to_start"]),
    "job_id": st.sampled_from(["a1b2c3d4e5", "a1b2c3d4e6", "zz"]),
    "name": st.sampled_from([None, "", "n", "task  one"]),
    "prompt": st.sampled_from(["do it", "do  it\nnow", "", "x" * 50]),
    "cwd": st.sampled_from(["/w/api", "/w/api/", "/w/web", "", "/"]),
    "pid": st.sampled_from([None, 0, 42]),
    "parent_id": st.sampled_from([None, "", "p1"]),
    "job_model": st.sampled_from([None, "gpt-4"]),
    "session_model": st.sampled_from([None, "gpt-5"]),
    "host": st.sampled_from(["local", "box1"]),
    "created": st.sampled_from([-3600.0, -60.0, -90_000.0]),
    "ran": st.sampled_from([None, 30.0, 30.4]),  # from its start to its end, once it ended
    "now": st.sampled_from([0.0, 0.3, 40_000.0, 86_400.0]),
    "uptime": st.sampled_from([None, 0.2, 0.9, 59.4, 59.9, 61.0, 601.0, 3599.9]),  # None: no process figures
    "cpu": st.sampled_from([0.0, 0.2, 0.4, 0.6, 1.4, 99.5]),
    "rss": st.sampled_from([0, 1000, 1023, 2**20, 2**20 + 7]),
    "idle": st.sampled_from([None, 0.5, 1.5, 70.0, 119.9, 120.1]),
    "tokens": st.sampled_from([None, 0, 999, 1000, 1499]),
    "job_tokens": st.sampled_from([None, 5]),
    "stall_after": st.sampled_from([60.0, STALL_SECONDS]),
    "unseen": st.booleans(),
    "mono": st.booleans(),
}


def row_of(inputs: dict) -> Row:
    i = inputs
    now, created = BASE + i["now"], BASE + i["created"]
    job = Job(id=i["job_id"], marker="m", status=i["status"], argv="[]", cwd=i["cwd"], prompt=i["prompt"],
              name=i["name"], created_at=created, started_at=created,
              ended_at=None if i["ran"] is None else created + i["ran"], model=i["job_model"], pid=i["pid"],
              parent_id=i["parent_id"], tokens=i["job_tokens"])
    stats = None if i["uptime"] is None else ProcessStats(i["cpu"], i["rss"], i["uptime"], 2)
    last = None if i["idle"] is None else now - i["idle"]
    if i["kind"] in ("local", "external"):
        cls = JobView if i["kind"] == "local" else ExternalView
        view = cls(job, stats=stats, tokens=i["tokens"], host=i["host"], last_activity=last)
    else:
        cls = RemoteExternalView if i["kind"] == "remote external" else RemoteView
        view = cls(job, i["host"], now, stats=stats, tokens=i["tokens"], last_activity=last)
        view.stale = "timed out" if i["kind"] == "unreachable" else None
    view.session_model = i["session_model"]
    return Row(view, now, i["stall_after"], i["unseen"], i["mono"])


@settings(max_examples=300, deadline=None)
@given(a=st.fixed_dictionaries(ROW_INPUTS), b=st.fixed_dictionaries(ROW_INPUTS), width=st.sampled_from([3, 12, 40]))
def test_rows_whose_columns_read_the_same_draw_the_same_cells(a, b, width):
    """A live row's cell is made again only when what its column reads (`Column.reads`, and the
    row's look) changed; else its drawn cell is kept: each column's cell must read only that.
    Each cell of a row is held against the same column's cell of rows that differ from it in
    one input each, and in all."""
    with mock.patch("codexdash.views.time", SimpleNamespace(time=lambda: BASE + 5000)):  # a remote job's Time
        first = row_of(a)
        others = [row_of({**a, name: b[name]}) for name in ROW_INPUTS if b[name] != a[name]] + [row_of(b)]
        for col in COLUMNS:
            reads, drawn = (first.look, col.reads(first)), cell_key(col.cell(first, width), width)
            hash(reads)  # kept in a dict of drawn cells
            for other in others:
                if (other.look, col.reads(other)) == reads:
                    assert cell_key(col.cell(other, width), width) == drawn, (col.key, a, b)


@settings(max_examples=100, deadline=None)
@given(inputs=st.lists(st.fixed_dictionaries(ROW_INPUTS), min_size=2, max_size=6),
       widths=st.lists(st.sampled_from([3, 6, 12]), min_size=len(COLUMNS), max_size=len(COLUMNS)))
def test_a_row_drawn_from_its_kept_cells_is_drawn_as_from_nothing(inputs, widths):
    """Rows drawn one after another (of one job or another) reuse kept and cached cells: each
    strip is the one drawn with nothing kept, and the cells a repaint leaves out show the same."""
    console, base = Console(width=200, color_system="truecolor", force_terminal=True), Style(bgcolor="#102030")
    columns = list(zip(COLUMNS, widths))
    strips = RowStrips()
    strips.restyle(base, 220)
    last = {}
    with mock.patch("codexdash.views.time", SimpleNamespace(time=lambda: BASE + 5000)):
        for row in map(row_of, inputs):
            strip = strips.strip(row, columns, lambda col, row, width: col.cell(row, width), console)
            fresh = RowStrips()
            fresh.restyle(base, 220)
            assert list(strip) == list(fresh.strip(row, columns, lambda col, row, width: col.cell(row, width), console))
            before = last.get(row.job_id)
            if before is not None:
                left = [span for span in strip.spans if span not in changed_spans(before, strip, 220)]
                assert [list(before.crop(*span)) for span in left] == [list(strip.crop(*span)) for span in left]
            last[row.job_id] = strip


def test_a_remote_row_reads_its_duration_once_and_draws_what_it_read():
    """A live job of another box counts its Time from the clock: the row takes it once, so
    what its cell is kept under and what it shows are of one moment."""
    base = 1_790_000_000.0
    job = Job(id="r1b2c3d4e5", marker="m", status=JobStatus.RUNNING, argv="[]", cwd="/w", prompt="p",
              created_at=base - 59.6, started_at=base - 59.6)
    time_column = next(c for c in COLUMNS if c.key == "time")
    with mock.patch("time.time", return_value=base):
        row = Row(RemoteView(job, "gpu-1", base), base)
    with mock.patch("time.time", return_value=base + 0.5):  # a second boundary passed since
        reads, text = time_column.reads(row), time_column.cell(row, 6).plain
    assert reads[0] == text == "59s"
