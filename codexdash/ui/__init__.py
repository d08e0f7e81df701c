"""The Textual dashboard over the core. Nothing outside this package imports Textual."""
