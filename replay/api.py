"""Replay API (docs/architecture.md): POST /api/replays, GET /api/replays/<id>, cancel, resume."""

import json

from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from console import access
from console.models import AuditEntry
from replay import jobs, present, spec, workers
from replay.models import ReplayJob


def _body(request):
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None


@access.api(access.OPERATOR)
@require_POST
def replays_create(request):
    data = _body(request)
    try:
        asked = spec.from_api(data)
    except spec.SpecError as error:
        AuditEntry.record(request, "replay", AuditEntry.FAILED, detail=str(error))
        return access.api_error(400, str(error))
    try:
        job = jobs.create_job(request, asked)
    except jobs.Refusal as refusal:
        return JsonResponse({"error": refusal.message, **refusal.extra}, status=refusal.status)
    answer = {
        "id": job.id,
        "status": job.api_status,
        "total": job.total,
        "url": reverse("api_replay", args=[job.id]),
        "page": reverse("replay", args=[job.id]),
    }
    return JsonResponse(answer, status=202)


def _job(job_id):
    workers.notice_interrupted(ReplayJob.objects.filter(id=job_id))
    return get_object_or_404(ReplayJob, id=job_id)


@access.api(access.VIEWER)
@require_GET
def replay_status(request, job_id):
    return JsonResponse(present.job_api(_job(job_id)))


@access.api(access.OPERATOR)
@require_POST
def replay_cancel(request, job_id):
    job = _job(job_id)
    if not jobs.cancel_job(request, job):
        return access.api_error(409, f"Replay #{job.id} is not running (it is {job.status}).")
    return JsonResponse(present.job_api(job), status=202)


@access.api(access.OPERATOR)
@require_POST
def replay_resume(request, job_id):
    job = _job(job_id)
    data = _body(request) or {}
    in_flight = data.get("in_flight", "resend") if isinstance(data, dict) else "resend"
    try:
        jobs.resume_job(request, job, in_flight)
    except jobs.Refusal as refusal:
        return access.api_error(refusal.status, refusal.message)
    return JsonResponse(present.job_api(job), status=202)
