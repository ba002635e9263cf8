"""``hmmpar gather``: one table (and plot) from the run directories of a parameter sweep.

Every run writes ``summary.json`` (the application's results) and ``run_config.toml`` (its
resolved config) into its output directory. A sweep, for example a Slurm job array over
``micro.eps`` (``slurm/sweep.sbatch``), leaves one directory per element; this module
reads them all, flattens nested values to dotted keys (``error_vs_exact.l2``), adds the
requested config keys as columns, sorts by the first of them, and writes the table as CSV
and prints it as Markdown. With ``--plot`` it draws each ``--y`` column against ``--x``.
"""
from __future__ import annotations

import csv
import json
import tomllib
from pathlib import Path
from typing import Any, Iterable, Sequence

from hmmpar.core.errors import ConfigError
from hmmpar.io.inputs import read_file


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [1, 2]}`` -> ``{"a.b": 1, "c": "[1, 2]"}`` (lists as text
    unless they hold one number)."""
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    key = prefix[:-1]
    if isinstance(data, list):
        out[key] = data[0] if len(data) == 1 and isinstance(data[0], (int, float)) else json.dumps(data)
    else:
        out[key] = data
    return out


def run_directories(paths: Iterable[str | Path]) -> list[Path]:
    """The run directories among ``paths``: a directory with ``summary.json``, or any
    directory below a given one that has it (a sweep's parent directory)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if (p / "summary.json").is_file():
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(q.parent for q in p.rglob("summary.json")))
        else:
            raise ConfigError(f"gather: {p} is not a run directory (no summary.json) nor a directory")
    if not found:
        raise ConfigError("gather: no summary.json found in " + ", ".join(map(str, paths)))
    return sorted(set(found))


def read_run(directory: Path, params: Sequence[str]) -> dict[str, Any]:
    """One row: the run directory, the requested config keys, the flattened summary."""
    try:  # a regular file of bounded size: a FIFO named summary.json does not block
        summary = json.loads(read_file(directory / "summary.json", "config", "gather").decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"gather: {directory / 'summary.json'} is unreadable ({exc})") from None
    row: dict[str, Any] = {"run": str(directory)}
    if params:
        cfg_path = directory / "run_config.toml"
        try:
            config = flatten(tomllib.loads(read_file(cfg_path, "config", "gather").decode()))
        except ConfigError as exc:
            raise ConfigError(f"{exc}; --param needs it") from None
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"gather: {cfg_path} is unreadable ({exc}); --param needs it") from None
        for key in params:
            if key not in config:
                raise ConfigError(f"gather: config key {key} is not in {cfg_path}")
            row[key] = config[key]
    row.update(flatten(summary))
    return row


def gather(paths: Iterable[str | Path], params: Sequence[str] = (), columns: Sequence[str] = ()) -> tuple[list[str], list[dict]]:
    """The rows of all runs under ``paths`` and the column order (sorted by the first param)."""
    rows = [read_run(d, params) for d in run_directories(paths)]
    if params:
        rows.sort(key=lambda r: (_sort_key(r[params[0]]), r["run"]))
    if columns:
        missing = [c for c in columns if all(c not in r for r in rows)]
        if missing:
            known = sorted({k for r in rows for k in r})
            raise ConfigError(f"gather: no run has column {missing[0]!r} (columns: {', '.join(known)})")
        header = ["run", *params, *[c for c in columns if c not in params]]
    else:
        header = ["run", *params]
        for r in rows:
            header += [k for k in r if k not in header]
    return header, rows


def _sort_key(value: Any):
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0.0, str(value))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def markdown(header: Sequence[str], rows: Sequence[dict]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(r.get(h)) for h in header) + " |" for r in rows]
    return "\n".join(lines)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow([r.get(h, "") for h in header])


def plot(path: Path, rows: Sequence[dict], x: str, ys: Sequence[str]) -> None:
    """Each ``y`` against ``x`` (log axes when every value is positive)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def numeric(key: str) -> list[float]:
        try:
            return [float(r[key]) for r in rows]
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"gather --plot: column {key!r} is missing or not numeric in some run") from None
    xs = numeric(x)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for y in ys:
        ax.plot(xs, numeric(y), "o-", label=y)
    every = [v for y in ys for v in numeric(y)]
    if all(v > 0 for v in xs) and max(xs) / min(xs) > 8:
        ax.set_xscale("log")
    if every and all(v > 0 for v in every) and max(every) / min(every) > 8:
        ax.set_yscale("log")
    ax.set(xlabel=x, title=f"{len(rows)} runs")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(args) -> str:
    """The ``hmmpar gather`` command (serial); returns the Markdown table."""
    header, rows = gather(args.paths, args.param, args.column)
    if args.csv:
        write_csv(Path(args.csv), header, rows)
    if args.plot:
        if not args.x or not args.y:
            raise ConfigError("gather --plot needs --x KEY and at least one --y KEY")
        plot(Path(args.plot), rows, args.x, args.y)
    return markdown(header, rows)
