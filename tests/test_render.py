"""The leaderboard renderer: Markdown and a self-contained HTML page from result records.

The HTML checks that need the page's script run it in headless Chromium and read the DOM
it dumps; the rest parse the written files.
"""

from __future__ import annotations

import base64
import hashlib
import html.parser
import json
import re
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from zoo_core.errors import ResultsFileError
from zoo_core.evaluation.render import render_leaderboard

EVIL = '"><script>alert(1)</script> | evil'
EVIL_ERROR = "timed out after 600 s: <script>alert(1)</script> | x"
METRICS = ["fid", "kid", "precision", "recall"]
LOWER = {"fid": True, "kid": True, "precision": False, "recall": False}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def protocol(name="fashion-fid-10k", metrics=METRICS, **options):
    spec = {"name": name, "modality": "image", "dataset": "fashion-mnist", "split": "test"}
    spec["n_samples"] = 10000
    spec["metrics"] = list(metrics)
    if options:
        spec["sample_options"] = {"diffusion": options}  # keyed by family, as protocols are
    return spec


BASE = protocol(sampler="ddim", steps=50)
OLD = protocol()  # an earlier revision of the same protocol name: another hash
FD = protocol("fashion-fd-fashionnet", ["fd", "precision"])
HASHES = {"base": sha("base"), "old": sha("old"), "fd": sha("fd")}


def record(model, spec, protocol_hash, metrics=None, **fields):
    """A complete record; ``fields`` override or (set to ``...``) drop its keys."""
    rec = {
        "format": 1,
        "model": model,
        "family": "diffusion",
        "weights_sha256": {"model.safetensors": sha(model)},
        "weights_hash": sha("w" + model),
        "versions": {"zoo-core": "0.1.0", "zoo-diffusion": "0.1.0"},
        "protocol": spec,
        "protocol_name": spec["name"],
        "protocol_hash": protocol_hash,
        "variant": None,
        "status": "ok",
        "error": None,
        "metrics": metrics or {},
        "invalid": {},
        "lower_is_better": {m: LOWER.get(m, True) for m in spec["metrics"]},
        "speed": {"samples_per_s": 100.0, "latency_s": 1.0, "nfe": 1, "batch_size": 256},
        "n_samples": 10000,
        "seed": 0,
        "environment": {"torch": "2.4.1", "python": "3.11.2", "device": "cuda",
                        "device_name": "NVIDIA H100", "cuda": "12.4", "world_size": 1},
        "reported": {},
        "time": "2026-11-25T16:00:00Z",
        "duration_s": 123.4,
    }  # fmt: skip
    rec.update(fields)
    return {k: v for k, v in rec.items() if v is not ...}


def sweep_record(sampler, steps, fid, **fields):
    spec = protocol(sampler=sampler, steps=steps)
    metrics = {"fid": fid, "kid": 0.01, "precision": 0.7, "recall": 0.5}
    speed = {"samples_per_s": 500.0 / steps, "nfe": steps}
    return record(
        "ddpm-fashion", spec, sha(f"{sampler}-{steps}"), metrics,
        variant=f"{sampler}-{steps}", speed=speed, **fields,
    )  # fmt: skip


def make_records():
    base = [
        record(
            "ddpm-fashion", BASE, HASHES["base"],
            {"fid": 12.31, "kid": 0.0102, "kid_std": 0.0004, "precision": 0.71, "recall": 0.55},
            speed={"samples_per_s": 10.2, "latency_s": 1.9, "nfe": 50, "batch_size": 256},
            reported={"fid": 3.17, "inception_score": 9.46},
        ),
        record(
            "dcgan-fashion", BASE, HASHES["base"],
            {"fid": 25.5, "kid": 0.021, "precision": 0.62, "recall": 0.31},
            family="gan", invalid={"recall": "the k-NN radius is degenerate"},
            speed={"samples_per_s": 5123.4, "nfe": 1},
            environment={"device": "cpu"},
        ),
        record(
            "vae-fashion", BASE, HASHES["base"],
            {"fid": 8.07, "kid": 0.005, "precision": 0.5, "recall": 0.6},
            family="vae", invalid={"fid": "12 of 10000 samples were NaN or Inf"},
            speed={"samples_per_s": 812.5, "nfe": 1},
        ),
        record(EVIL, BASE, HASHES["base"], metrics=..., status="failed", error=EVIL_ERROR,
               speed=..., invalid=...),
        # a better FID under another hash of the same protocol name must not outrank anyone
        record("ddpm-fashion", OLD, HASHES["old"], {"fid": 11.0, "kid": 0.009},
               time="2026-10-01T00:00:00Z"),
        # an older record: no lower_is_better (fd is unknown: lower), speed or environment
        record("ddpm-fashion", FD, HASHES["fd"], {"fd": 1.5, "precision": 0.8},
               lower_is_better=..., speed=..., environment=..., versions=...),
        record("vae-fashion", FD, HASHES["fd"], {"fd": 3.2, "precision": 0.4}),
        record("dcgan-fashion", FD, HASHES["fd"], {"fd": 3.2, "precision": 0.6}),
    ]  # fmt: skip
    sweep = [
        sweep_record("ddim", 10, 30.0),
        sweep_record("ddim", 20, 18.5),
        sweep_record("ddim", 100, 11.9),
        sweep_record("dpm_solver", 10, 14.2),
        sweep_record("dpm_solver", 20, 12.8),
        sweep_record("dpm_solver", 50, 12.1),
        sweep_record("dpm_solver", 5, None, status="failed", error="non-finite samples"),
    ]
    return base + sweep


W = sha("wddpm-fashion")[:12], sha("wdcgan-fashion")[:12], sha("wvae-fashion")[:12]
H100 = "cuda (NVIDIA H100)"
HEADER_BASE = ["rank", "model", "fid ↓", "fid (paper)", "kid ↓", "precision ↑", "recall ↑"]
HEADER_BASE += ["samples/s", "NFE", "device", "weights", "note"]
# Each row as the Markdown shows it (the HTML shows the same text, unescaped, unstruck).
ROWS_BASE = [
    ["1", "ddpm-fashion", "12.31", "3.17", "0.0102 ± 0.0004", "0.71", "0.55", "10.2", "50",
     H100, W[0], ""],
    ["2", "dcgan-fashion", "25.5", "—", "0.021", "0.62", "~~0.31~~ ⚠", "5123", "1", "cpu",
     W[1], "recall invalid: the k-NN radius is degenerate"],
    ["—", "vae-fashion", "~~8.07~~ ⚠", "—", "0.005", "0.5", "0.6", "812.5", "1", H100, W[2],
     "fid invalid: 12 of 10000 samples were NaN or Inf"],
    ["—", r'"&gt;&lt;script&gt;alert(1)&lt;/script&gt; \| evil', "—", "—", "—", "—", "—", "—", "—",
     H100, sha("w" + EVIL)[:12],
     r"failed: timed out after 600 s: &lt;script&gt;alert(1)&lt;/script&gt; \| x"],
]  # fmt: skip
HEADER_FD = ["rank", "model", "fd ↓", "precision ↑", "samples/s", "NFE", "device", "weights"]
ROWS_FD = [
    ["1", "ddpm-fashion", "1.5", "0.8", "—", "—", "—", W[0]],
    ["2", "dcgan-fashion", "3.2", "0.6", "100", "1", H100, W[1]],
    ["2", "vae-fashion", "3.2", "0.4", "100", "1", H100, W[2]],
]


def png(width=4, height=3) -> bytes:
    """A small valid greyscale PNG, written by hand."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes(range(width)) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def board(tmp_path):
    """The leaderboard of :func:`make_records`, with one grid outside and one inside out_dir."""
    out = tmp_path / "board"
    (out / "samples").mkdir(parents=True)
    outside = tmp_path / "elsewhere" / "ddpm grid.png"
    outside.parent.mkdir()
    outside.write_bytes(png(4, 3))
    inside = out / "samples" / "dcgan.png"
    inside.write_bytes(png(2, 2))
    grids = {"ddpm-fashion": outside, "dcgan-fashion": inside}
    md_path, html_path = render_leaderboard(make_records(), out, grids=grids)
    return out, md_path, html_path, grids


# ---------------------------------------------------------------------------------------------
# Markdown


def markdown_tables(text: str) -> dict[str, list[list[str]]]:
    """``### title`` -> the table's rows (header first), cells split on unescaped pipes."""
    tables, title = {}, None
    for line in text.splitlines():
        if line.startswith("### "):
            title = line[4:]
            tables[title] = []
        elif line.startswith("|") and title is not None:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(re.fullmatch(r"-+:?", c) for c in cells):
                tables[title].append(cells)
    return tables


def test_markdown_tables_hold_the_records_ranked(board):
    out, md_path, _, _ = board
    assert md_path == out / "leaderboard.md"
    tables = markdown_tables(md_path.read_text())
    base = tables[f"fashion-fid-10k · {HASHES['base'][:12]}"]
    assert base == [HEADER_BASE, *ROWS_BASE]
    # the same protocol name under another hash: its own table, its own ranking
    old = tables[f"fashion-fid-10k · {HASHES['old'][:12]}"]
    assert [row[:3] for row in old] == [["rank", "model", "fid ↓"], ["1", "ddpm-fashion", "11"]]
    assert tables[f"fashion-fd-fashionnet · {HASHES['fd'][:12]}"] == [HEADER_FD, *ROWS_FD]
    # each sweep setting has a table of its own, never mixed into the base one
    sweep = tables[rf"fashion-fid-10k · dpm\_solver-5 · {sha('dpm_solver-5')[:12]}"]
    assert sweep[1][0] == "—" and sweep[1][-1] == "failed: non-finite samples"
    assert len(tables) == 3 + 7
    for rows in tables.values():
        assert len({len(row) for row in rows}) == 1  # no pipe broke a row


def test_markdown_provenance_and_grid_links(board):
    out, md_path, _, grids = board
    text = md_path.read_text()
    provenance = [line for line in text.splitlines() if line.startswith("<sub>protocol sha256")]
    assert len(provenance) == 10
    base = next(line for line in provenance if HASHES["base"] in line)
    for part in ("zoo-core 0.1.0", "zoo-diffusion 0.1.0", "torch 2.4.1", "python 3.11.2"):
        assert part in base
    assert "sampler=ddim, steps=50" in base
    # the grid outside out_dir is copied in, the one inside is linked where it is
    assert "![samples of ddpm-fashion](grids/ddpm-fashion.png)" in text
    assert "![samples of dcgan-fashion](samples/dcgan.png)" in text
    assert (out / "grids" / "ddpm-fashion.png").read_bytes() == grids["ddpm-fashion"].read_bytes()
    assert not (out / "grids" / "dcgan-fashion.png").exists()


def test_record_format_is_checked(tmp_path):
    good = make_records()[0]
    for bad in ({**good, "format": 2}, {k: v for k, v in good.items() if k != "format"}):
        with pytest.raises(ResultsFileError, match="format"):
            render_leaderboard([good, bad], tmp_path)
    with pytest.raises(ResultsFileError, match="protocol_hash"):
        render_leaderboard([{**good, "protocol_hash": None}], tmp_path)
    assert not (tmp_path / "index.html").exists()


def test_a_rerun_replaces_the_earlier_record_and_no_records_render(tmp_path):
    first = record("ddpm-fashion", BASE, HASHES["base"], {"fid": 99.0})
    again = record("ddpm-fashion", BASE, HASHES["base"], {"fid": 12.5})
    md_path, html_path = render_leaderboard([first, again], tmp_path)
    (rows,) = markdown_tables(md_path.read_text()).values()
    assert [row[2] for row in rows[1:]] == ["12.5"]
    md_path, html_path = render_leaderboard([], tmp_path / "empty")
    assert "No results yet" in md_path.read_text() and "No results yet" in html_path.read_text()


# ---------------------------------------------------------------------------------------------
# HTML, parsed from the file


class Node:
    def __init__(self, tag, attrs, parent=None):
        self.tag, self.attrs, self.parent, self.children = tag, dict(attrs), parent, []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def find_all(self, tag=None, **attrs):
        for child in self.children:
            if isinstance(child, Node):
                if (tag is None or child.tag == tag) and all(
                    child.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items()
                ):
                    yield child
                yield from child.find_all(tag, **attrs)

    def find(self, tag=None, **attrs):
        return next(self.find_all(tag, **attrs))


class TreeBuilder(html.parser.HTMLParser):
    VOID = {"meta", "img", "br", "hr", "input", "link", "source", "wbr", "area", "base", "col"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.node = Node("#root", {})

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.node)
        self.node.children.append(node)
        if tag not in self.VOID:
            self.node = node

    def handle_startendtag(self, tag, attrs):
        self.node.children.append(Node(tag, attrs, self.node))

    def handle_endtag(self, tag):
        node = self.node
        while node.parent is not None and node.tag != tag:
            node = node.parent
        if node.parent is not None:
            self.node = node.parent

    def handle_data(self, data):
        self.node.children.append(data)


def parse(text: str) -> Node:
    builder = TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def board_table(dom: Node, protocol_hash: str) -> Node:
    return dom.find("section", data_protocol_hash=protocol_hash).find("table")


def table_text(table: Node) -> list[list[str]]:
    header = [th.text() for th in table.find("thead").find_all("th")]
    rows = [[td.text() for td in tr.find_all("td")] for tr in table.find("tbody").find_all("tr")]
    return [header, *rows]


def as_html_text(rows: list[list[str]]) -> list[list[str]]:
    """The Markdown rows of the expectations, as the page's text shows them."""
    unmd = {"~~": "", " ⚠": "", "\\|": "|", "&lt;": "<", "&gt;": ">"}
    return [[_replace_all(cell, unmd) for cell in row] for row in rows]


def _replace_all(text, replacements):
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text


def test_html_tables_match_the_records_and_escape_them(board):
    _, _, html_path, _ = board
    source = html_path.read_text()
    dom = parse(source)
    table = board_table(dom, HASHES["base"])
    assert table_text(table) == as_html_text([HEADER_BASE, *ROWS_BASE])
    # the invalid values are struck and carry their reason
    vae = table.find("tr", data_model="vae-fashion")
    struck = [td for td in vae.find_all("td") if "invalid" in td.attrs.get("class", "")]
    assert [td.find("s").text() for td in struck] == ["8.07"]
    assert struck[0].attrs["title"] == "invalid: 12 of 10000 samples were NaN or Inf"
    assert table_text(board_table(dom, HASHES["fd"])) == as_html_text([HEADER_FD, *ROWS_FD])
    # untrusted text stays text: only the page's own two scripts exist
    assert "<script>alert" not in source
    assert [s.attrs.get("type") for s in dom.find_all("script")] == ["application/json", None]
    assert next(dom.find("tr", data_model=EVIL).find_all("td")).text() == "—"  # unranked
    # the embedded records round-trip, the hostile ones included
    embedded = json.loads(dom.find("script", id="zoo-records").text())
    assert {r["model"] for r in embedded} >= {EVIL, "ddpm-fashion"}
    assert next(r for r in embedded if r["model"] == EVIL)["error"] == EVIL_ERROR


def test_html_is_self_contained(board):
    _, _, html_path, grids = board
    dom = parse(html_path.read_text())
    links = {"src", "href", "xlink:href", "action", "formaction", "poster", "srcset", "data"}
    for node in dom.find_all():
        assert node.tag not in {"link", "iframe", "object", "embed", "base"}
        for name, value in node.attrs.items():
            if name in links:
                assert not re.match(r"\s*(https?:)?//", value or ""), (node.tag, name, value)
    assert "url(" not in dom.find("style").text()
    csp = dom.find("meta", http_equiv="Content-Security-Policy").attrs["content"]
    assert "default-src 'none'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1]
    images = {
        fig.attrs["data-model"]: fig.find("img")
        for fig in dom.find_all("figure", **{"class": "grid"})
    }
    assert set(images) == set(grids)
    for model, img in images.items():
        prefix = "data:image/png;base64,"
        assert img.attrs["src"].startswith(prefix)
        assert base64.b64decode(img.attrs["src"][len(prefix) :]) == grids[model].read_bytes()


def polyline_points(node: Node) -> list[tuple[float, float]]:
    pairs = node.attrs["points"].split()
    return [tuple(float(v) for v in pair.split(",")) for pair in pairs]


def test_nfe_chart_has_one_curve_per_model_and_sampler(board):
    _, _, html_path, _ = board
    dom = parse(html_path.read_text())
    (chart,) = dom.find_all("svg", data_chart="nfe")
    curves = {
        (line.attrs["data-model"], line.attrs["data-sampler"]): polyline_points(line)
        for line in chart.find_all("polyline")
    }
    # ddim: the base protocol (50 steps) and 10, 20, 100; dpm_solver: 10, 20, 50 (5 failed)
    assert {key: len(points) for key, points in curves.items()} == {
        ("ddpm-fashion", "ddim"): 4,
        ("ddpm-fashion", "dpm_solver"): 3,
    }
    for points in curves.values():  # x (log NFE) increases along each curve
        assert [x for x, _ in points] == sorted(x for x, _ in points)
    # y is the FID: lower FID is drawn lower on the chart (larger SVG y)
    ddim = curves[("ddpm-fashion", "ddim")]  # fid 30, 18.5, 12.31, 11.9 at NFE 10, 20, 50, 100
    fids = [30.0, 18.5, 12.31, 11.9]
    ys = [y for _, y in ddim]  # SVG y grows downwards: the falling FID curve descends
    assert ys == sorted(ys)
    scale = [(ys[i + 1] - ys[i]) / (fids[i] - fids[i + 1]) for i in range(3)]
    assert max(scale) - min(scale) < 0.05 * max(scale)  # a linear y axis
    legend = [g.text() for g in chart.find_all("g", **{"class": "legend"})]
    assert legend == ["ddpm-fashion · ddim", "ddpm-fashion · dpm_solver"]
    assert len([t for t in chart.find_all("text") if "tick" in t.attrs.get("class", "")]) >= 4


def test_speed_scatter_has_one_point_per_valid_model(board):
    _, _, html_path, _ = board
    dom = parse(html_path.read_text())
    section = dom.find("section", data_protocol_hash=HASHES["base"])
    (scatter,) = section.find_all("svg", data_chart="scatter")
    points = {g.attrs["data-model"]: g for g in scatter.find_all("g", **{"class": "series"})}
    assert set(points) == {"ddpm-fashion", "dcgan-fashion"}  # invalid and failed rows left out
    x = {m: float(g.find("circle").attrs["cx"]) for m, g in points.items()}
    assert x["dcgan-fashion"] > x["ddpm-fashion"]  # 5123 samples/s right of 10.2
    assert points["ddpm-fashion"].find("text").text() == "ddpm-fashion"


def test_hostile_text_renders_as_text_in_charts_and_attributes(tmp_path):
    reason = '"><script>alert(2)</script>'
    recs = [
        record(EVIL, BASE, HASHES["base"], {"fid": 5.0, "kid": 0.1}, invalid={"kid": reason}),
        record("ddpm-fashion", BASE, HASHES["base"], {"fid": 6.0}),
    ]
    grid = tmp_path / "grid.png"
    grid.write_bytes(png())
    md_path, html_path = render_leaderboard(recs, tmp_path / "out", grids={EVIL: grid})
    dom = parse(html_path.read_text())
    labels = [t.text() for t in dom.find("svg", data_chart="scatter").find_all("text")]
    assert EVIL in labels
    assert dom.find("g", data_model=EVIL).find("circle")
    struck = next(td for td in dom.find_all("td") if "invalid" in td.attrs.get("class", ""))
    assert struck.attrs["title"] == f"invalid: {reason}"
    assert dom.find("figure", data_model=EVIL).find("figcaption").text() == EVIL
    assert len(list(dom.find_all("script"))) == 2
    # the copied grid gets a safe file name; the Markdown shows the id as text
    link = '![samples of "&gt;&lt;script&gt;alert(1)&lt;/script&gt; \\| evil]'
    assert link + "(grids/script_alert_1_script_evil.png)" in md_path.read_text()
    assert (tmp_path / "out" / "grids" / "script_alert_1_script_evil.png").exists()


def test_a_higher_is_better_metric_ranks_descending(tmp_path):
    spec = protocol("fashion-is", ["inception_score", "fid"])
    direction = {"lower_is_better": {"inception_score": False, "fid": True}}
    recs = [
        record("a-model", spec, sha("is"), {"inception_score": 8.1, "fid": 1.0}, **direction),
        record("b-model", spec, sha("is"), {"inception_score": 9.5, "fid": 9.0}, **direction),
        record("c-model", spec, sha("is"), {"inception_score": 9.5}, **direction),
    ]
    md_path, _ = render_leaderboard(recs, tmp_path)
    (rows,) = markdown_tables(md_path.read_text()).values()
    assert rows[0][:4] == ["rank", "model", "inception\\_score ↑", "fid ↓"]
    assert [row[:3] for row in rows[1:]] == [
        ["1", "b-model", "9.5"],
        ["1", "c-model", "9.5"],
        ["3", "a-model", "8.1"],
    ]
    # older records without lower_is_better: the known direction of inception_score applies
    old = [{**r, "lower_is_better": None} for r in recs]
    md_path, _ = render_leaderboard(old, tmp_path / "old")
    (rows,) = markdown_tables(md_path.read_text()).values()
    assert [row[1] for row in rows[1:]] == ["b-model", "c-model", "a-model"]


# ---------------------------------------------------------------------------------------------
# HTML, rendered by headless Chromium


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium is not installed (Debian: apt-get install chromium)")


def dump_dom(url: str, profile: Path) -> str:
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
        "--no-first-run", "--disable-extensions", "--disable-background-networking",
        "--disable-component-update", "--dump-dom", url,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_chromium_renders_the_tables_and_sorts_from_the_fragment(board, tmp_path):
    _, _, html_path, _ = board
    static = parse(html_path.read_text())
    base_id = board_table(static, HASHES["base"]).attrs["id"]
    fd_id = board_table(static, HASHES["fd"]).attrs["id"]
    fragment = f"#sort={base_id}:samples_per_s:desc&sort={fd_id}:model:desc"
    started = time.monotonic()
    dom = parse(dump_dom(html_path.as_uri() + fragment, tmp_path / "profile"))
    print(f"chromium --dump-dom took {time.monotonic() - started:.1f} s")

    base = board_table(dom, HASHES["base"])
    assert base.attrs.get("data-sort") == "samples_per_s:desc"  # the script ran
    # 5123, 812.5, 10.2 samples/s, then the failed row with none, last even in descending order
    expected = as_html_text([HEADER_BASE, *(ROWS_BASE[i] for i in (1, 2, 0, 3))])
    assert table_text(base) == expected
    heads = {th.attrs["data-key"]: th.attrs["aria-sort"] for th in base.find_all("th")}
    assert heads["samples_per_s"] == "descending" and heads["fid"] == "none"
    fd = board_table(dom, HASHES["fd"])
    assert [row[1] for row in table_text(fd)[1:]] == [
        "vae-fashion",
        "ddpm-fashion",
        "dcgan-fashion",
    ]
    # a table the fragment does not name keeps its ranked order
    old = board_table(dom, HASHES["old"])
    assert "data-sort" not in old.attrs
    assert [s.attrs.get("type") for s in dom.find_all("script")] == ["application/json", None]


def test_a_non_finite_speed_or_nfe_stays_off_the_log_axes(tmp_path):
    """An infinite NFE or throughput (a broken timer, a hand-edited record) used to overflow
    the log axis' ticks; such a point is left out of the charts, its row kept."""
    broken = sweep_record("ddim", 20, 18.5)
    broken["speed"] = {"samples_per_s": float("inf"), "nfe": float("inf")}
    recs = [sweep_record("ddim", 10, 30.0), broken, sweep_record("ddim", 100, 11.9)]
    md_path, html_path = render_leaderboard(recs, tmp_path)
    page = html_path.read_text()
    assert page.count('data-sampler="ddim"') >= 1 and "inf" not in page.split("<svg")[1]
    assert len(markdown_tables(md_path.read_text())) == 3
