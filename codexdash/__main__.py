from codexdash.cli import run

run()
