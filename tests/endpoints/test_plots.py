"""The report's figures: drawn in parallel worker processes, they are the same PNGs as one by one."""

from __future__ import annotations

import base64

from adapter.endpoints.plots import parameter_figures


def test_parallel_figures_equal_sequential_ones(fixture_run) -> None:
    result = fixture_run.result
    params = [p.id for p in result.analysis.study.parameters][:4]
    one_by_one = parameter_figures(result.analysis, result.summary, params, workers=1)
    side_by_side = parameter_figures(result.analysis, result.summary, params, workers=2)
    assert list(side_by_side) == params
    assert side_by_side == one_by_one
    for png in side_by_side.values():
        assert base64.b64decode(png).startswith(b"\x89PNG\r\n\x1a\n")
