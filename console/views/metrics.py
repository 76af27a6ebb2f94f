"""The metrics page: the API's figures for a period, drawn as bars, weekly columns and sparklines, each with the
figures as a table beside it."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from console.access import console_page
from console.drawing import Bar, Series, bar_chart_svg, sparkline_svg, weekly_columns_svg
from policies.labels import label
from rollback_console.errors import Invalid
from rollbacks.metrics import RUBBER_STAMP_MIN_DECISIONS, may_read_metrics, parse_period, rollback_metrics


def _rate_bars(rows: list[dict[str, Any]], key: str) -> list[Bar]:
    return [
        Bar(
            label=str(row[key]),
            value=row["rate"],
            caption=f"{row['rolled_back']} of {row['recorded']} · {row['rate'] * 100:.1f}%",
        )
        for row in rows
    ]


def _self_flag_bars(rows: list[dict[str, Any]]) -> list[Bar]:
    return [
        Bar(
            label=row["reviewer"],
            value=row["share"],
            caption=f"{row['self_flagged']} of {row['approvals']} · {row['share'] * 100:.1f}%",
        )
        for row in rows
    ]


def _reject_bars(rows: list[dict[str, Any]]) -> list[Bar]:
    return [
        Bar(
            label=row["signer"] + (" ⚑" if row["possible_rubber_stamp"] else ""),
            value=row["reject_rate"],
            caption=f"{row['rejections']} of {row['decisions']} · {row['reject_rate'] * 100:.1f}%",
        )
        for row in rows
    ]


def _people_charts(figures: dict[str, Any]) -> dict[str, Any]:
    for rows in (
        figures["time_to_decision"],
        figures["waiting"]["by_trigger"],
        figures["windows_closed_while_waiting"]["by_trigger"],
        *(signer["by_trigger"] for signer in figures["signer_decisions"]),
    ):
        for row in rows:
            row["label"] = label(row["trigger"])
    trend = figures["weekly_rollbacks_by_trigger"]
    reviewers = figures["reviewer_self_flags"]
    for row in reviewers:
        row["sparkline"] = sparkline_svg(
            [week["share"] for week in row["weekly"]],
            label=f"Share of {row['reviewer']}'s approvals self-flagged, week by week",
        )
    return {
        "weekly_trend": weekly_columns_svg(
            trend["weeks"],
            [Series(label=label(row["trigger"]), values=row["counts"]) for row in trend["triggers"]],
            title="Rollbacks filed per week, by trigger",
        ),
        "trend_rows": [
            {"week": week, "counts": [row["counts"][index] for row in trend["triggers"]]}
            for index, week in enumerate(trend["weeks"])
            if any(row["counts"][index] for row in trend["triggers"])
        ],
        "trend_triggers": [label(row["trigger"]) for row in trend["triggers"]],
        "self_flags": bar_chart_svg(
            _self_flag_bars(reviewers), title="Share of own approvals flagged as reviewer error", colour="#b42318"
        ),
        "rejections": bar_chart_svg(
            _reject_bars(figures["signer_decisions"]), title="How often each signer rejects", maximum=1.0
        ),
    }


@require_GET
@console_page(may_read_metrics, reason="Metrics are for auditors and for people who sign off rollbacks.")
def metrics_page(request: HttpRequest) -> HttpResponse:
    since, until = request.GET.get("since") or None, request.GET.get("until") or None
    errors: dict[str, Any] = {}
    try:
        period = parse_period(since, until)
    except Invalid as exc:
        errors = exc.errors
        period = parse_period(None, None)
    figures = rollback_metrics(period)
    rates = figures["rollback_rate"]
    reasons = figures["reasons_by_trigger"]
    charts = {
        "by_action_type": bar_chart_svg(
            _rate_bars(rates["by_action_type"], "action_type"), title="Rollback rate by action type", maximum=1.0
        ),
        "by_approver": bar_chart_svg(
            _rate_bars(rates["by_approver"], "approved_by"), title="Rollback rate by approver", maximum=1.0
        ),
        "by_trigger": bar_chart_svg(
            [
                Bar(label=label(row["trigger"]), value=row["rollbacks"], caption=str(row["rollbacks"]))
                for row in reasons
            ],
            title="Rollbacks by trigger",
            colour="#6a4bc4",
        ),
    }
    charts.update(_people_charts(figures))
    return render(
        request,
        "console/metrics.html",
        {
            "figures": figures,
            "period": period,
            "charts": charts,
            "errors": errors,
            "since": since or period.since.date().isoformat(),
            "until": until or "",
            "rubber_stamp_min_decisions": RUBBER_STAMP_MIN_DECISIONS,
        },
        status=400 if errors else 200,
    )
