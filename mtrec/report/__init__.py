"""The run report: `<home>/report.html`, one self-contained page with plots.

collect.py reads a run's home (ML Metadata, artifacts, summary.json, and for a run
that stopped, stopped_run.py's reading of its log) into plain data, whose keys
schema.py declares; page.py, page_training.py and page_evaluation.py (from markup.py's
HTML pieces) and charts.py turn that into HTML with embedded SVG plots.
`mtrec run` writes it at the end of every run; `mtrec report HOME` rebuilds it
without retraining.
"""

from __future__ import annotations

import os
import tempfile

from mtrec.pipeline.output_paths import existing_part, file_in

REPORT_FILE = "report.html"


def write_report(home: str, output: str | None = None) -> str:
    """Build the report of the latest run in `home`; return the file written.

    `output`'s missing parent folders are created, as an --output flag is expected to do;
    a folder (an existing one, or a path ending in a slash) gets `report.html` in it.
    """
    from mtrec.report.collect import collect  # TensorFlow, TFMA: only when a report is built
    from mtrec.report.page import render

    path = report_path(home, output)
    page = render(collect(home))
    # Created only once the page is built, so a home that is no run leaves no empty folders.
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, path)  # a reader never sees half a page
    return path


def report_path(home: str, output: str | None) -> str:
    """The file a report goes to: `output` (report.html in it when it is a folder or
    ends in a slash: pipeline/output_paths.py), else the home's report.html."""
    return file_in(output, REPORT_FILE) if output else os.path.join(home, REPORT_FILE)



def cannot_write(home: str, output: str | None) -> str | None:
    """Why no report can be written where it would go, in words for an `error:` line, or
    None: a file is made and dropped in the nearest existing folder of its path before
    the ~20 s of reading the run (`--output /proc/x.html` failed only after them, naming
    an internal x.html.tmp). A file in the folder's place is output_paths.unwritable's."""
    path = report_path(home, output)
    folder = existing_part(path)
    if not os.path.isdir(folder):
        return None
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        given = f"--output {output}" if output else path
        return f"{given}: cannot create a file in {folder} ({err.strerror or err})"
    return None
