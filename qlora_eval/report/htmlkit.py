"""Small, safe HTML building blocks for report sections: every piece of text goes through ``esc``."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Sequence
from html import escape
from typing import Any


def esc(value: Any) -> str:
    """HTML-escape any value's ``str()`` (quotes included, so it is safe in attributes too)."""
    return escape(str(value), quote=True)


def html_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    numeric: Sequence[int] = (),
    css_class: str = "data",
) -> str:
    """A table with escaped header and cells; columns listed in ``numeric`` are right-aligned."""
    right = set(numeric)
    head = "".join(
        f'<th class="num">{esc(c)}</th>' if i in right else f"<th>{esc(c)}</th>" for i, c in enumerate(columns)
    )
    body = []
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"a row has {len(row)} cells, the table has {len(columns)} columns")
        cells = "".join(
            f'<td class="num">{esc(v)}</td>' if i in right else f"<td>{esc(v)}</td>" for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<div class="table-wrap"><table class="{esc(css_class)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def figure_img(figure: Any, alt: str, *, caption: str | None = None) -> str:
    """Embed a matplotlib figure as an SVG ``<img>`` (base64 data URI) and close it.

    An ``<img>`` keeps each SVG a separate document: no id clashes between figures, and nothing in it can
    run. Vector graphics stay crisp at any zoom and are smaller than a PNG of the same sharpness.
    """
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    svg = buffer.getvalue()
    # The tight bounding box changes the size, so read it back from the SVG (in points, 72 per inch).
    size = re.search(rb'<svg[^>]*?width="([0-9.]+)pt"[^>]*?height="([0-9.]+)pt"', svg[:2000])
    if size is None:
        raise ValueError("matplotlib wrote an SVG without a width and height in points")
    width_px, height_px = (round(float(v) * 96 / 72) for v in size.groups())
    data = base64.b64encode(svg).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    # Natural size (96 px per inch) at most; max-width in the stylesheet shrinks it on narrow screens.
    return (
        f'<figure><img src="data:image/svg+xml;base64,{data}" alt="{esc(alt)}" '
        f'width="{width_px}" height="{height_px}">{cap}</figure>'
    )
