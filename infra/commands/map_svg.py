"""The data-path map (render.data_path_map) drawn as one self-contained SVG element.

Mermaid needs a browser and its JavaScript; `residency report` must write its page offline and
the page must fetch nothing, so the same graph the Mermaid text comes from is laid out here:
left to right in columns (a node's column is the longest chain of edges leading to it), the
geography's parts inside a boundary box, everything outside the geography in the last column.
Text widths are estimated (no font metrics offline); boxes are sized with room to spare.
"""

from __future__ import annotations

from html import escape

from infra.commands.render import DataPathMap, MapNode

CHAR_W, LINE_H, PAD = 7.2, 16, 10  # px: average glyph width at 12px sans-serif, line height, box padding
COL_GAP, ROW_GAP, MARGIN, TITLE_H = 70, 22, 16, 34
STYLE = {  # (fill, stroke, dash)
    "inside": ("#e8f5e9", "#2e7d32", ""),
    "outside": ("#ffffff", "#546e7a", ""),
    "global_processing": ("#fff3f3", "#c62828", "6 3"),
    "violation": ("#ffebee", "#c62828", ""),
}


WRAP = 44  # characters: longer lines (region lists, path labels) break after a comma


def _wrap(line: str, width: int = WRAP) -> list[str]:
    out: list[str] = []
    for part in line.split(", "):
        if out and len(out[-1]) + 2 + len(part) <= width:
            out[-1] += ", " + part
        else:
            out.append(part)
    return [f"{x}," if i + 1 < len(out) else x for i, x in enumerate(out)]


def _wrapped(node: MapNode) -> MapNode:
    return MapNode(node.id, tuple(x for line in node.lines for x in _wrap(line)), node.style)


def _size(node: MapNode) -> tuple[float, float]:
    width = max((len(line) for line in node.lines), default=4) * CHAR_W + 2 * PAD
    return max(width, 90), len(node.lines) * LINE_H + 2 * PAD


def _columns(graph: DataPathMap) -> list[list[MapNode]]:
    """Inside nodes by longest incoming chain; outside nodes in one column after them."""
    inside = {n.id: n for n in graph.inside}
    depth = {nid: 0 for nid in inside}
    for _ in range(len(inside)):  # relax: edges among inside nodes push their targets right
        for a, b, _label in graph.edges:
            if a in inside and b in inside and depth[b] < depth[a] + 1:
                depth[b] = depth[a] + 1
    # Where paths leave the geography (the egress firewall) sits at the boundary's right edge, so
    # its edges to the outside do not cross the other parts.
    last = max(depth.values(), default=0)
    for a, b, _label in graph.edges:
        if a in inside and b not in inside and not any(x == a and y in inside for x, y, _ in graph.edges):
            depth[a] = last
    columns: list[list[MapNode]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for nid, node in sorted(inside.items()):
        columns[depth[nid]].append(node)
    return columns + ([sorted(graph.outside, key=lambda n: n.id)] if graph.outside else [])


def _text(x: float, y: float, lines: tuple[str, ...], weight_first: bool = True) -> str:
    bold = ' font-weight="600"'
    spans = "".join(f'<tspan x="{x:.0f}" dy="{0 if i == 0 else LINE_H}"'
                    f'{bold if i == 0 and weight_first else ""}>{escape(line)}</tspan>'
                    for i, line in enumerate(lines))
    return f'<text x="{x:.0f}" y="{y:.0f}" font-size="12">{spans}</text>'


def _edge(src, dst, label: str, skipped: list[list[tuple]]) -> list[str]:
    """A left-to-right curve from `src`'s right side to `dst`'s left side. An edge that skips
    columns goes round their boxes (below them when its target is low, above otherwise), so it
    never looks as if it passed through a part. A labelled edge ends straight under its label."""
    ax, ay, aw, ah = src
    bx, by, _bw, bh = dst
    x1, y1, end, y2 = ax + aw, ay + ah / 2, bx - 2, by + bh / 2
    path = f"M{x1:.0f},{y1:.0f}"
    boxes = [box for col in skipped for box in col]
    if boxes:
        top, bottom = min(b[1] for b in boxes), max(b[1] + b[3] for b in boxes)
        wy = bottom + ROW_GAP / 2 if y2 >= (top + bottom) / 2 else top - ROW_GAP / 2
        xs, xe = min(b[0] for b in boxes) - 12, max(b[0] + b[2] for b in boxes) + 12
        path += f" C{x1 + 30:.0f},{y1:.0f} {xs - 30:.0f},{wy:.0f} {xs:.0f},{wy:.0f} L{xe:.0f},{wy:.0f}"
        x1, y1 = xe, wy
    lines = _wrap(label) if label else []
    straight = max((len(x) for x in lines), default=0) * CHAR_W * 0.9 + 16 if label else 0
    xb = max(end - straight, x1 + 10)
    mid = (x1 + xb) / 2
    path += f" C{mid:.0f},{y1:.0f} {mid:.0f},{y2:.0f} {xb:.0f},{y2:.0f}" + (f" L{end:.0f},{y2:.0f}" if xb < end else "")
    out = [f'<path class="edge" d="{path}" fill="none" stroke="#37474f" stroke-width="1.5" marker-end="url(#arrow)"/>']
    for i, line in enumerate(reversed(lines)):  # stacked upwards from just above the edge
        out.append(f'<text class="edge-label" x="{end - 6:.0f}" y="{y2 - 6 - i * (LINE_H - 3):.0f}" font-size="11" '
                   f'text-anchor="end" fill="#263238">{escape(line)}</text>')
    return out


def svg(graph: DataPathMap, title: str) -> str:
    graph = DataPathMap(graph.boundary, [_wrapped(n) for n in graph.inside], [_wrapped(n) for n in graph.outside],
                        graph.edges)
    columns = _columns(graph)
    inside_cols = len(columns) - (1 if graph.outside else 0)
    label_room = max((len(x) for _, _, label in graph.edges if label for x in _wrap(label, WRAP)),
                     default=0) * CHAR_W * 0.9 + 40
    sizes = {n.id: _size(n) for col in columns for n in col}
    col_w = [max(sizes[n.id][0] for n in col) for col in columns]
    col_h = [sum(sizes[n.id][1] for n in col) + ROW_GAP * (len(col) - 1) for col in columns]
    body_h = max(col_h + [LINE_H])
    boundary_w_min = len(graph.boundary.lines[0]) * CHAR_W + 2 * PAD if graph.boundary.lines else 0
    pos: dict[str, tuple[float, float, float, float]] = {}
    x = MARGIN + PAD * 2
    top = MARGIN + TITLE_H
    for i, col in enumerate(columns):
        if i == inside_cols and graph.outside:
            x += max(COL_GAP + label_room, COL_GAP * 2)
        y = top + (body_h - col_h[i]) / 2
        for n in col:
            w, h = sizes[n.id]
            pos[n.id] = (x + (col_w[i] - w) / 2, y, w, h)
            y += h + ROW_GAP
        x += col_w[i] + (COL_GAP if i + 1 < inside_cols else 0)
    inner_right = (max((pos[n.id][0] + pos[n.id][2] for col in columns[:inside_cols] for n in col),
                       default=MARGIN + PAD * 2 + 120))
    bx, by = MARGIN, MARGIN
    bw = max(inner_right + PAD * 2 - bx, boundary_w_min)
    bh = TITLE_H + body_h + PAD * 2
    pos[graph.boundary.id] = (bx, by, bw, bh)
    width = max(x, bx + bw) + MARGIN
    height = by + bh + MARGIN

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="data-path-map" role="img" aria-labelledby="map-title" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'font-family="DejaVu Sans, Arial, Helvetica, sans-serif">',
        f'<title id="map-title">{escape(title)}</title>',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#37474f"/></marker></defs>',
        f'<rect class="boundary" x="{bx}" y="{by}" width="{bw:.0f}" height="{bh:.0f}" rx="10" '
        'fill="#f1f8e9" stroke="#33691e" stroke-width="2"/>',
        _text(bx + PAD, by + 22, graph.boundary.lines),
    ]
    column_of = {n.id: i for i, col in enumerate(columns) for n in col}
    for a, b, label in graph.edges:
        if a not in pos or b not in pos:
            continue
        parts += _edge(pos[a], pos[b], label, [
            [pos[n.id] for n in columns[j]] for j in range(column_of.get(a, -1) + 1, column_of.get(b, 0))])
    for col_index, col in enumerate(columns):
        for n in col:
            x0, y0, w, h = pos[n.id]
            kind = n.style or ("inside" if col_index < inside_cols else "outside")
            if any("OUTSIDE" in line for line in n.lines):
                kind = "violation"
            fill, stroke, dash = STYLE[kind]
            dashed = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(f'<g class="node {kind}" data-id="{escape(n.id)}">'
                         f'<rect x="{x0:.0f}" y="{y0:.0f}" width="{w:.0f}" height="{h:.0f}" rx="6" fill="{fill}" '
                         f'stroke="{stroke}" stroke-width="1.5"{dashed}/>'
                         f'{_text(x0 + PAD, y0 + PAD + 11, n.lines)}</g>')
    parts.append("</svg>")
    return "\n".join(parts)
