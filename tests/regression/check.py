#!/usr/bin/env python3
"""Regression check of compression results against golden tables (tests/regression/golden).

    check.py collect RUNS OUT   reduces the result folders RUNS/<run>/ written by run.sh to the
                                tables kept as golden files: OUT/sweeps.csv, OUT/pareto.csv,
                                OUT/curves.csv, OUT/paths.csv
    check.py compare GOLDEN NEW compares two such folders; exits 1 on any difference
    check.py same-table A B     compares two CSV tables with the same header, row by row, every
                                column by the rules below; exits 1 on any difference

Only what a change of the compression code could change is kept: neurons kept and ranks per
layer, parameter counts, test correct / agree counts (of the 1,000 test images), accuracies,
validation cross-entropies and the rank rule's ratios. Timings and provenance (revision, paths, dates,
ranks, threads) are left out. The descent strategies were first called joint / joint-corrected:
every strategy name (and a path file's name) has "joint" replaced by "descent" on collecting, so
either spelling matches.

Comparison rules: integers and ';'-separated lists of integers exactly; strings exactly; other
numbers to a relative difference of 1e-12 (|a - b| <= 1e-12 max(|a|, |b|)), nan equal to nan.
Accuracies are count / n, so a changed count shows as a relative change >= 1 / n. Exception:
next_ratio_per_layer is |r_k+1,k+1| / |r_11|, already relative to the layer's largest pivot; where
the kept neurons span the activations it is pure rounding (about 1e-16) whose digits carry no
information, so it is compared as |a - b| <= 1e-12 max(|a|, |b|, 1). The gram engine's ratios come
from a pivoted Cholesky of Z^T Z, whose rounding floor is sqrt(m eps) r_11 (about 5e-7 for the
m = 1,000 rows here), so in its runs two entries both below GRAM_NOISE are equal (their digits are
rounding of the Gram products, which differs between BLAS kernel sets).
Rows are matched by their key columns; a row or a table missing on either side is a difference.
"""
import csv
import glob
import math
import os
import re
import sys

REL = 1e-12
# Columns of ratios normalised by |r_11| (see the module comment).
NORMALISED = {"next_ratio_per_layer"}
# The rounding floor of those ratios in runs of the gram engine (sqrt(m eps) for m <= 4,500 rows).
GRAM_NOISE = 1e-6
INT_RE = re.compile(r"^[+-]?\d+$")

# Table -> (key columns, value columns). The golden files hold exactly these columns.
TABLES = {
    "sweeps.csv": (["run", "strategy", "rule", "point"],
                   ["value", "kept_per_layer", "ranks_per_layer", "params", "test_correct", "agree_count",
                    "next_ratio_per_layer"]),
    "pareto.csv": (["strategy", "budget"],
                   ["setting", "params", "kept_per_layer", "ranks_per_layer", "validation_accuracy",
                    "validation_cross_entropy", "test_accuracy", "agreement"]),
    "curves.csv": (["strategy", "index"],
                   ["setting", "params", "kept_per_layer", "validation_cross_entropy", "test_accuracy"]),
    "paths.csv": (["strategy", "step"], ["params", "kept_per_layer", "validation_cross_entropy"]),
}


def rename(name):
    return name.replace("joint", "descent")


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path, table, rows):
    keys, values = TABLES[table]
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(keys + values)
        for r in rows:
            w.writerow([r.get(c, "") for c in keys + values])


def collect(runs, out):
    os.makedirs(out, exist_ok=True)
    sweeps, pareto, curves, paths = [], [], [], []
    for d in sorted(glob.glob(os.path.join(runs, "*"))):
        run = os.path.basename(d)
        if os.path.exists(os.path.join(d, "results.csv")):
            for r in read_rows(os.path.join(d, "results.csv")):
                sweeps.append(dict(r, run=run, strategy=rename(r["strategy"])))
        if os.path.exists(os.path.join(d, "pareto.csv")):
            for r in read_rows(os.path.join(d, "pareto.csv")):
                pareto.append(dict(r, strategy=rename(r["strategy"])))
            seen = {}
            for r in read_rows(os.path.join(d, "pareto-curves.csv")):
                s = rename(r["strategy"])
                seen[s] = seen.get(s, -1) + 1
                curves.append(dict(r, strategy=s, index=str(seen[s])))
            for p in sorted(glob.glob(os.path.join(d, "*-path-*.csv"))):
                s = rename(os.path.basename(p).split("-path-", 1)[1][: -len(".csv")])
                for r in read_rows(p):
                    paths.append(dict(r, strategy=s))
    for name, rows in (("sweeps.csv", sweeps), ("pareto.csv", pareto), ("curves.csv", curves), ("paths.csv", paths)):
        write_rows(os.path.join(out, name), name, rows)
        print(f"check: {len(rows)} rows in {os.path.join(out, name)}")


def scalar_diff(a, b, floor, noise=0.0):
    if a == b:
        return None
    if INT_RE.match(a) and INT_RE.match(b):
        return "integer differs"
    try:
        x, y = float(a), float(b)
    except ValueError:
        return "text differs"
    if math.isnan(x) and math.isnan(y):
        return None
    if not (math.isfinite(x) and math.isfinite(y)):
        return "nan/inf differs"
    if max(abs(x), abs(y)) <= noise:
        return None
    if INT_RE.match(a) or INT_RE.match(b):
        return None if x == y else "number differs"
    scale = max(abs(x), abs(y), floor)
    return None if abs(x - y) <= REL * scale else f"relative difference {abs(x - y) / scale:.3g}"


def cell_diff(a, b, floor=0.0, noise=0.0):
    pa, pb = a.split(";"), b.split(";")
    if len(pa) != len(pb):
        return f"{len(pa)} vs {len(pb)} entries"
    for i, (x, y) in enumerate(zip(pa, pb)):
        why = scalar_diff(x, y, floor, noise)
        if why:
            return why + (f" (entry {i + 1})" if len(pa) > 1 else "")
    return None


def compare(golden, new):
    problems = 0
    cells = 0
    for table, (keys, values) in TABLES.items():
        gpath, npath = os.path.join(golden, table), os.path.join(new, table)
        if not os.path.exists(gpath):
            print(f"DIFF {table}: no golden table {gpath}")
            problems += 1
            continue
        grows = {tuple(r[k] for k in keys): r for r in read_rows(gpath)}
        nrows = {tuple(r[k] for k in keys): r for r in read_rows(npath)} if os.path.exists(npath) else {}
        lines = []
        for k in grows:
            if k not in nrows:
                lines.append(f"row {'/'.join(k)} missing in the new results")
        for k in nrows:
            if k not in grows:
                lines.append(f"row {'/'.join(k)} not in the golden table")
        for k, g in grows.items():
            n = nrows.get(k)
            if n is None:
                continue
            for c in values:
                cells += 1
                normalised = c in NORMALISED
                # Sweep runs are named after their engine (run.sh: greedy-eps-gram, ...-gram-np2).
                gram = normalised and "-gram" in g.get("run", "")
                why = cell_diff(g[c], n[c], 1.0 if normalised else 0.0, GRAM_NOISE if gram else 0.0)
                if why:
                    lines.append(f"row {'/'.join(k)} {c}: golden {g[c]!r}, now {n[c]!r} ({why})")
        if lines:
            print(f"DIFF {table}: {len(lines)} difference(s)")
            for line in lines[:25]:
                print(f"  {line}")
            if len(lines) > 25:
                print(f"  ... {len(lines) - 25} more")
        problems += len(lines)
    print(f"check: {'SAME' if problems == 0 else 'DIFFERENT'}: {cells} values compared, {problems} difference(s)")
    return 0 if problems == 0 else 1


def same_table(path_a, path_b):
    with open(path_a, newline="") as fa, open(path_b, newline="") as fb:
        a, b = list(csv.reader(fa)), list(csv.reader(fb))
    if not a or not b or a[0] != b[0]:
        print(f"check: {path_a} and {path_b} have different headers")
        return 1
    if len(a) != len(b):
        print(f"check: {len(a) - 1} vs {len(b) - 1} rows")
        return 1
    header = a[0]
    lines = []
    for i, (ra, rb) in enumerate(zip(a[1:], b[1:]), start=1):
        if len(ra) != len(header) or len(rb) != len(header):
            lines.append(f"row {i}: {len(ra)} / {len(rb)} fields for {len(header)} columns")
            continue
        for c, x, y in zip(header, ra, rb):
            why = cell_diff(x, y, 1.0 if c in NORMALISED else 0.0)
            if why:
                lines.append(f"row {i} {c}: {x!r} vs {y!r} ({why})")
    for line in lines[:25]:
        print(f"  {line}")
    print(f"check: {'SAME' if not lines else 'DIFFERENT'}: {len(a) - 1} rows, {len(lines)} difference(s)")
    return 0 if not lines else 1


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("collect", "compare", "same-table"):
        print(__doc__, file=sys.stderr)
        return 2
    if sys.argv[1] == "collect":
        collect(sys.argv[2], sys.argv[3])
        return 0
    if sys.argv[1] == "same-table":
        return same_table(sys.argv[2], sys.argv[3])
    return compare(sys.argv[2], sys.argv[3])


if __name__ == "__main__":
    sys.exit(main())
