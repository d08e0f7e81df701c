"""codexdash: watch and control OpenAI Codex CLI jobs from one terminal screen."""

__version__ = "0.1.0"
