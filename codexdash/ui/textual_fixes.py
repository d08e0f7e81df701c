"""Fixes to Textual that a dashboard left open for days needs.

Textual caches `StylesCache.get_inner_outer` with `functools.lru_cache` on the method, so each
entry's key holds the widget's `StylesCache` itself, and with it every line that widget last
drew: up to 1,024 caches of widgets long removed. Each job's end is a toast, a widget that goes
after a few seconds: a dashboard that saw 1,000 jobs end kept 10 MB of their toasts that way
(~17 KB an entry). The colours are all the result depends on, so here it is cached on the
colours alone. Applied only while Textual's method is still the cached one (a Textual that
fixed it is left as it is).
"""

from __future__ import annotations

from functools import lru_cache


def keep_no_removed_widgets() -> None:
    """Makes `StylesCache.get_inner_outer` cache by its colours only (once; idempotent)."""
    from textual._styles_cache import StylesCache

    cached = StylesCache.__dict__.get("get_inner_outer")
    original = getattr(cached, "__wrapped__", None)
    if original is None or not hasattr(cached, "cache_clear"):
        return  # not the method cached on its instance (fixed, or changed): nothing to do

    @lru_cache(1024)
    def by_colours(base_background, background):
        return original(None, base_background, background)  # its first argument is unused

    def get_inner_outer(self, base_background, background):
        return by_colours(base_background, background)

    get_inner_outer.__doc__ = original.__doc__
    get_inner_outer.__wrapped__ = original
    StylesCache.get_inner_outer = get_inner_outer
    cached.cache_clear()  # what it held of widgets drawn before this
