"""The jobs table and the keys around it, driven with Pilot: moving, sorting, columns, fast
typing, follow-ups and retries, external sessions, and being told when a job ends or stalls."""

from __future__ import annotations

import pytest
from textual import events
from textual.geometry import Region
from textual.widgets import Input, TextArea

from codexdash.store import Job, JobStatus
from codexdash.ui import keys, saved_state
from codexdash.ui.app import CodexdashApp
from codexdash.ui.column_chooser import ColumnChooser
from codexdash.ui.columns import BY_KEY, UNSEEN_MARK
from codexdash.ui.help_screen import HelpScreen, help_rows
from codexdash.ui.sort_menu import SortMenu
from codexdash.ui.start_dialog import StartDialog
from tests.conftest import wait_for
from tests.test_external import run_codex_by_hand
from tests.ui_support import add_fixed_jobs, add_many_jobs, table_text, until

SIZE = (140, 36)


@pytest.fixture
def app(sandbox):
    sandbox.engine.settings = sandbox.settings.with_overrides(refresh_interval=0.2, interrupt_grace=2.0)
    return CodexdashApp(sandbox.engine, cwd=str(sandbox.root), host="testhost")


def burst(app, *keys_: str) -> None:
    """Keys as a fast typist over a laggy link sends them: all read before any is handled."""
    for key in keys_:
        char = {"space": " ", "tab": "\t"}.get(key, key if len(key) == 1 else None)
        event = events.Key(key, char)
        event.set_sender(app)
        app._driver.send_message(event)


def header(app) -> list[str]:
    return [c.plain for c in app.table.header_cells()]


def selected(app) -> str | None:
    return app.table.selected_job_id


def recorded_alerts(app) -> list[str]:
    sent: list[str] = []
    app.alert.write = sent.append
    app.alert.enabled = True
    return sent


# ---- moving -------------------------------------------------------------------------------------------


async def test_home_end_g_G_and_pages_move_between_rows(sandbox, app):
    ids = add_many_jobs(sandbox.engine.store, 40)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.table.row_count == 40, message="the jobs")
        assert selected(app) == ids[0]
        await pilot.press("end")
        assert selected(app) == ids[-1] and app.table.scroll_x == 0  # a row, not sideways
        await pilot.press("home")
        assert selected(app) == ids[0]
        await pilot.press("G")
        assert selected(app) == ids[-1]
        await pilot.press("g")
        assert selected(app) == ids[0]
        await pilot.press("pagedown")
        paged = app.table.cursor_row
        assert paged > 10
        await pilot.press("pageup")
        assert app.table.cursor_row == 0
        await pilot.press("down", "down")
        assert selected(app) == ids[2]


async def test_the_selected_row_stays_in_view_after_a_resize(sandbox, app):
    ids = add_many_jobs(sandbox.engine.store, 40)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: app.table.row_count == 40, message="the jobs")
        await pilot.press("end", "up", "up")
        assert selected(app) == ids[-3]
        await pilot.resize_terminal(80, 24)
        table = app.table

        def in_view() -> bool:
            top = table.scroll_y
            rows_shown = table.scrollable_content_region.height - 1  # the header
            return top <= table.cursor_row < top + rows_shown

        await until(pilot, lambda: app.size.width == 80 and in_view(), message="the cursor row in view at 80x24")
        assert selected(app) == ids[-3]


async def test_at_80x24_quit_is_in_the_footer_and_the_status_line_fits(sandbox, app):
    add_fixed_jobs(sandbox.engine.store)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.table.row_count == 5, message="the fixed jobs")
        def quit_key():
            return next((k for k in app.footer.query("FooterKey") if k.key == "q" and k.region.width), None)

        key = await until(pilot, quit_key, message="q in the footer, drawn")
        assert key.region.right <= 80 and "Quit" in str(key.render())
        status = str(app.status_line.render())
        assert len(status) <= 80 and "buildbox" not in status and "failed 1" in status and "Σ 75" in status
        assert "Name" in " ".join(header(app))  # the name is never dropped


# ---- sorting and columns ---------------------------------------------------------------------------------


async def test_sort_by_the_column_under_the_header_cursor_second_press_reverses(sandbox, app):
    add_fixed_jobs(sandbox.engine.store)
    async with app.run_test(size=(200, 40)) as pilot:
        await until(pilot, lambda: app.table.row_count == 5, message="the fixed jobs")
        assert "Started ▼" in header(app)  # newest first, marked
        await pilot.press("left")  # from Started to Name
        assert app.table.pointer == "name"
        await pilot.press("s")
        assert app.table.sort_spec == ("name", False) and "Name ▲" in header(app)
        names = [app.table.row_cells(i)[2].plain for i in range(5)]
        assert names == sorted(names, key=str.lower)
        await pilot.press("s")
        assert app.table.sort_spec == ("name", True) and "Name ▼" in header(app)
        assert [app.table.row_cells(i)[2].plain for i in range(5)] == sorted(names, key=str.lower, reverse=True)
        await pilot.press("S")
        menu = await until(pilot, lambda: isinstance(app.screen, SortMenu) and app.screen, message="the sort menu")
        menu.options.highlighted = next(i for i, o in enumerate(menu.options.options) if o.id == "tokens")
        await pilot.press("enter")
        await until(pilot, lambda: app.table.sort_spec == ("tokens", True), message="sorted by tokens, biggest first")
        assert "Tokens ▼" in header(app)
        state = saved_state.load(app.state_path)
        assert state.sort == ("tokens", True)


async def test_the_state_sort_puts_live_jobs_first_then_failures_then_the_rest(sandbox, app):
    add_fixed_jobs(sandbox.engine.store)
    live = sandbox.start("please SLEEP 60")
    async with app.run_test(size=(200, 40)) as pilot:
        await until(pilot, lambda: app.table.row_count == 6, message="the jobs")
        while app.table.pointer != "state":
            await pilot.press("left")
        await pilot.press("s")
        order = [app.table.row_cells(i)[0].plain for i in range(6)]
        assert order[0] == "● running" and app.table._order[0] == live.id
        assert order[1:] == ["✖ failed", "✔ completed", "✔ completed", "■ interrupted", "✝ killed"]


async def test_columns_can_be_hidden_and_sized_and_are_remembered(sandbox, app):
    add_fixed_jobs(sandbox.engine.store)
    async with app.run_test(size=(200, 40)) as pilot:
        await until(pilot, lambda: app.table.row_count == 5, message="the fixed jobs")
        assert "Job" in header(app)
        await pilot.press("C")
        chooser = await until(pilot, lambda: isinstance(app.screen, ColumnChooser) and app.screen, message="the chooser")
        await pilot.press("down", "space")  # the second column: Job
        while chooser.order[chooser.options.highlighted] != "cwd":
            await pilot.press("down")
        await pilot.press("plus", "plus")
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, ColumnChooser), message="the chooser to close")
        assert "Job" not in header(app)
        assert dict(app.table.fitted)[BY_KEY["cwd"]] == 18
        state = await until(pilot, lambda: (s := saved_state.load(app.state_path)) and "id" not in s.columns and s,
                            message="the layout saved")
        assert state.widths == {"cwd": 18}
    again = CodexdashApp(sandbox.engine, cwd=str(sandbox.root), host="testhost")
    async with again.run_test(size=(200, 40)) as pilot:
        await until(pilot, lambda: again.table.row_count == 5, message="the fixed jobs")
        assert "Job" not in header(again) and dict(again.table.fitted)[BY_KEY["cwd"]] == 18


# ---- help and the palette ---------------------------------------------------------------------------------


async def test_help_lists_every_key_from_the_one_table(sandbox, app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        screen = await until(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen, message="help")
        rows = {(k, what) for _group, k, what in help_rows()}
        for key in keys.KEYS:  # every key, with its words
            assert any(keys.shown(key.keys) in k and what == key.help for k, what in rows), key
        assert ("↑ / ↓", "previous / next job") in rows and ("Home / g", "first job") in rows
        drawn_keys = screen.query_one("#help-keys")
        drawn = "\n".join(line.text for line in drawn_keys.render_lines(Region(0, 0, *drawn_keys.size)))
        assert "PgUp / PgDn" in drawn and "Home / g" in drawn
        await pilot.press("escape")


async def test_zoom_gives_the_pane_the_screen_and_escape_gives_it_back(sandbox, app):
    add_fixed_jobs(sandbox.engine.store)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.table.row_count == 5, message="the fixed jobs")
        await pilot.press("z")
        await until(pilot, lambda: app.pane.size.width == SIZE[0], message="the pane as wide as the screen")
        assert not app.table.display or app.table.size.width == 0 or not app.table.region
        assert app.focused is app.pane.log_view
        await pilot.press("escape")
        await until(pilot, lambda: app.table.region.width > 0, message="the table back")
        assert app.focused is app.table
        await pilot.press("z", "tab")  # tab from the zoomed pane: back to both, on the table
        await until(pilot, lambda: app.table.region.width > 0 and app.focused is app.table, message="the table again")


# ---- typing fast ------------------------------------------------------------------------------------------


async def test_keys_typed_in_one_burst_after_n_land_in_the_fields_in_order(sandbox, app):
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.refreshes >= 1, message="the first refresh")
        before = app.table.sort_spec
        burst(app, "n", *"ECHO say", "space", *"hi", "tab", *"XYZ")
        dialog = await until(pilot, lambda: isinstance(app.screen, StartDialog) and app.screen, message="the dialog")
        prompt, name = dialog.query_one("#prompt", TextArea), dialog.query_one("#name", Input)
        await until(pilot, lambda: name.value == "XYZ", message="XYZ in the name field")
        assert prompt.text == "ECHO say hi"
        assert app.table.sort_spec == before  # the `s` of "say" never reached the table
        burst(app, "shift+tab", "space", *"now", "ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, StartDialog), message="the dialog to close")
        (job,) = await until(pilot, lambda: list(Job.select()), message="the job recorded")
        assert (job.prompt, job.name) == ("ECHO say hi now", "XYZ")
        await until(pilot, lambda: "XYZ" in table_text(app), message="the job by its name in the table")


async def test_the_name_defaults_to_a_title_from_the_prompt(sandbox, app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n", *"ECHO fix the flaky retry test in api")
        dialog = await until(pilot, lambda: isinstance(app.screen, StartDialog) and app.screen, message="the dialog")
        assert dialog.query_one("#name", Input).placeholder == "ECHO fix the flaky retry test in api"
        await pilot.press("ctrl+s")
        (job,) = await until(pilot, lambda: list(Job.select()), message="the job recorded")
        assert job.name == "ECHO fix the flaky retry test in api"


# ---- follow-ups and retries ---------------------------------------------------------------------------------


async def test_follow_up_opens_the_dialog_for_the_selected_job_and_starts_a_resume(sandbox, app):
    parent = sandbox.start("ECHO first answer", model="m-1")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: "✔ completed" in table_text(app) and selected(app) == parent.id, message="the parent done")
        await pilot.press("c", *"ECHO second answer")
        dialog = await until(pilot, lambda: isinstance(app.screen, StartDialog) and app.screen, message="the dialog")
        assert dialog.follow_up and dialog.query_one("#model", Input).value == "m-1"
        assert dialog.query_one("#prompt", TextArea).text == "ECHO second answer"
        await pilot.press("ctrl+s")
        follow = await until(pilot, lambda: Job.get_or_none(Job.parent_id == parent.id), message="the follow-up")
        assert follow.prompt == "ECHO second answer" and follow.model == "m-1" and follow.cwd == parent.cwd
        await until(pilot, lambda: selected(app) == follow.id, message="the follow-up selected")
        await until(pilot, lambda: Job.get_by_id(follow.id).status == JobStatus.COMPLETED, message="the follow-up done")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Follow up on the selected job" in titles


async def test_follow_up_on_a_running_job_is_refused_with_the_reason(sandbox, app):
    job = sandbox.start("please SLEEP 60")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: selected(app) == job.id and "● running" in table_text(app), message="the job")
        await pilot.press("c", "s")
        await until(pilot, lambda: any("one turn at a time" in n.message for n in app._notifications),
                    message="the refusal")
        assert not isinstance(app.screen, StartDialog)
        await until(pilot, lambda: app._held_keys is None, message="the keys let go")


async def test_retry_runs_the_selected_job_again(sandbox, app):
    first = sandbox.start("please FAIL", model="m-2", sandbox="read-only")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "✖ failed" in table_text(app) and selected(app) == first.id, message="the failure")
        await pilot.press("R")
        again = await until(pilot, lambda: Job.get_or_none(Job.retry_of == first.id), message="the retry")
        assert (again.prompt, again.model, again.sandbox, again.cwd) == ("please FAIL", "m-2", "read-only", first.cwd)
        await until(pilot, lambda: selected(app) == again.id, message="the retry selected")


# ---- external sessions ---------------------------------------------------------------------------------------


async def test_external_sessions_are_shown_marked_read_only_and_can_be_hidden(sandbox, app):
    run_codex_by_hand(sandbox, "ECHO typed by hand")
    async with app.run_test(size=(200, 40), notifications=True) as pilot:
        await until(pilot, lambda: "~ ECHO typed by hand" in table_text(app), message="the external session, marked")
        assert selected(app) is not None
        await pilot.press("k")
        await until(pilot, lambda: any("not started by codexdash: no marker to verify" in n.message
                                       for n in app._notifications), message="the kill refused with the reason")
        await pilot.press("x")
        await until(pilot, lambda: "typed by hand" not in table_text(app), message="hidden")
        assert "external hidden" in str(app.status_line.render())
        await pilot.press("x")
        await until(pilot, lambda: "typed by hand" in table_text(app), message="shown again")


# ---- told when it matters ---------------------------------------------------------------------------------------


async def test_a_finished_job_rings_notifies_and_is_marked_unseen_until_looked_at(sandbox, app):
    add_fixed_jobs(sandbox.engine.store)
    sent = recorded_alerts(app)
    async with app.run_test(size=(200, 40)) as pilot:
        await until(pilot, lambda: app.table.row_count == 5, message="the fixed jobs")
        await pilot.press("G")  # the operator is on the oldest job
        job = sandbox.start("FAIL after a moment SLEEP 1")
        await until(pilot, lambda: job.id in app.attention.unseen, message="the end seen by the dashboard")
        (alert,) = sent
        assert alert.startswith("\x07\x1b]9;codexdash: FAIL after a moment SLEEP 1 failed")
        assert "\x1b]777;notify;codexdash;" in alert
        row = app.table._order.index(job.id)
        assert app.table.row_cells(row)[2].plain.startswith(UNSEEN_MARK)
        assert "⚑ 1 failed" in str(app.status_line.render())
        await pilot.press("g")  # onto the new job: looked at
        await until(pilot, lambda: job.id not in app.attention.unseen, message="the mark cleared")
        assert not app.table.row_cells(0)[2].plain.startswith(UNSEEN_MARK)
        assert "⚑" not in str(app.status_line.render())


async def test_a_kill_from_the_dashboard_neither_rings_nor_marks(sandbox, app):
    job = sandbox.start("please SLEEP 60")
    sent = recorded_alerts(app)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: selected(app) == job.id and "● running" in table_text(app), message="the job")
        await pilot.press("k")
        await until(pilot, lambda: type(app.screen).__name__ == "KillDialog", message="the kill dialog")
        await pilot.press("y")
        await until(pilot, lambda: "✝ killed" in table_text(app), message="the kill")
        assert sent == [] and job.id not in app.attention.unseen


async def test_a_stalled_job_stands_out_rings_and_is_counted(sandbox, app):
    go_on = sandbox.root / "go-on"
    job = sandbox.start(f"UNTIL {go_on} ECHO done")
    sent = recorded_alerts(app)
    app.attention.stall_after = 1.0  # the table takes it when it is made
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "⚠ stalled" in table_text(app), message="the stall shown")
        await until(pilot, lambda: sent, message="the stall told")
        assert "stalled (job " + job.id in sent[0]
        assert "1 stalled" in str(app.status_line.render())
        go_on.touch()
        await until(pilot, lambda: "✔ completed" in table_text(app), message="the job done")
        assert len(sent) == 2 and "completed (job" in sent[1]


async def test_jobs_that_ended_while_no_dashboard_was_open_are_unseen(sandbox, app):
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.refreshes >= 1, message="the first refresh")
    closed_at = saved_state.load(app.state_path).closed_at
    assert closed_at is not None
    job = sandbox.start("ECHO done while away")
    wait_for(lambda: sandbox.engine.refresh([job]) and not job.is_live, message="the job to end")
    assert job.ended_at > closed_at
    again = CodexdashApp(sandbox.engine, cwd=str(sandbox.root), host="testhost")
    async with again.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: job.id in again.attention.unseen, message="marked unseen")
        await until(pilot, lambda: "1 unseen" in str(again.status_line.render()), message="counted")
        assert again.table.row_cells(0)[2].plain.startswith(UNSEEN_MARK)  # not cleared by the first selection


# ---- threads together ---------------------------------------------------------------------------------------


async def test_threads_together_puts_follow_ups_under_their_job_and_is_remembered(sandbox, app):
    parent = sandbox.start("ECHO first", name="b parent")
    wait_for(lambda: sandbox.engine.refresh([parent]) and not parent.is_live, message="the parent to end")
    other = sandbox.start("ECHO unrelated", name="c other")
    wait_for(lambda: sandbox.engine.refresh([other]) and not other.is_live, message="the other to end")
    follow = sandbox.engine.resume(Job.get_by_id(parent.id), "ECHO second", name="a follow-up")
    wait_for(lambda: sandbox.engine.refresh([follow]) and not follow.is_live, message="the follow-up to end")

    def order() -> list[str]:
        return list(app.table._order)

    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: order() == [follow.id, other.id, parent.id], message="newest first")
        await pilot.press("t")
        await until(pilot, lambda: order() == [parent.id, follow.id, other.id], message="the thread together")
        assert "threads" in str(app.status_line.render())
        app._sort_by("name")  # the thread is one block, where its best-placed job (the follow-up) is
        await until(pilot, lambda: app.table.sort_spec == ("name", False), message="by name")
        await until(pilot, lambda: order() == [parent.id, follow.id, other.id], message="still together")
        await pilot.press("t")
        await until(pilot, lambda: order() == [follow.id, parent.id, other.id], message="by name alone")
        await pilot.press("t")
    assert saved_state.load(app.state_path).threads is True
    again = CodexdashApp(sandbox.engine, cwd=str(sandbox.root), host="testhost", state_path=app.state_path)
    async with again.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: list(again.table._order) == [parent.id, follow.id, other.id], message="remembered")
