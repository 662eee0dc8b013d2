"""Write docs/export-samples.md: what every export format looks like, from the sample dataset.

    .venv/bin/python docs/generate_export_samples.py [--count 30] [--out docs/export-samples.md]

Runs the whole product path on a local stack in this process, over HTTP as the demo
user would: the sample dataset, a plan of ``--count`` conversations, Generate All (the
Messages-API simulator writes them; fixed seed), every generated conversation approved
in bulk, then one export per format with an 80/10/10 split (seed 0). Each file is
downloaded through its presigned URL; the page shows every file's name, the first record
of each format's train file, the split manifest, and the trainer configs in the bundle.
Nothing here is hand-written: rerun it after changing a writer.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FORMATS = ("openai", "anthropic", "sharegpt", "hf_messages", "generic", "csv")
SPLIT = {"train": 0.8, "validation": 0.1, "test": 0.1}
SHOWN_CHARS = 240  # long turn texts are shortened on the page (not in the files)


class Client:
    def __init__(self, base: str) -> None:
        self.base, self.token = base, ""

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        with urllib.request.urlopen(request, timeout=120) as resp:
            return json.loads(resp.read())


def _wait(client: Client, path: str, done: Any, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.call("GET", path)
        if done(body):
            return body
        time.sleep(0.25)
    raise TimeoutError(path)


def _shorten(value: Any) -> Any:
    if isinstance(value, str) and len(value) > SHOWN_CHARS:
        return value[:SHOWN_CHARS] + f"... [{len(value) - SHOWN_CHARS} more characters]"
    if isinstance(value, list):
        return [_shorten(v) for v in value]
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    return value


def first_record(fmt: str, text: str) -> tuple[str, str]:
    """(language, text) of the file's first record, long strings shortened."""
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        first_id = rows[1][rows[0].index("conversation_id")]
        for row in rows:
            if row is rows[0] or row[rows[0].index("conversation_id")] == first_id:
                writer.writerow(_shorten(row))
        return "csv", out.getvalue().rstrip("\n")
    if fmt == "generic":
        document = json.loads(text)
        shown = {"metadata": document["metadata"], "conversations": document["conversations"][:1]}
        return "json", json.dumps(_shorten(shown), indent=2, ensure_ascii=False)
    first = json.loads(text.splitlines()[0])  # one line in the file; indented here
    return "json", json.dumps(_shorten(first), indent=2, ensure_ascii=False)


def run(count: int) -> str:
    os.environ.setdefault("LLM_SIM_LATENCY", "0.01")
    os.environ.setdefault("LLM_SIM_SEED", "7")
    os.environ["AUTH_MODE"] = "cognito"  # sign in as the cloud does
    from devstack.launcher import LocalStack

    stack = LocalStack(
        port=0,
        data_dir=Path(tempfile.mkdtemp(prefix="export-samples-")),
        persist=False,
        serve_frontend=False,
        quiet=True,
    ).start()
    try:
        client = Client(stack.url)
        user = stack.demo_users[0]
        login = client.call(
            "POST", "/api/auth/login", {"email": user.email, "password": user.password}
        )
        client.token = login["id_token"]
        dataset = client.call("POST", "/api/datasets/sample")
        dsid = dataset["dataset_id"]
        client.call("POST", f"/api/datasets/{dsid}/plan", {"count": count})
        job = client.call(
            "POST", "/api/conversations/generate-all", {"dataset_id": dsid, "confirm": True}
        )
        job = _wait(
            client,
            f"/api/jobs/{job['job_id']}",
            lambda j: j["status"] != "running" and j["status"] != "queued",
        )
        listed = client.call("GET", f"/api/conversations?dataset_id={dsid}&page_size=100")
        generated = [r["conversation_id"] for r in listed["items"] if r["status"] == "generated"]
        client.call(
            "POST", "/api/conversations/bulk-action", {"action": "approve", "ids": generated}
        )
        sections = [
            "# Export samples",
            "",
            f"Generated by `docs/generate_export_samples.py` from the sample dataset: {count}"
            f" conversations planned, {job['completed']} generated by the Messages-API"
            f" simulator, {len(generated)} approved, each format exported with an 80/10/10"
            " split and downloaded through its presigned URL. JSON Lines records are"
            " indented here (one line each in the files) and long texts are shortened to"
            f" {SHOWN_CHARS} characters on this page, not in the files.",
        ]
        manifest: Any = None
        configs: dict[str, dict[str, str]] = {}
        for fmt in FORMATS:
            record = client.call(
                "POST",
                "/api/export/conversations",
                {"format": fmt, "filters": {"dataset_id": dsid}, "split": SPLIT},
            )
            record = _wait(
                client, f"/api/exports/{record['export_id']}", lambda r: r["status"] != "pending"
            )
            files = {f["split"]: f for f in record["files"]}
            with urllib.request.urlopen(files["train"]["download_url"], timeout=60) as resp:
                disposition = resp.headers.get("Content-Disposition", "")
                text = resp.read().decode("utf-8")
            with urllib.request.urlopen(files["manifest"]["download_url"], timeout=60) as resp:
                manifest = json.loads(resp.read())
            with urllib.request.urlopen(files["bundle"]["download_url"], timeout=60) as resp:
                zipped = resp.read()
            with zipfile.ZipFile(io.BytesIO(zipped)) as bundle:
                configs[fmt] = {
                    name: bundle.read(name).decode("utf-8")
                    for name in bundle.namelist()
                    if name in manifest["trainer_configs"]
                }
                listing = bundle.namelist()
            language, shown = first_record(fmt, text)
            listed = "\n".join(
                f"- `{f['filename']}`: {f['split'] or 'data'}, {f['count']} conversations,"
                f" {f['bytes']} bytes"
                for f in record["files"]
            )
            sections += [
                "",
                f"## `{fmt}`",
                "",
                f"Files ({record['counts'].get('written')} conversations; the bundle holds"
                f" {', '.join(f'`{n}`' for n in listing)}):",
                "",
                listed,
                "",
                f"First record of the train file (download header `{disposition}`):",
                "",
                f"```{language}",
                shown,
                "```",
            ]
        shown_manifest = dict(manifest)
        more = f"... {len(manifest['records']) - 3} more"
        shown_manifest["records"] = [*manifest["records"][:3], more]
        split = dict(manifest["split"])
        split["conversations"] = {
            k: [*v[:3], f"... {len(v) - 3} more"] if len(v) > 3 else v
            for k, v in split["conversations"].items()
        }
        shown_manifest["split"] = split
        sections += [
            "",
            "## Manifest",
            "",
            "Every export has one (`...-manifest.json`, also in the bundle); this is the csv"
            " export's, with its per-record lists shortened on this page:",
            "",
            "```json",
            json.dumps(_shorten(shown_manifest), indent=2, ensure_ascii=False),
            "```",
            "",
            "## Trainer configs in the bundles",
            "",
        ]
        for fmt, name in (
            ("sharegpt", "dataset_info.json"),
            ("sharegpt", "axolotl.yaml"),
            ("hf_messages", "train_trl.py"),
            ("openai", "openai_finetune.py"),
            ("anthropic", "bedrock_customization_job.json"),
        ):
            # Scripts are shown as text: they are shipped as generated, not as this
            # repository's code (which the formatter would restyle).
            language = {"json": "json", "yaml": "yaml", "py": "text"}[name.rsplit(".", 1)[1]]
            sections += [
                f"### `{name}` ({fmt} export)",
                "",
                f"```{language}",
                configs[fmt][name].rstrip("\n"),
                "```",
                "",
            ]
        return "\n".join(sections)
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "export-samples.md")
    args = parser.parse_args(argv)
    args.out.write_text(run(args.count))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
