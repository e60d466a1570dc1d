"""Server-side SVG charts for the supervisors' dashboard: no script, no CDN (government
intranets block them), readable when printed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

BLUE, GREEN, AMBER, RED, GREY = "#0b5cad", "#2e7d32", "#d08a00", "#d92d20", "#9aa4b2"
FONT = 'font-family="Noto Sans CJK SC, sans-serif"'


def _nice_max(value: int) -> int:
    """A round axis maximum at or above ``value`` (1, 2, 5 × 10^n)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if value <= m * step:
                return max(m * step, 1)
        step *= 10


def trend(days: Sequence[dict[str, Any]], *, width: int = 1040, height: int = 240) -> Markup:
    """Urgent requests per day (bars, left axis) and the share paid within 24 hours (line,
    right axis, 0–100 %)."""
    left, right, top, bottom = 44, 48, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max((d["urgent_cases"] for d in days), default=0))
    slot = plot_w / max(len(days), 1)
    parts = [_frame(width, height, "每日紧急求助件数与 24 小时内发放率")]
    for i in range(5):
        y = top + plot_h * i / 4
        value = top_value * (4 - i) / 4
        parts.append(_line(left, y, left + plot_w, y, "#e5e7eb"))
        parts.append(_text(left - 6, y + 4, f"{value:g}", anchor="end"))
        parts.append(_text(left + plot_w + 6, y + 4, f"{100 * (4 - i) // 4}%", anchor="start"))
    points = []
    label_every = max(1, len(days) // 10)
    for i, day in enumerate(days):
        x = left + slot * i
        h = plot_h * day["urgent_cases"] / top_value
        parts.append(
            f'<rect x="{x + slot * 0.15:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.7:.1f}"'
            f' height="{h:.1f}" fill="{BLUE}" opacity="0.75">'
            f"<title>{day['day']:%m-%d}：{day['urgent_cases']} 件</title></rect>"
        )
        if day["paid_within_24h_pct"] is not None:
            y = top + plot_h * (1 - day["paid_within_24h_pct"] / 100)
            points.append(f"{x + slot / 2:.1f},{y:.1f}")
        if i % label_every == 0:
            parts.append(_text(x + slot / 2, height - bottom + 16, f"{day['day']:%m-%d}"))
    if points:
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{GREEN}" stroke-width="2"/>'
        )
        parts.extend(
            f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="2.5" fill="{GREEN}"/>'
            for p in points
        )
    parts.append(_legend(left, height - 8, [(BLUE, "紧急求助（件）"), (GREEN, "24 小时内发放率")]))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def townships(rows: Sequence[dict[str, Any]], *, width: int = 1040) -> Markup:
    """Per township: urgent requests split into paid within 24 h, paid late, unpaid."""
    left, right, top, row_h = 120, 60, 12, 24
    height = top + row_h * len(rows) + 44
    plot_w = width - left - right
    top_value = _nice_max(max((r["urgent_cases"] for r in rows), default=0))
    parts = [_frame(width, height, "各乡镇（街道）紧急求助与发放情况")]
    for i, row in enumerate(rows):
        y = top + row_h * i
        on_time = row["paid_within_24h"]
        late = row["paid_late"]
        other = row["urgent_cases"] - on_time - late
        name_colour = RED if not row.get("on_duty_tonight", True) else "#1f2328"
        parts.append(_text(left - 8, y + 16, row["township_name"], anchor="end", fill=name_colour))
        x = float(left)
        for value, colour, label in (
            (on_time, GREEN, "24 小时内发放"),
            (late, AMBER, "超时发放"),
            (other, GREY, "未发放"),
        ):
            w = plot_w * value / top_value
            if w:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}"'
                    f' fill="{colour}"><title>{escape(row["township_name"])} {label}：'
                    f"{value} 件</title></rect>"
                )
            x += w
        parts.append(_text(x + 6, y + 16, str(row["urgent_cases"]), anchor="start"))
    parts.append(
        _legend(
            left,
            height - 10,
            [
                (GREEN, "24 小时内发放"),
                (AMBER, "超时发放"),
                (GREY, "未发放"),
                (RED, "今晚无人值班"),
            ],
        )
    )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def _frame(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
        f' width="100%" role="img" aria-label="{escape(title)}" class="chart" {FONT}'
        f' font-size="12"><title>{escape(title)}</title>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, colour: str) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}"/>'


def _text(x: float, y: float, text: str, *, anchor: str = "middle", fill: str = "#444") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}">{escape(text)}</text>'
    )


def _legend(x: float, y: float, items: list[tuple[str, str]]) -> str:
    parts = []
    for colour, label in items:
        parts.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{colour}"/>')
        parts.append(_text(x + 16, y, label, anchor="start"))
        x += 30 + 13 * len(label)
    return "".join(parts)
