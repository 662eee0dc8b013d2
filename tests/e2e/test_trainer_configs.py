"""The trainer configs in an export's bundle, each checked by loading the export the way
that trainer does.

None of the trainers is installed here (they pull in torch), so each test replays the
trainer's own loading path on the downloaded bundle, following its documented format
and converter code:

- LLaMA-Factory: ``data/parser.py`` (``dataset_info.json`` -> ``DatasetAttr``: columns,
  tags and their defaults), the file loaded with ``datasets.load_dataset("json")`` as its
  loader does for local files, then ``SharegptDatasetConverter.__call__``
  (``data/converter.py``): system tag/column, odd/even role tags, an even message count;
- axolotl: the YAML as ``StrategyLoader`` reads it (``type: chat_template``,
  ``field_messages``, ``message_property_mappings``, ``roles``) and
  ``ChatTemplateStrategy.transform_message`` role mapping;
- TRL: the bundle's ``train_trl.py`` itself (its ``load_splits`` with ``datasets``), each
  row passing TRL's ``is_conversational`` test (what makes SFTTrainer apply the chat
  template);
- OpenAI: the bundle's ``openai_finetune.py`` run against a stand-in ``openai`` module
  that records the calls, and every line checked with the OpenAI cookbook's chat
  fine-tuning format checks;
- Bedrock: the bundle's ``bedrock_customization_job.json`` sent as is to Bedrock (moto,
  through boto3, whose botocore model validates every parameter), its training and
  validation URIs pointing at the export's files, whose records pass Bedrock's Claude
  rules (optional ``system``, alternating user/assistant, no other keys).
"""

from __future__ import annotations

import io
import json
import runpy
import sys
import types
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib.domain.models import Conversation, ConversationStatus, Tier, utcnow

pytestmark = pytest.mark.e2e

SPLIT = {"train": 0.8, "validation": 0.1, "test": 0.1}
PERSONAS = ("Pre-Retiree", "Young Professional")


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as resp:
        return bytes(resp.read())


@pytest.fixture(scope="module")
def dataset_id(api: Any, stack: Any) -> str:
    from chalicelib.bootstrap import get_container
    from chalicelib.store.records import TurnsRecord

    tenant = stack.demo_users[0].tenant_id
    status, ds, _ = api.post("/api/datasets", {"name": "Trainer Configs"})
    assert status == 201, ds
    now = utcnow()
    conversations = []
    for i in range(40):
        conv = Conversation(
            tenant_id=tenant,
            dataset_id=ds["dataset_id"],
            persona=PERSONAS[i % 2],
            emotion="Fear",
            topic="Fees",
            intent="Understand",
            tone="Warm",
            tier=Tier.TEMPLATE,
            title=f"t {i}",
            status=ConversationStatus.APPROVED,
            quality_score=8.0,
            turn_count=4,
            approved_by="seed@example.com",
            approved_at=now,
        )
        turns = [
            {"turn_number": n + 1, "role": r, "content": f"Conversation {i}, turn {n + 1}."}
            for n, r in enumerate(["user", "assistant", "user", "assistant"])
        ]
        TurnsRecord(tenant, conv.conversation_id, turns=turns, created_at=now).save()
        conversations.append(conv)
    get_container().conversation_repo.add_planned(conversations)
    return str(ds["dataset_id"])


def bundle(api: Any, dataset_id: str, fmt: str, tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """Export ``fmt`` with a split; its bundle unzipped into ``tmp_path``."""
    status, record, _ = api.post(
        "/api/export/conversations",
        {"format": fmt, "filters": {"dataset_id": dataset_id}, "split": SPLIT},
    )
    assert status == 201 and record["status"] == "ready", record
    url = next(f["download_url"] for f in record["files"] if f["split"] == "bundle")
    with zipfile.ZipFile(io.BytesIO(download(url))) as z:
        z.extractall(tmp_path)
    return record, tmp_path


def split_files(record: dict[str, Any]) -> dict[str, str]:
    return {f["split"]: f["filename"] for f in record["files"] if f["split"] in SPLIT}


# ---------------------------------------------------------------------------- LLaMA-Factory

LF_DEFAULTS = {  # DatasetAttr's defaults (data/parser.py)
    "formatting": "alpaca",
    "messages": "conversations",
    "system": None,
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}


def llamafactory_attr(entry: dict[str, Any]) -> dict[str, Any]:
    attr = dict(LF_DEFAULTS, file_name=entry["file_name"])
    attr["formatting"] = entry.get("formatting", "alpaca")
    for column in ("system", "tools", "images", "chosen", "rejected", "kto_tag", "messages"):
        if column in entry.get("columns", {}):
            attr[column] = entry["columns"][column]
    if attr["formatting"] in ("sharegpt", "openai"):
        for tag in (
            "role_tag",
            "content_tag",
            "user_tag",
            "assistant_tag",
            "observation_tag",
            "function_tag",
            "system_tag",
        ):
            if tag in entry.get("tags", {}):
                attr[tag] = entry["tags"][tag]
    return attr


def llamafactory_convert(attr: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    """SharegptDatasetConverter.__call__ for a supervised example (no ranking, no kto)."""
    messages = example[attr["messages"]]
    if attr["system_tag"] and messages and messages[0][attr["role_tag"]] == attr["system_tag"]:
        system, messages = messages[0][attr["content_tag"]], messages[1:]
    else:
        system = example[attr["system"]] if attr["system"] else ""
    odd = (attr["user_tag"], attr["observation_tag"])
    even = (attr["assistant_tag"], attr["function_tag"])
    broken = False
    aligned = []
    for i, m in enumerate(messages):
        if m[attr["role_tag"]] not in (odd, even)[i % 2]:
            broken = True
            break
        role = "user" if m[attr["role_tag"]] == attr["user_tag"] else "assistant"
        aligned.append({"role": role, "content": m[attr["content_tag"]]})
    if len(aligned) % 2 != 0:
        broken = True
    if broken:
        return {"_prompt": [], "_response": [], "_system": system}
    return {"_prompt": aligned[:-1], "_response": aligned[-1:], "_system": system}


@pytest.mark.parametrize("fmt", ["sharegpt", "openai", "hf_messages", "anthropic"])
def test_llamafactory_dataset_info_loads_every_split(
    api: Any, dataset_id: str, fmt: str, tmp_path: Path
) -> None:
    import datasets

    record, folder = bundle(api, dataset_id, fmt, tmp_path)
    info = json.loads((folder / "dataset_info.json").read_text())
    names = {f"trainer_configs_{s}": f for s, f in split_files(record).items()}
    assert {k: v["file_name"] for k, v in info.items()} == names
    for entry in info.values():
        assert entry["formatting"] == "sharegpt"
        attr = llamafactory_attr(entry)
        rows = datasets.load_dataset("json", data_files=str(folder / attr["file_name"]))["train"]
        assert rows.num_rows > 0
        for example in rows:
            out = llamafactory_convert(attr, example)
            assert out["_prompt"] and out["_response"], example  # not skipped as abnormal
            assert out["_prompt"][0]["role"] == "user"
            assert out["_response"][0]["role"] == "assistant"
            assert out["_system"].startswith("You are")  # the dataset's system prompt


# ---------------------------------------------------------------------------- axolotl


@pytest.mark.parametrize("fmt", ["sharegpt", "openai", "hf_messages"])
def test_axolotl_chat_template_config_maps_every_message(
    api: Any, dataset_id: str, fmt: str, tmp_path: Path
) -> None:
    import datasets

    record, folder = bundle(api, dataset_id, fmt, tmp_path)
    config = yaml.safe_load((folder / "axolotl.yaml").read_text())
    assert config["chat_template"] == "tokenizer_default"
    assert config["sequence_len"] >= 1024
    files = split_files(record)
    sets = [("datasets", config["datasets"][0]), ("test_datasets", config["test_datasets"][0])]
    assert sets[0][1]["path"] == f"./{files['train']}"
    assert sets[1][1]["path"] == f"./{files['validation']}"
    for _, ds_cfg in sets:
        assert ds_cfg["type"] == "chat_template"  # not the deprecated sharegpt type
        assert ds_cfg["ds_type"] == "json"
        rows = datasets.load_dataset("json", data_files=str(folder / ds_cfg["path"]))[
            ds_cfg.get("split", "train")
        ]
        mappings = ds_cfg["message_property_mappings"]
        roles = {s: t for t, sources in ds_cfg["roles"].items() for s in sources}
        for row in rows:
            messages = row[ds_cfg["field_messages"]]
            assert isinstance(messages, list) and messages
            turns = []
            for m in messages:  # ChatTemplateStrategy.transform_message
                t = {k: m[v] for k, v in mappings.items() if m.get(v) is not None}
                t["role"] = roles.get(t["role"], t["role"])
                turns.append(t)
            assert {t["role"] for t in turns} <= {"system", "user", "assistant"}
            assert all(isinstance(t["content"], str) and t["content"] for t in turns)
            assert any(t["role"] in ds_cfg["roles_to_train"] for t in turns)


# ---------------------------------------------------------------------------- TRL


def trl_is_conversational(example: dict[str, Any]) -> bool:
    """trl.data_utils.is_conversational."""
    supported = ["prompt", "chosen", "rejected", "completion", "messages"]
    keys = {k for k in example if k in supported}
    if keys:
        value = example[keys.pop()]
        if isinstance(value, list) and value:
            first = value[0]
            return isinstance(first, dict) and "role" in first and "content" in first
    return False


@pytest.mark.parametrize("fmt", ["openai", "hf_messages"])
def test_trl_script_loads_each_split_file_as_conversational_rows(
    api: Any, dataset_id: str, fmt: str, tmp_path: Path
) -> None:
    record, folder = bundle(api, dataset_id, fmt, tmp_path)
    script = folder / "train_trl.py"
    namespace = runpy.run_path(str(script), run_name="bundle_trl")  # main() not run
    splits = namespace["load_splits"](folder)
    counts = {f["split"]: f["count"] for f in record["files"] if f["split"] in SPLIT}
    assert {name: splits[name].num_rows for name in splits} == counts
    for name in splits:
        assert all(trl_is_conversational(row) for row in splits[name])
    text = script.read_text()
    assert "SFTTrainer(" in text and 'eval_dataset=splits["validation"]' in text


# ---------------------------------------------------------------------------- OpenAI


def openai_format_errors(record: dict[str, Any]) -> list[str]:
    """The OpenAI cookbook's chat fine-tuning format checks for one example."""
    errors = []
    messages = record.get("messages")
    if not messages:
        return ["missing_messages_list"]
    for m in messages:
        if "role" not in m or "content" not in m:
            errors.append("message_missing_key")
        if any(k not in ("role", "content", "name", "function_call", "weight") for k in m):
            errors.append("message_unrecognized_key")
        if m.get("role") not in ("system", "user", "assistant", "function"):
            errors.append("unrecognized_role")
        content = m.get("content")
        if not content or not isinstance(content, str):
            errors.append("missing_content")
    if not any(m.get("role") == "assistant" for m in messages):
        errors.append("example_missing_assistant_message")
    return errors


def test_openai_script_uploads_training_and_validation_files_and_starts_a_job(
    api: Any, dataset_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record, folder = bundle(api, dataset_id, "openai", tmp_path)
    calls: list[tuple[str, Any]] = []

    class Files:
        def create(self, file: Any, purpose: str) -> Any:
            lines = file.read().decode().splitlines()
            for line in lines:
                assert openai_format_errors(json.loads(line)) == []
            calls.append(("file", (Path(file.name).name, purpose, len(lines))))
            return types.SimpleNamespace(id=f"file-{len(calls)}")

    class Jobs:
        def create(self, **job: Any) -> Any:
            calls.append(("job", job))
            return types.SimpleNamespace(id="ftjob-1", status="validating_files")

    class OpenAI:
        def __init__(self) -> None:
            self.files = Files()
            self.fine_tuning = types.SimpleNamespace(jobs=Jobs())

    monkeypatch.setitem(sys.modules, "openai", types.SimpleNamespace(OpenAI=OpenAI))
    runpy.run_path(str(folder / "openai_finetune.py"), run_name="__main__")
    files = split_files(record)
    counts = {f["split"]: f["count"] for f in record["files"] if f["split"] in SPLIT}
    assert calls[0] == ("file", (files["train"], "fine-tune", counts["train"]))
    assert calls[1] == ("file", (files["validation"], "fine-tune", counts["validation"]))
    assert calls[2][0] == "job"
    assert calls[2][1]["training_file"] == "file-1"
    assert calls[2][1]["validation_file"] == "file-2"
    assert calls[2][1]["model"].startswith("gpt-")


# ---------------------------------------------------------------------------- Bedrock


def bedrock_record_errors(record: dict[str, Any]) -> list[str]:
    """Bedrock's data rules for Claude 3 Haiku fine-tuning."""
    errors = []
    if set(record) - {"system", "messages"}:
        errors.append("extraneous keys")
    if "system" in record and not isinstance(record["system"], str):
        errors.append("system is not a string")
    messages = record.get("messages") or []
    if len(messages) < 2:
        errors.append("fewer than two messages")
    for i, m in enumerate(messages):
        if set(m) != {"role", "content"}:
            errors.append(f"message {i} keys")
        if m.get("role") != ("user" if i % 2 == 0 else "assistant"):
            errors.append(f"message {i} breaks user/assistant alternation")
    if messages and messages[-1].get("role") != "assistant":
        errors.append("last message is not the assistant's")
    return errors


def test_bedrock_job_json_starts_a_customization_job_on_the_export_files(
    api: Any, stack: Any, dataset_id: str, tmp_path: Path
) -> None:
    from chalicelib.bootstrap import get_container

    record, folder = bundle(api, dataset_id, "anthropic", tmp_path)
    job = json.loads((folder / "bedrock_customization_job.json").read_text())
    container = get_container()
    bucket = container.settings.export_bucket
    assert job["roleArn"] == container.settings.fine_tune_role_arn
    assert job["customizationType"] == "FINE_TUNING"
    assert job["baseModelIdentifier"].startswith("anthropic.claude-3-haiku")
    assert job["hyperParameters"] == {
        "epochCount": "2",
        "batchSize": "32",
        "learningRateMultiplier": "1",
    }
    bedrock = container.client("bedrock")
    arn = bedrock.create_model_customization_job(**job)["jobArn"]
    described = bedrock.get_model_customization_job(jobIdentifier=job["jobName"])
    assert described["jobArn"] == arn and described["status"] == "InProgress"
    uris = {
        "train": described["trainingDataConfig"]["s3Uri"],
        "validation": described["validationDataConfig"]["validators"][0]["s3Uri"],
    }
    files = split_files(record)
    s3 = container.s3
    for split, uri in uris.items():
        key = uri.removeprefix(f"s3://{bucket}/")
        assert (
            key == f"exports/{stack.demo_users[0].tenant_id}/{record['export_id']}/{files[split]}"
        )
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        lines = [json.loads(line) for line in body.splitlines()]
        assert len(lines) == next(f["count"] for f in record["files"] if f["split"] == split)
        assert all(bedrock_record_errors(r) == [] for r in lines)
    assert described["outputDataConfig"]["s3Uri"].startswith(f"s3://{bucket}/fine-tunes/")
