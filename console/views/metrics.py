"""The metrics page: the API's figures for a period, drawn as bars."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from console.access import console_page
from console.drawing import Bar, bar_chart_svg
from rollback_console.errors import Invalid
from rollbacks.metrics import may_read_metrics, parse_period, rollback_metrics


def _rate_bars(rows: list[dict[str, Any]], key: str) -> list[Bar]:
    return [
        Bar(
            label=str(row[key]),
            value=row["rate"],
            caption=f"{row['rolled_back']} of {row['recorded']} · {row['rate'] * 100:.1f}%",
        )
        for row in rows
    ]


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
            [Bar(label=row["trigger"], value=row["rollbacks"], caption=str(row["rollbacks"])) for row in reasons],
            title="Rollbacks by trigger",
            colour="#6a4bc4",
        ),
    }
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
        },
        status=400 if errors else 200,
    )
