"""Fixes to Textual that a dashboard left open for days, ticking each second, needs. Each is
applied once, at the app's start, and only while Textual's code is still the form it fixes (a
Textual that changed it is left as it is).

Removed widgets kept alive: Textual caches `StylesCache.get_inner_outer` with
`functools.lru_cache` on the method, so each entry's key holds the widget's `StylesCache`
itself, and with it every line that widget last drew: up to 1,024 caches of widgets long
removed. Each job's end is a toast, a widget that goes after a few seconds: a dashboard that saw
1,000 jobs end kept 10 MB of their toasts that way (~17 KB an entry). The colours are all the
result depends on, so here it is cached on the colours alone.

Widgets composited for changes they do not show: for a partial update Textual renders every
widget whose clip (its container's visible area) meets the changed area, and for the whole
screen that is every widget: a second's tick of one table column drew the footer, the status
line, the session pane and the scroll bar too (a third of the frame). Here a widget is
rendered when the part of it that is visible meets the changed area: every cell that is sent
still comes from the widget in front there, so the screen gets the same bytes.
"""

from __future__ import annotations

from functools import lru_cache


def apply() -> None:
    keep_no_removed_widgets()
    composite_only_what_changed()


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


# The local names of Textual 8's `Compositor._get_renders`: its body is the form replaced below.
_GET_RENDERS_NAMES = frozenset({"self", "crop", "_rich_traceback_guard", "_Region", "visible_widgets", "crop_overlaps",
                                "widget_regions", "intersection", "contains_region", "widget", "region", "clip",
                                "new_x", "new_y", "new_width", "new_height"})


def composite_only_what_changed() -> None:
    """Makes `Compositor._get_renders` skip widgets whose visible part misses the crop (once;
    idempotent). Textual's own body otherwise, line for line."""
    from textual._compositor import Compositor
    from textual.geometry import Region

    current = Compositor._get_renders
    if getattr(current, "__wrapped__", None) is not None:
        return  # applied already
    code = current.__code__
    if frozenset(code.co_varnames + code.co_cellvars) != _GET_RENDERS_NAMES:
        return  # Textual changed it: leave it

    def _get_renders(self, crop: Region | None = None):
        _rich_traceback_guard = True  # noqa: F841 - as Textual's: a widget's error shows its own traceback
        visible_widgets = self.visible_widgets
        intersection = Region.intersection
        if crop:
            crop_overlaps = crop.overlaps
            widget_regions = [(widget, region, clip) for widget, (region, clip) in visible_widgets.items()
                              if crop_overlaps(intersection(region, clip))]  # Textual: crop_overlaps(clip)
        else:
            widget_regions = [(widget, region, clip) for widget, (region, clip) in visible_widgets.items()]
        contains_region = Region.contains_region
        for widget, region, clip in widget_regions:
            if contains_region(clip, region):
                yield region, clip, widget.render_lines(Region(0, 0, region.width, region.height))
            else:
                new_x, new_y, new_width, new_height = intersection(region, clip)
                if new_width and new_height:
                    yield region, clip, widget.render_lines(
                        Region(new_x - region.x, new_y - region.y, new_width, new_height))

    _get_renders.__doc__ = current.__doc__
    _get_renders.__wrapped__ = current
    Compositor._get_renders = _get_renders
