"""The session pane never lies: it follows when at the bottom, wraps to its width, says what
commands did, searches visibly, shows raw records readably, live tokens and model, each job's
part of a shared session and a failed job's error."""

from __future__ import annotations

import pytest

from codexdash.store import Job, JobStatus
from codexdash.ui.app import CodexdashApp
from tests.conftest import SAMPLES, wait_for
from tests.pane_support import agent_message, record_job, record_thread, user_message, write_session
from tests.ui_support import log_text, until


@pytest.fixture
def app(sandbox):
    sandbox.engine.settings = sandbox.settings.with_overrides(refresh_interval=0.2)
    return CodexdashApp(sandbox.engine, cwd=str(sandbox.root), host="testhost")


def state(app) -> str:
    return str(app.pane.state_line.render())


def title(app) -> str:
    return str(app.pane.title_line.render())


async def shown(pilot, job_id: str, text: str) -> None:
    app = pilot.app
    await until(pilot, lambda: app.table.selected_job_id is not None, message="a job selected")
    while app.table.selected_job_id != job_id:
        await pilot.press("down")
    await until(pilot, lambda: text in log_text(app), message=f"{text!r} in the pane")


async def test_follow_resumes_when_the_user_reaches_the_bottom(sandbox, app):
    # A long prompt fills the pane at once; then a line a second arrives.
    job = sandbox.start("STREAM 60\n" + "\n".join(f"context line {i}" for i in range(60)))
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: "step 1 of 60" in log_text(app), message="live lines")
        log = app.pane.log_view
        await pilot.press("tab")
        assert app.focused is log and log.max_scroll_y > 0
        for resume in ("end", "G", "pagedown"):
            await pilot.press("pageup")
            assert "paused: scrolled up" in state(app)
            seen = log.line_count
            await until(pilot, lambda: log.line_count > seen, message="lines arriving while scrolled up")
            assert log.scroll_y < log.max_scroll_y  # not dragged down while the user reads
            await pilot.press(resume)
            if resume == "pagedown":  # scrolling: resumes once the bottom is reached
                while log.scroll_y < log.max_scroll_y:
                    await pilot.press("pagedown")
            assert "▼ following" in state(app), resume
            seen = log.line_count
            await until(pilot, lambda: log.line_count > seen, message="the next line")
            assert log.scroll_y == log.max_scroll_y and "▼ following" in state(app), resume
    del job


async def test_lines_wrap_again_when_the_pane_widens(sandbox, app):
    words = " ".join(f"word{i}" for i in range(120))
    path = write_session(sandbox.root / "s.jsonl", [user_message("wrap me"), agent_message(words)])
    record_job(sandbox.engine.store, "a1a1a1a1a1", path)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "word119" in log_text(app), message="the long line")
        log = app.pane.log_view
        narrow_rows = log.virtual_size.height
        await pilot.resize_terminal(220, 40)
        await until(pilot, lambda: log.virtual_size.height < narrow_rows, message="fewer rows at a wider pane")
        wide = log.scrollable_content_region.width
        assert all(len(log.render_line(y).text.rstrip()) <= wide for y in range(log.size.height))
        assert "word119" in log_text(app)


async def test_commands_say_whether_they_finished_ran_on_or_were_aborted(sandbox, app):
    record_job(sandbox.engine.store, "b1b1b1b1b1", SAMPLES / "0171-tool-handed-back-then-completed.jsonl", age=60)
    record_job(sandbox.engine.store, "c1c1c1c1c1", SAMPLES / "0171-interrupted-during-tool.jsonl",
               status=JobStatus.INTERRUPTED, age=120)
    async with app.run_test(size=(140, 40)) as pilot:
        await shown(pilot, "b1b1b1b1b1", "↳ still running")
        assert "↳ finished" not in log_text(app)
        await shown(pilot, "c1c1c1c1c1", "↳ aborted")
        assert "↳ finished" not in log_text(app)
        assert "■ interrupted" in log_text(app) and "interrupted: interrupted" not in log_text(app)


async def test_search_highlights_every_match_steps_and_says_it_paused_follow(sandbox, app):
    lines = [user_message("find the needles")] + [agent_message(f"line {i} {'needle' if i % 7 == 3 else 'hay'}")
                                                  for i in range(30)]
    record_job(sandbox.engine.store, "d1d1d1d1d1", write_session(sandbox.root / "s.jsonl", lines))
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: "line 29" in log_text(app), message="the session")
        log = app.pane.log_view
        await pilot.press("tab", "slash", *"NEEDLE", "enter")
        assert "“NEEDLE” 1/5 n/N" in state(app) and "paused by search" in state(app)
        highlighted = [seg.text for y in range(log.size.height) for seg in log.render_line(y) if seg.style and seg.style.reverse]
        assert highlighted.count("needle") == 5  # every match, as written
        width = app.pane.state_line.content_region.width
        assert len(state(app)) <= width  # the whole state fits the pane at 140 columns
        await pilot.press("escape")
        assert app.focused is log
        await pilot.press("n")
        assert "2/5" in state(app)
        await pilot.press("N", "N")
        assert "5/5" in state(app)  # back past the first: from the last
        await pilot.press("end")
        assert "▼ following" in state(app) and "“NEEDLE”" in state(app)  # highlights stay while it follows


async def test_n_starts_a_job_when_no_search_is_open(sandbox, app):
    record_job(sandbox.engine.store, "d2d2d2d2d2", SAMPLES / "completed-message.jsonl")
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: "hi from mock" in log_text(app), message="the session")
        await pilot.press("tab", "n")
        await until(pilot, lambda: type(app.screen).__name__ == "StartDialog", message="the start dialog")


async def test_raw_mode_shows_each_record_pretty_printed_with_controls_visible(sandbox, app):
    path = write_session(sandbox.root / "s.jsonl", [user_message("raw"), agent_message("red \x1b[31mtext\u202e end\x9b")])
    record_job(sandbox.engine.store, "e1e1e1e1e1", path)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: "red" in log_text(app), message="the session")
        await pilot.press("r")
        await until(pilot, lambda: "▸ response_item · message  2026-11-28T14:58:00.000Z  #0" in log_text(app),
                    message="one heading per record")
        text = log_text(app)
        assert '\n  "role": "assistant",\n' in text  # indented JSON, a field a line
        assert "\\u001b[31mtext<U+202E> end<U+009B>" in text
        assert "\x1b" not in text and "\u202e" not in text and "\x9b" not in text
        assert "raw JSON" in state(app)


async def test_live_tokens_and_model_come_from_the_session(sandbox, app):
    # Codex 0.171 mid-tool: a token_usage_record, no token_count yet.
    lines = (SAMPLES / "0171-tool-handed-back-then-completed.jsonl").read_bytes().splitlines()[:11]
    record_job(sandbox.engine.store, "f1f1f1f1f1", write_session(sandbox.root / "s.jsonl", lines))
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: "$ sleep 45" in log_text(app), message="the session")
        await until(pilot, lambda: "mock-model · Σ" in title(app), message="model and tokens in the title")
        assert "Σ - tokens" not in title(app)


async def test_each_jobs_part_of_a_shared_session_is_marked(sandbox, app):
    parent, follow = record_thread(sandbox.engine.store)
    async with app.run_test(size=(140, 40)) as pilot:
        await shown(pilot, follow.id, "› say hi again")
        text = log_text(app)
        first = text.index(f"━━ job {parent.id} · say hi · ✔ completed")
        second = text.index(f"━━ ▶ job {follow.id} · say hi again · ✔ completed")  # the job shown
        assert first < text.index("› say hi\n") < second < text.index("› say hi again")
        await shown(pilot, parent.id, "› say hi again")
        assert f"━━ ▶ job {parent.id}" in log_text(app) and f"━━ job {follow.id}" in log_text(app)


async def test_a_follow_up_started_while_its_parent_is_shown_gets_its_mark(sandbox, app):
    parent = sandbox.start("ECHO first answer")
    wait_for(lambda: sandbox.engine.refresh([parent]) and not parent.is_live, message="the parent to end")
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: "first answer" in log_text(app), message="the parent's session")
        follow = sandbox.engine.resume(Job.get_by_id(parent.id), "ECHO second answer")
        await until(pilot, lambda: "› ECHO second answer" in log_text(app) and f"job {follow.id}" in log_text(app),
                    message="the follow-up's turn, marked")
        text = log_text(app)
        assert text.index(f"job {follow.id}") < text.index("› ECHO second answer")
        assert text.index("first answer") < text.index(f"job {follow.id}")


async def test_a_failed_jobs_error_is_shown_as_text(sandbox, app):
    record_job(sandbox.engine.store, "c3d4e5f6a7", SAMPLES / "failed-connection.jsonl", status=JobStatus.FAILED,
               error="stream disconnected [bold]before[/] completion \x1b[31m")
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: "Connection failed" in log_text(app), message="the session")
        error = str(app.pane.error_line.render())
        assert error == "✖ stream disconnected [bold]before[/] completion ^[[31m"
        assert app.pane.error_line.display


def test_search_steps_through_matches_and_forgets_dropped_lines():
    from codexdash.ui.session_search import Search

    search = Search()
    search.set("Ab", [(10, "ab xx AB"), (11, "none"), (12, "zab")])
    assert [tuple(m) for m in search.matches] == [(10, 0, 2), (10, 6, 8), (12, 1, 3)]
    assert search.position() == "3 matches"
    assert search.step(True, from_line=11).line == 12 and search.position() == "3/3"
    assert search.step(True, from_line=0) == (10, 0, 2)  # on from the current one, past the end
    assert search.step(False, from_line=0) == (12, 1, 3)
    search.extend([(13, "[ab]")])
    search.drop_before(11)
    assert [m.line for m in search.matches] == [12, 13] and search.position() == "1/2"
    search.set("", [(14, "ab")])
    assert not search.active and search.position() == "no match"


async def test_the_last_line_stays_in_view_when_the_pane_shrinks(sandbox, app):
    lines = [user_message("many lines")] + [agent_message(f"line {i}") for i in range(80)]
    record_job(sandbox.engine.store, "d3d3d3d3d3", write_session(sandbox.root / "s.jsonl", lines), age=60)
    record_job(sandbox.engine.store, "d4d4d4d4d4", write_session(sandbox.root / "t.jsonl", lines),
               status=JobStatus.FAILED, error="a long error " * 20, age=120)
    async with app.run_test(size=(140, 40)) as pilot:
        await shown(pilot, "d3d3d3d3d3", "line 79")
        await shown(pilot, "d4d4d4d4d4", "line 79")  # its error takes header lines from the log
        log = app.pane.log_view
        await until(pilot, lambda: app.pane.error_line.display and log.scroll_y == log.max_scroll_y > 0,
                    message="the log at its bottom under the error")
        await pilot.resize_terminal(140, 30)
        await until(pilot, lambda: log.size.height < 30 and log.scroll_y == log.max_scroll_y, message="still at the bottom")
        assert "▼ following" in state(app)


async def test_a_session_file_replaced_goes_on_where_it_was_or_is_shown_again_with_a_note(sandbox, app):
    """Codex's thread store may rewrite a live file by renaming a new one over it: one that
    begins as the file did adds its new lines; another file is shown from its start, said."""
    import os

    from codexdash.ui.session_pane import REREAD_NOTE

    lines = [user_message("replace me")] + [agent_message(f"line {i}") for i in range(60)]
    path = write_session(sandbox.root / "s.jsonl", lines)
    record_job(sandbox.engine.store, "e4e4e4e4e4", path, age=60)

    def replace_with(new_lines) -> None:
        fresh = write_session(sandbox.root / "s.tmp", new_lines)
        os.replace(fresh, path)

    async with app.run_test(size=(140, 40)) as pilot:
        await shown(pilot, "e4e4e4e4e4", "line 59")
        replace_with(lines + [agent_message("line 60")])
        await until(pilot, lambda: "line 60" in log_text(app), message="the line the replacement added")
        assert log_text(app).count("line 59") == 1 and log_text(app).count("replace me") == 1
        assert REREAD_NOTE not in state(app)
        replace_with([user_message("another session"), agent_message("its only answer")])
        await until(pilot, lambda: "its only answer" in log_text(app), message="the other file, from its start")
        assert "line 59" not in log_text(app) and "another session" in log_text(app)
        await until(pilot, lambda: REREAD_NOTE in state(app), message="the note that it was read again")
