"""The jobs table draws only what changed: a tick on one job draws that row, rows off screen are
never drawn, rows gone are forgotten, and the cursor follows its job. The drawing is counted on
the table's strip cache (rows and cells drawn), not timed. The app's own refresh is held off:
each test shows the views it made, as the app would."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings, strategies as st

from codexdash.jobs import JobView
from codexdash.procs import ProcessStats
from codexdash.store import Job, JobStatus
from codexdash.ui.app import CodexdashApp
from codexdash.ui.columns import CELL_PADDING, COLUMNS, STALL_SECONDS, Row
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


@settings(max_examples=300, deadline=None)
@given(
    cpu=st.sampled_from([0.0, 0.2, 0.4, 0.6, 1.4, 99.5]), rss=st.sampled_from([0, 1000, 1023, 2**20, 2**20 + 7]),
    uptime=st.sampled_from([0.2, 0.9, 59.4, 59.9, 61.0, 601.0, 3599.9]),
    idle=st.sampled_from([None, 0.5, 1.5, 119.9, 120.1]), tokens=st.sampled_from([None, 0, 999, 1000, 1499]),
    status=st.sampled_from(["running", "completed", "failed", "starting"]), name=st.sampled_from([None, "", "n"]),
    unseen=st.booleans(), mono=st.booleans(), host=st.sampled_from(["local", "box1"]),
    model=st.sampled_from([None, "gpt-5"]), day=st.sampled_from([0.0, 86400.0]),
)
def test_rows_showing_the_same_values_draw_the_same_cells(cpu, rss, uptime, idle, tokens, status, name, unseen,
                                                          mono, host, model, day):
    """A live row's cells are made again only when `Row.shown` changed: every column must read
    only what it holds. Each row is held against one that differs by a little."""
    base = 1_790_000_000.0

    def row(cpu, rss, uptime, idle, tokens, status, name, unseen, mono, host, model, now):
        job = Job(id="a1b2c3d4e5", marker="m", status=status, argv="[]", cwd="/w/api", prompt="do it", name=name,
                  created_at=base - 3600, model="gpt-4", pid=42)
        view = JobView(job, stats=ProcessStats(cpu, rss, uptime, 2), tokens=tokens, session_model=model, host=host,
                       last_activity=None if idle is None else now - idle)
        return Row(view, now, STALL_SECONDS, unseen, mono)

    a = row(cpu, rss, uptime, idle, tokens, status, name, unseen, mono, host, model, base + day)
    for b in (row(cpu + 0.1, rss, uptime, idle, tokens, status, name, unseen, mono, host, model, base + day),
              row(cpu, rss + 3, uptime + 0.3, idle, tokens, status, name, unseen, mono, host, model, base + day + 0.3),
              row(cpu, rss, uptime, None if idle is None else idle + 0.4, tokens, status, name, unseen, mono, host,
                  model, base + day + 40_000)):
        if a.shown == b.shown:
            assert [c.cell(a, 12).markup for c in COLUMNS] == [c.cell(b, 12).markup for c in COLUMNS]
