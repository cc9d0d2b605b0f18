"""The campaign export as a download: the results side writes the file, we stream it and delete it.
The list kept with the campaign is read again in a memory-limited child, never in the web process."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from dispatcher import campaigns
from dispatcher.errors import InputError
from dispatcher.i18n import N_
from dispatcher.results import campaign_export
from dispatcher.web.context import WebContext

MEDIA = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}


def export_response(ctx: WebContext, campaign_id: int, fmt: str, lang: str | None = None) -> Response:
    """The export as a download; ``lang`` (zh or en), by default the page's language (Chinese for the API
    with xlsx, English with csv: ``campaign_export.language``)."""
    if fmt not in MEDIA:
        raise InputError.say(N_("export format must be xlsx or csv, not %(format)r"), format=fmt)
    folder = Path(tempfile.mkdtemp(prefix="dispatcher-export-"))
    try:
        with ctx.sessions() as session:
            campaigns.get(session, campaign_id)  # 404 for an unknown campaign
            path = folder / f"campaign-{campaign_id}.{fmt}"
            # The stored list is read again in a child (its own sandbox: an export never waits for a
            # reading's slot): a list that is costly to read costs the web process nothing.
            campaign_export.export(session, campaign_id, path, lang, ctx.settings, ctx.list_sandbox.run)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        path,
        media_type=MEDIA[fmt],
        filename=campaign_export.download_name(campaign_id, path, lang),  # 活动12-发送结果.xlsx
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )
