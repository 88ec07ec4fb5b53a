"""The comparison report: one self-contained HTML page a policy reader opens in a browser.

``nrmsim compare`` writes a folder (``comparison.csv``, ``summary.csv``, ``pathways.csv``,
``manifest.json``) and builds ``report.html`` and ``figures/*.png`` from it with
:func:`build_report`; ``nrmsim report DIR`` calls the same function on a saved folder.
Which metrics appear where is set in :mod:`model.report.metrics`.
"""

from model.report.build import ReportInputError, build_report, load_inputs
from model.report.pathways import flows_since, pathway_flows

__all__ = ["ReportInputError", "build_report", "flows_since", "load_inputs", "pathway_flows"]
