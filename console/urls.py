from django.urls import path

from console.views import actions, batch, metrics, queue, remediation, rollback_list, rollbacks, start

app_name = "console"
urlpatterns = [
    path("", queue.queue, name="queue"),
    path("start/", start.start, name="start"),
    path("inbox/counts/", queue.inbox_counts_fragment, name="inbox-counts"),
    path("rollbacks/", rollback_list.rollback_list, name="rollbacks"),
    path("rollbacks/new/", actions.bulk_rollback, name="bulk"),
    path("rollbacks/decide/", batch.batch_decide, name="batch_decide"),
    path("rollbacks/<int:rollback_id>/", rollbacks.rollback_page, name="rollback"),
    path("rollbacks/<int:rollback_id>/progress/", rollbacks.rollback_progress, name="rollback-progress"),
    path("rollbacks/<int:rollback_id>/signoff/", rollbacks.rollback_sign_off, name="rollback-signoff"),
    path("rollbacks/<int:rollback_id>/confirm-cascade/", rollbacks.rollback_confirm_cascade, name="rollback-confirm"),
    path("rollbacks/<int:rollback_id>/cancel/", rollbacks.rollback_cancel, name="rollback-cancel"),
    path(
        "rollbacks/<int:rollback_id>/steps/<int:step_id>/retry/", rollbacks.rollback_retry_step, name="rollback-retry"
    ),
    path(
        "rollbacks/<int:rollback_id>/steps/<int:step_id>/resolve/",
        rollbacks.rollback_resolve_step,
        name="rollback-resolve",
    ),
    path("actions/", actions.action_search, name="actions"),
    path("actions/<int:action_id>/", actions.action_page, name="action"),
    path("remediation/", remediation.remediation_list, name="remediation"),
    path("remediation/<int:task_id>/done/", remediation.remediation_done, name="remediation-done"),
    path("metrics/", metrics.metrics_page, name="metrics"),
]
