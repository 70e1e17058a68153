"""The admin console's Dashboard tab: totals, each collection's counts, the last jobs and the
models (ui.admin_format writes them), shown again on its refresh button and whenever the tab
is opened; below them the re-index button with its force box (ui.admin_reindex)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app.service import KnowledgeBase
from ui.admin_format import DASHBOARD_COLUMNS, JOB_COLUMNS, MODEL_COLUMNS
from ui.admin_reindex import ReindexPanel, reindex_panel
from ui.admin_view import DashboardView
from ui.i18n import I18N


@dataclass(frozen=True, eq=False)
class DashboardTab:
    tab: gr.Tab
    view: DashboardView
    refresh: gr.Button
    reindex: ReindexPanel

    def wire_refresh(self) -> None:
        self.refresh.click(self.view.show, None, self.view.outputs)
        self.tab.select(self.view.show, None, self.view.outputs)


def dashboard_tab(kb: KnowledgeBase) -> DashboardTab:
    """The tab, built inside the console's gr.Tabs."""
    with gr.Tab(I18N("admin_tab_dashboard"), id="dashboard") as tab:
        totals = gr.Markdown(elem_id="dashboard-totals")
        collections = gr.Dataframe(
            headers=DASHBOARD_COLUMNS,
            interactive=False,
            label=I18N("admin_tab_collections"),
            elem_id="dashboard-collections",
        )
        jobs = gr.Dataframe(
            headers=JOB_COLUMNS, interactive=False, wrap=True, label=I18N("admin_last_jobs"), elem_id="jobs-table"
        )
        models = gr.Dataframe(headers=MODEL_COLUMNS, interactive=False, label=I18N("admin_models"), elem_id="models-table")
        refresh = gr.Button(I18N("admin_refresh_dashboard"), elem_id="dashboard-refresh")
        reindex = reindex_panel(kb)
    return DashboardTab(tab, DashboardView(kb, totals, collections, jobs, models), refresh, reindex)
