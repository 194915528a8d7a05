"""Dashboard pages. The overview shows the live portfolio's books as the update path left
them; the full five-page dashboard arrives with its own issue."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from portfolio import selectors


@login_required
def overview(request):
    return render(request, "reporting/overview.html", selectors.overview_context())
