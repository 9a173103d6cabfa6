"""Renders a :class:`colab_magics.progress.Progress`: a widget panel in a notebook, a text line
elsewhere. The only place in the package that imports ipywidgets."""

from __future__ import annotations

from colab_magics.progress import Progress
from colab_magics.ui.display import Display, in_notebook
from colab_magics.ui.text import TextLine


def show(progress: Progress, *, widgets: bool | None = None) -> Display:
    """Start rendering ``progress``; ``widgets`` forces the panel (True) or the text line."""
    use_widgets = in_notebook() if widgets is None else widgets
    if use_widgets:
        from colab_magics.ui.panel import WidgetPanel

        return WidgetPanel(progress)
    return TextLine(progress)


__all__ = ["Display", "TextLine", "show"]
