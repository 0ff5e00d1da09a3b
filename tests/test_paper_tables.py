"""Tables and figures fit for papers and web pages: LaTeX that fits the page, HTML that reads
and sorts, one colour per method in every figure."""

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

from kdbench.report.figures import METHOD_STYLES, method_style
from kdbench.report.leaderboard import build_tables
from kdbench.report.publish import publish
from kdbench.report.render import (
    PAGE_ROWS,
    heading,
    latex_escape,
    latex_table,
    to_html,
    to_markdown,
)

STUDENTS = {"mobilenetv3_small_050": (570_000, 1.6e6), "smallcnn": (16_500, 9.7e6), "resnet_tiny": (90_000, 4e6),
            "efficientnet_b0_narrow": (1_200_000, 3e7)}
METHODS = ["scratch", "hinton", "fitnets", "at", "dkd", "e2kd", "medtex", "my_plugin_kd"]


def row(method, student, seed, fraction, acc, dataset="medmnist:breast_mnist", **extra):
    params, flops = STUDENTS.get(student, (11_200_000, 6.6e7))
    return {"kind": "predictive", "dataset": dataset, "teacher": "resnet18", "student": student, "method": method,
            "seed": seed, "fraction": fraction, "explainer": None, "status": "ok", "error": None,
            "accuracy": acc, "auc": acc - 0.01, "f1": acc - 0.1, "params": params, "flops": flops,
            "latency_ms": 1.0 + seed / 10 + len(student) / 7, "train_seconds": 1.0,
            "config_hash": f"{dataset}-{method}-{student}-{seed}-{fraction}", "method_options": {},
            "kdbench_version": "0.1.0", "torch_version": "x", "timm_version": "y", "quantus_version": "z",
            "device": "cpu", "timestamp": "2026-11-21T00:00:00", **extra}


def many_rows(dataset="medmnist:breast_mnist", methods=METHODS):
    """4 students x 8 methods x 2 fractions + the teacher: 65 rows, over two seeds."""
    rng = np.random.default_rng(0)
    out = [row("teacher", "resnet18", s, 1.0, 0.9 - s / 100, dataset) for s in (0, 1)]
    for student in STUDENTS:
        for method in methods:
            for fraction in (0.1, 1.0):
                base = 0.5 + 0.3 * fraction + rng.uniform(-0.1, 0.1)
                out += [row(method, student, s, fraction, base + rng.normal(0, 0.01), dataset) for s in (0, 1)]
    return out


def xai_rows(rows):
    """Explanation rows for every full-data model: 5 explainers, 6 metrics."""
    rng = np.random.default_rng(1)
    out = []
    for r in rows:
        if r["fraction"] != 1.0:
            continue
        for e in ("gradcam", "saliency", "featuremaps", "medtex-mask", "random"):
            out.append(dict(r, kind="explanation", explainer=e, config_hash=r["config_hash"] + e,
                            **{m: rng.uniform(-1, 20) for m in ("faithfulness_correlation", "pixel_flipping",
                                                                "max_sensitivity", "sparseness", "complexity",
                                                                "explain_ms_per_image")}))
    return out


def tables_of(rows, **kw):
    tables, _ = build_tables(rows, **kw)
    return {t.name: t for t in tables}


def latex_parts(tex):
    """(header line, body rows as cell lists) of each tabular or longtable in ``tex``."""
    parts = []
    for chunk in re.split(r"\\begin\{(?:tabular|longtable)\}\{@", tex)[1:]:  # not the headers' [b] tabulars
        chunk = chunk.split("\n\\end{tabular}")[0].split("\n\\end{longtable}")[0]
        lines = [x.strip() for x in chunk.splitlines()]
        head = lines[lines.index(r"\toprule") + 1]
        start = lines.index(r"\endlastfoot") + 1 if r"\endlastfoot" in lines else lines.index(r"\midrule") + 1
        body = [x for x in lines[start:] if " & " in x]
        parts.append((head, [[c.strip().removesuffix(r"\\").strip() for c in x.split(" & ")] for x in body]))
    return parts


def test_a_long_latex_table_has_no_constant_column_a_label_per_part_and_breaks_across_pages():
    t = tables_of(many_rows())["predictive"]
    assert len(t.frame) > PAGE_ROWS
    tex = latex_table(t)
    captions = re.findall(r"\\caption\{(.*?)\}(?:\\label|\n)", tex)
    assert captions and all(r"on medmnist:breast\_mnist (teacher resnet18; mean $\pm$ std over 2 seeds)" in c
                            for c in captions)
    labels = re.findall(r"\\label\{(tab:[a-z0-9-]+)\}", tex)
    assert len(labels) == len(captions) == tex.count(r"\bottomrule") and len(set(labels)) == len(labels)
    assert all(x.startswith("tab:predictive-medmnist-breast-mnist") for x in labels)
    assert r"\begin{longtable}" in tex and r"\endhead" in tex  # longer than a page: it breaks, header repeated
    assert "Dataset" not in tex and "Teacher" not in tex  # constant: said once, in the caption
    for head, body in latex_parts(tex):
        assert "Acc.~$\\uparrow$" in head or "Params" in head
        columns = list(zip(*body))
        assert all(len({c for c in col if c}) > 1 for col in columns), head  # no column repeats one value
    # every metric shown in some part, each once; students are group rows, not a column
    cells = [re.sub(r"\\begin\{tabular\}\[b\]\{@\{\}r@\{\}\}(.*?)\\end\{tabular\}",
                    lambda x: x.group(1).replace("\\\\", " "), c).replace("~", " ")
             for h, _ in latex_parts(tex) for c in h.removesuffix("\\\\").strip().split(" & ")]
    assert sorted(cells) == sorted(["Method"] * len(latex_parts(tex)) +
                                   [latex_escape(heading(t, m)) for m in t.metrics + ["avg_rank"]])
    assert r"\textit{efficientnet\_b0\_narrow}, fraction 0.1" in tex and "my\\_plugin\\_kd &" in tex


def test_latex_escapes_special_characters_and_quotes():
    assert latex_escape("a_b & 50% #1 ~x^2 \\ $5 {y} <z> |w|") == \
        r"a\_b \& 50\% \#1 \textasciitilde{}x\textasciicircum{}2 \textbackslash{} \$5 \{y\} " \
        r"\textless{}z\textgreater{} \textbar{}w\textbar{}"
    assert latex_escape("0.827 ± 0.032 ↑ ↓ – Δ") == r"0.827 $\pm$ 0.032 $\uparrow$ $\downarrow$ -- $\Delta$"
    assert latex_escape('minus `scratch_1` is "good"') == r"minus \texttt{scratch\_1} is ``good''"
    assert latex_escape("é × ≥ ☃").isascii()  # nothing pdflatex would stop at
    tex = latex_table(tables_of(many_rows(dataset="set_1&2"))["predictive"])
    assert r"on set\_1\&2" in tex and "tab:predictive-set-1-2" in tex and "0.1 &" not in tex
    # negative gains (the fixture has some) get a math minus, and no number keeps a bare hyphen
    assert re.search(r"\$-\$0\.\d{3}", tex) and not re.search(r"(?<![\w.$-])-\d", tex)


def test_a_table_over_several_datasets_is_split_per_dataset():
    rows = many_rows("medmnist:a") + many_rows("medmnist:b")
    tex = latex_table(tables_of(rows)["predictive"])
    assert "tab:predictive-medmnist-a" in tex and "tab:predictive-medmnist-b" in tex
    assert "on medmnist:a" in tex and "on medmnist:b" in tex


def test_markdown_has_readable_headers_and_no_constant_columns():
    md = to_markdown(list(tables_of(many_rows()).values()))
    assert "Acc. ↑" in md and "Params ↓" in md and "Avg. rank ↓" in md and "gain_accuracy ↑ |" not in md
    assert "| Dataset" not in md
    assert "*dataset medmnist:breast_mnist · teacher resnet18 · mean ± std over 2 seeds*" in md
    assert "|:--" in md and "--:|" in md  # text left, numbers right


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex (TeX Live); CI has none")
@pytest.mark.parametrize("sort", [None, "accuracy"])
def test_the_latex_compiles_with_nothing_overfull(tmp_path, sort):
    rows = many_rows()
    rows += xai_rows(rows)
    publish(rows, tmp_path, formats=["latex"], sort=sort, plots=False)
    for _ in range(2):  # longtable settles its widths on the second run
        done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                               "leaderboard.standalone.tex"], cwd=tmp_path, capture_output=True, text=True,
                              check=False, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:]
    log = (tmp_path / "leaderboard.standalone.log").read_text(errors="replace")
    assert "Overfull \\hbox" not in log and "Float too large" not in log
    for name in ("predictive", "explanations"):  # each fragment compiles on its own too
        (tmp_path / f"one_{name}.tex").write_text((tmp_path / "leaderboard.standalone.tex").read_text()
                                                  .replace("leaderboard.tex", f"leaderboard_{name}.tex"))
        done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"one_{name}.tex"],
                              cwd=tmp_path, capture_output=True, text=True, check=False, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:]


class _Html(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells, self.imgs, self.scripts, self.style, self._in = [], [], [], "", None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("td", "th"):
            self.cells.append((tag, attrs.get("class"), attrs))
        if tag == "img":
            self.imgs.append(attrs["src"])
        self._in = tag

    def handle_data(self, data):
        if self._in == "script":
            self.scripts.append(data)
        if self._in == "style":
            self.style += data
        if self._in in ("td", "th") and self.cells:
            tag, cls, attrs = self.cells[-1]
            self.cells[-1] = (tag, cls, dict(attrs, text=attrs.get("text", "") + data))


def test_html_aligns_text_left_numbers_right_never_wraps_sorts_and_shows_the_plots(tmp_path):
    rows = many_rows()
    publish(rows, tmp_path)
    page = (tmp_path / "leaderboard.html").read_text()
    p = _Html()
    p.feed(page)
    assert {cls for _, cls, _ in p.cells} == {"txt", "num"}
    assert all(cls == "num" for _, cls, a in p.cells if "±" in a.get("text", ""))
    assert all(cls == "txt" for _, cls, a in p.cells if a.get("text") in METHODS)
    assert re.search(r"white-space:\s*nowrap", p.style) and re.search(r"\.num\{text-align:right", p.style)
    assert any('addEventListener("click"' in s and ".sort(" in s for s in p.scripts)
    assert all(a["data-v"] == "" or float(a["data-v"]) == float(a["data-v"]) for t, _, a in p.cells if t == "td"
               and "data-v" in a)
    assert "http://" not in page and "https://" not in page and "<link" not in page  # no CDN, no network
    plots = ["tradeoff_medmnist_breast_mnist.png", "fractions_medmnist_breast_mnist.png"]
    assert all(x in p.imgs and (tmp_path / x).is_file() for x in plots)
    assert 'href="tradeoff_medmnist_breast_mnist.svg"' in page
    assert "Acc. ↑" in page and "mean ± std over 2 seeds" in page
    assert ">medmnist:breast_mnist<" not in page  # the constant dataset column is in the caption line


def test_html_without_plots_has_no_broken_images():
    page = to_html(list(tables_of(many_rows()).values()))
    assert "<img" not in page and "<script>" in page


def _legend_colours(fig):
    out = {}
    for legend in fig.legends:
        for handle, text in zip(legend.legend_handles, legend.get_texts()):
            if hasattr(handle, "get_color"):
                out[text.get_text()] = (handle.get_color(), handle.get_marker())
    return out


def test_a_method_keeps_its_colour_and_marker_across_method_lists_and_figures(tmp_path, monkeypatch):
    from kdbench.report import plots

    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or [])
    for methods in (["scratch", "hinton", "my_plugin_kd"], ["scratch", "dkd", "at", "my_plugin_kd", "hinton", "zz"]):
        pred = tables_of(many_rows(methods=methods))["predictive"]
        plots.tradeoff_plots(pred, tmp_path)
        plots.fraction_plots(pred, tmp_path)
    colours = [_legend_colours(fig) for fig in drawn]
    assert len(colours) == 4
    for method in ("scratch", "hinton", "my_plugin_kd"):
        assert len({c[method] for c in colours}) == 1, method
        assert colours[0][method] == (method_style(method)["color"], method_style(method)["marker"])
    assert colours[0]["hinton"] == METHOD_STYLES["hinton"]
    assert method_style("my_plugin_kd")["color"] not in {c for c, _ in METHOD_STYLES.values()}


def test_a_plugin_method_gets_the_same_colour_in_every_process():
    code = "from kdbench.report.figures import method_style; print(method_style('my_plugin_kd'))"
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env=dict(os.environ, PYTHONHASHSEED=seed)).stdout for seed in ("1", "2")}
    assert seen == {f"{method_style('my_plugin_kd')}\n"}
