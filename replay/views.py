"""Replay pages: the jobs, one job with its progress, a new replay, one RPC reply's diff."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console import access
from console.views.common import wants_partial
from rabbit.brokers import default_broker
from rabbit.management_http import BrokerError
from replay import jobs, present, selection, workers
from replay.forms import ReplayForm, spec_source
from replay.models import ReplayItem, ReplayJob
from tracer.models import Message

LIST_SIZE = 50
PREVIEW_ROWS = 10


def _page_number(request):
    try:
        return max(1, int(request.GET.get("page", 1)))
    except ValueError:
        return 1


@access.page(access.VIEWER)
@require_GET
def replay_list(request):
    workers.notice_interrupted()
    page = _page_number(request)
    total = ReplayJob.objects.count()
    pages = max(1, (total + LIST_SIZE - 1) // LIST_SIZE)
    page = min(page, pages)
    job_list = list(ReplayJob.objects.all()[(page - 1) * LIST_SIZE : page * LIST_SIZE])
    rows = [
        {
            "job": job,
            "kind": present.status_kind(job.status),
            "progress": present.progress(job),
            "target": jobs.target_words(job),
        }
        for job in job_list
    ]
    context = {
        "rows": rows,
        "active": any(job.is_active for job in job_list),
        "pager": {"page": page, "pages": pages, "count": total},
        "can_operate": access.can_operate(request.user),
    }
    if wants_partial(request):
        return render(request, "replays.html#replay-jobs", context)
    return render(request, "replays.html", context)


def _job(job_id):
    workers.notice_interrupted(ReplayJob.objects.filter(id=job_id))
    return get_object_or_404(ReplayJob, id=job_id)


def _job_context(request, job):
    return {
        "job": job,
        "kind": present.status_kind(job.status),
        "progress": present.progress(job),
        "target": jobs.target_words(job),
        "can_operate": access.can_operate(request.user),
        "confirm_above": settings.WARREN_REPLAY_CONFIRM_ABOVE,
        "headers_shown": present.shown_properties({"headers": job.headers}).get("headers")
        if job.headers is not None
        else None,
    }


@access.page(access.VIEWER)
@require_GET
def replay_detail(request, job_id):
    job = _job(job_id)
    context = _job_context(request, job)
    rows, pager = present.item_rows(job, _page_number(request))
    context.update(rows=rows, pager=pager, report=(job.report or {}).get("rpc"))
    if wants_partial(request):
        return render(request, "replay.html#replay-items", context)
    if job.await_reply and not job.is_finished:
        from replay import rpc

        figures = job.items.values("reply_status", "changed", "latency_ms", "original_latency_ms")
        context["report"] = rpc.regression_report(list(figures))
    return render(request, "replay.html", context)


@access.page(access.VIEWER)
@require_GET
def replay_progress(request, job_id):
    """The progress partial, polled by htmx while the job runs."""
    job = _job(job_id)
    response = render(request, "replay.html#replay-progress", _job_context(request, job))
    if request.GET.get("was") == "active" and job.is_finished:
        # The final report and the items table are on the full page: reload it once.
        response["HX-Refresh"] = "true"
    return response


@access.page(access.VIEWER)
@require_GET
def replay_item(request, job_id, position):
    job = _job(job_id)
    item = ReplayItem.objects.filter(job=job, position=position).first()
    if item is None:
        raise Http404("No such item in this replay.")
    context = _job_context(request, job)
    copy_id = None if job.dry_run else present.captured_copies([item]).get(item.id)
    context.update(
        item=item,
        copy_id=copy_id,
        copy_href=present.message_href(copy_id),
        item_kind=present.status_kind(item.state),
        sent_properties=present.shown_properties(item.properties),
        **present.diff_context(job, item),
    )
    return render(request, "replay_item.html", context)


@access.page(access.OPERATOR)
@require_POST
def replay_cancel(request, job_id):
    job = _job(job_id)
    if jobs.cancel_job(request, job):
        messages.info(request, f"Replay #{job.id} stops before its next message.")
    else:
        messages.warning(request, f"Replay #{job.id} was not running ({job.status}).")
    return redirect("replay", job_id=job.id)


@access.page(access.OPERATOR)
@require_POST
def replay_resume(request, job_id):
    job = _job(job_id)
    try:
        left = jobs.resume_job(request, job, request.POST.get("in_flight", "resend"))
    except jobs.Refusal as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, f"Replay #{job.id} resumes: {left:,} messages left to send.")
    return redirect("replay", job_id=job.id)


@access.page(access.OPERATOR)
@require_POST
def replay_send(request, job_id):
    """Sends for real what a finished dry run showed."""
    dry = _job(job_id)
    try:
        confirm_count = int(request.POST.get("confirm_count") or 0)
    except ValueError:
        confirm_count = 0
    try:
        job = jobs.send_for_real(request, dry, confirm_count)
    except jobs.Refusal as refusal:
        messages.error(request, refusal.message)
        return redirect("replay", job_id=dry.id)
    return redirect("replay", job_id=job.id)


# --- a new replay ---------------------------------------------------------------------


def _choose(request):
    """(source spec, Selection, error words, broker error) from the query string."""
    source = spec_source(request.GET)
    if source is None:
        return None, None, "", None
    try:
        client = None
        if source.dead_letters and source.dead_letters["from"] == "peek":
            client = default_broker().client()
        return source, jobs.choose(source, client), "", None
    except selection.SelectionError as error:
        return source, None, error.message, None
    except BrokerError as error:
        return source, None, "", error


@access.page(access.OPERATOR)
@require_http_methods(["GET", "POST"])
def replay_new(request):
    source, chosen, choose_error, broker_error = _choose(request)
    single = None
    if chosen is not None and chosen.total == 1 and chosen.refs:
        single = Message.objects.filter(id=chosen.refs[0].message_id).first()
    form = None
    status = 200
    if chosen is not None and chosen.total:
        # ?await_reply=1 (the Flow page's link) starts with the RPC comparison ticked.
        initial = {"await_reply": True} if request.GET.get("await_reply") else None
        form = ReplayForm(
            request.POST if request.method == "POST" else None,
            chosen=chosen,
            single=single,
            initial=initial,
        )
        if request.method == "POST":
            if form.is_valid():
                try:
                    job = jobs.create_job(request, form.to_spec(source), chosen=chosen)
                except jobs.Refusal as refusal:
                    form.add_error(None, refusal.message)
                    status = refusal.status
                else:
                    return redirect("replay", job_id=job.id)
            else:
                status = 400
    elif request.method == "POST":
        status = 400
        choose_error = choose_error or "Choose the messages to replay first."
    preview = []
    if chosen is not None and chosen.refs:
        rows = Message.objects.in_bulk(chosen.first_ids(PREVIEW_ROWS))
        preview = [
            {"message": rows[ref.message_id], "href": present.message_href(ref.message_id)}
            for ref in chosen.refs[:PREVIEW_ROWS]
            if ref.message_id in rows
        ]
    context = {
        "source": source,
        "chosen": chosen,
        "choose_error": choose_error,
        "broker_error": broker_error,
        "form": form,
        "single": single,
        "preview": preview,
        "peeked_preview": [_peeked_row(described) for described, _ in chosen.peeked[:20]]
        if chosen
        else [],
        "confirm_above": settings.WARREN_REPLAY_CONFIRM_ABOVE,
        "action": request.get_full_path(),
        "filter_fields": selection.FILTER_FIELDS,
        "query": request.GET,
    }
    return render(request, "replay_new.html", context, status=status)


def _peeked_row(described):
    deaths = ((described.get("properties") or {}).get("headers") or {}).get("x-death") or []
    newest = deaths[0] if deaths and isinstance(deaths[0], dict) else {}
    return {**described, "died_in": newest.get("queue", ""), "reason": newest.get("reason", "")}


def new_replay_url(**params):
    """/replays/new?… for a link from another page (message=, flow=, a filter, dead_letters=)."""
    return reverse("replay_new") + "?" + urlencode(params, doseq=True)
