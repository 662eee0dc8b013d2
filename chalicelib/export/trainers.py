"""Trainer configs shipped in an export's bundle: the files a trainer needs besides data.

Pure functions of the export's format, its file names per split and its token
statistics. Each config follows the trainer's documented format (the tests load the
export through each of them the way that trainer does):

- LLaMA-Factory ``dataset_info.json`` (``formatting: sharegpt`` with ``columns`` and
  ``tags``; the OpenAI messages layout is its role/content variant): sharegpt, openai,
  hf_messages and anthropic (its ``system`` column) files;
- axolotl dataset YAML, ``type: chat_template`` with ``field_messages`` and
  ``message_property_mappings`` (``type: sharegpt`` is deprecated): sharegpt, openai,
  hf_messages;
- a TRL ``SFTTrainer`` script loading the split files with ``datasets`` (conversational
  ``messages`` rows): openai, hf_messages;
- the OpenAI fine-tuning API calls (curl and Python) with training and validation files:
  openai;
- the Amazon Bedrock ``CreateModelCustomizationJob`` request: anthropic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from chalicelib.domain.models import ExportFormat

BEDROCK_BASE_MODEL: Final = "anthropic.claude-3-haiku-20240307-v1:0:200k"
OPENAI_BASE_MODEL: Final = "gpt-4o-mini-2024-07-18"
TRL_BASE_MODEL: Final = "Qwen/Qwen2.5-0.5B-Instruct"
SEQUENCE_LENGTHS: Final = (1024, 2048, 4096, 8192, 16384, 32768)

LLAMAFACTORY_LAYOUTS: Final[dict[ExportFormat, dict[str, Any]]] = {
    ExportFormat.SHAREGPT: {
        "columns": {"messages": "conversations"},
        "tags": {
            "role_tag": "from",
            "content_tag": "value",
            "user_tag": "human",
            "assistant_tag": "gpt",
            "system_tag": "system",
        },
    },
    ExportFormat.OPENAI: {
        "columns": {"messages": "messages"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        },
    },
    ExportFormat.ANTHROPIC: {
        "columns": {"messages": "messages", "system": "system"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
        },
    },
}
LLAMAFACTORY_LAYOUTS[ExportFormat.HF_MESSAGES] = LLAMAFACTORY_LAYOUTS[ExportFormat.OPENAI]

AXOLOTL_FIELDS: Final[dict[ExportFormat, dict[str, Any]]] = {
    ExportFormat.SHAREGPT: {
        "field_messages": "conversations",
        "message_property_mappings": {"role": "from", "content": "value"},
        "roles": {"system": ["system"], "user": ["human"], "assistant": ["gpt"]},
    },
    ExportFormat.OPENAI: {
        "field_messages": "messages",
        "message_property_mappings": {"role": "role", "content": "content"},
        "roles": {"system": ["system"], "user": ["user"], "assistant": ["assistant"]},
    },
}
AXOLOTL_FIELDS[ExportFormat.HF_MESSAGES] = AXOLOTL_FIELDS[ExportFormat.OPENAI]


def sequence_length(max_tokens: int | None) -> int:
    """The smallest usual ``max_seq_length`` that fits the longest record."""
    for n in SEQUENCE_LENGTHS:
        if max_tokens is None or max_tokens <= n:
            return n
    return SEQUENCE_LENGTHS[-1]


def _eval_split(files: Mapping[str, str]) -> str | None:
    return "validation" if "validation" in files else ("test" if "test" in files else None)


def llamafactory_dataset_info(
    fmt: ExportFormat, name: str, files: Mapping[str, str]
) -> dict[str, Any] | None:
    """One entry per split file: ``<name>_<split>``, files beside dataset_info.json."""
    layout = LLAMAFACTORY_LAYOUTS.get(fmt)
    if layout is None:
        return None
    return {
        f"{name}_{split}": {"file_name": filename, "formatting": "sharegpt", **layout}
        for split, filename in files.items()
    }


def axolotl_yaml(fmt: ExportFormat, files: Mapping[str, str], max_tokens: int | None) -> str | None:
    fields = AXOLOTL_FIELDS.get(fmt)
    if fields is None:
        return None
    train = files.get("train") or files.get("all")
    if train is None:
        return None

    def dataset(path: str, split: bool) -> list[str]:
        lines = [
            f"  - path: ./{path}",
            "    ds_type: json",
            *(["    split: train  # a JSON file loads as one 'train' split"] if split else []),
            "    type: chat_template",
            f"    field_messages: {fields['field_messages']}",
            "    message_property_mappings:",
            *(f"      {k}: {v}" for k, v in fields["message_property_mappings"].items()),
            "    roles:",
            *(f"      {k}: [{', '.join(v)}]" for k, v in fields["roles"].items()),
            "    roles_to_train: [assistant]",
        ]
        return lines

    lines = [
        "# axolotl config fragment: merge into your training YAML (base_model, adapter: lora, ...)",
        "chat_template: tokenizer_default",
        f"sequence_len: {sequence_length(max_tokens)}  # fits the longest record",
        "datasets:",
        *dataset(train, False),
    ]
    evaluation = _eval_split(files)
    if evaluation is not None:
        lines += ["test_datasets:", *dataset(files[evaluation], True)]
    return "\n".join(lines) + "\n"


def trl_script(fmt: ExportFormat, files: Mapping[str, str], max_tokens: int | None) -> str | None:
    if fmt not in (ExportFormat.OPENAI, ExportFormat.HF_MESSAGES):
        return None
    data_files = {k: v for k, v in files.items() if k in ("train", "validation", "test", "all")}
    evaluation = _eval_split(files)
    return f'''"""Fine-tune with TRL's SFTTrainer on this export (LoRA). Run beside the data files:

    pip install trl peft datasets
    python train_trl.py
"""

from pathlib import Path

from datasets import load_dataset

HERE = Path(__file__).resolve().parent
DATA_FILES = {json.dumps(data_files, indent=4)}
MAX_LENGTH = {sequence_length(max_tokens)}  # fits the longest record of this export


def load_splits(directory: Path = HERE):
    """Each split file as its own split; rows are conversational ("messages")."""
    files = {{split: str(directory / name) for split, name in DATA_FILES.items()}}
    return load_dataset("json", data_files=files)


def main() -> None:
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    splits = load_splits()
    trainer = SFTTrainer(
        model="{TRL_BASE_MODEL}",
        train_dataset=splits["{"train" if "train" in files else "all"}"],
        eval_dataset={f'splits["{evaluation}"]' if evaluation else "None"},
        args=SFTConfig(output_dir="out", max_length=MAX_LENGTH, assistant_only_loss=False),
        peft_config=LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"),
    )
    trainer.train()


if __name__ == "__main__":
    main()
'''


def openai_script(fmt: ExportFormat, files: Mapping[str, str]) -> str | None:
    if fmt != ExportFormat.OPENAI:
        return None
    train = files.get("train") or files.get("all")
    validation = files.get("validation")
    upload = (
        '    curl https://api.openai.com/v1/files -H "Authorization: Bearer $OPENAI_API_KEY" \\\n'
        "      -F purpose=fine-tune -F file=@{name}\n"
    )
    curl = upload.format(name=train)
    job = f'"model": "{OPENAI_BASE_MODEL}", "training_file": "<file id>"'
    if validation:
        curl += upload.format(name=validation)
        job += ', "validation_file": "<file id>"'
    curl += (
        "    curl https://api.openai.com/v1/fine_tuning/jobs"
        ' -H "Authorization: Bearer $OPENAI_API_KEY" \\\n'
        '      -H "Content-Type: application/json" -d \'{' + job + "}'\n"
    )
    return f'''"""Start an OpenAI fine-tuning job with this export's files.

    pip install openai && OPENAI_API_KEY=... python openai_finetune.py

The same with curl:

{curl}"""

from pathlib import Path

from openai import OpenAI

HERE = Path(__file__).resolve().parent
MODEL = "{OPENAI_BASE_MODEL}"
TRAINING_FILE = "{train}"
VALIDATION_FILE = {json.dumps(validation)}


def main() -> None:
    client = OpenAI()
    with open(HERE / TRAINING_FILE, "rb") as f:
        training = client.files.create(file=f, purpose="fine-tune")
    job = {{"model": MODEL, "training_file": training.id}}
    if VALIDATION_FILE:
        with open(HERE / VALIDATION_FILE, "rb") as f:
            job["validation_file"] = client.files.create(file=f, purpose="fine-tune").id
    created = client.fine_tuning.jobs.create(**job)
    print(created.id, created.status)


if __name__ == "__main__":
    main()
'''


def bedrock_job(
    *,
    job_name: str,
    custom_model_name: str,
    role_arn: str,
    base_model: str,
    training_uri: str,
    validation_uri: str | None,
    output_uri: str,
    hyperparameters: Mapping[str, Any],
    tags: Mapping[str, str] | None = None,
    client_request_token: str | None = None,
) -> dict[str, Any]:
    """A ``CreateModelCustomizationJob`` request (boto3 keyword names; the same JSON
    works with ``aws bedrock create-model-customization-job --cli-input-json``).
    Hyperparameter values are strings, as the API takes them."""
    request: dict[str, Any] = {
        "jobName": job_name,
        "customModelName": custom_model_name,
        "roleArn": role_arn,
        "baseModelIdentifier": base_model,
        "customizationType": "FINE_TUNING",
        "trainingDataConfig": {"s3Uri": training_uri},
        "outputDataConfig": {"s3Uri": output_uri},
        "hyperParameters": {k: _hp(v) for k, v in hyperparameters.items()},
    }
    if validation_uri:
        request["validationDataConfig"] = {"validators": [{"s3Uri": validation_uri}]}
    if tags:
        request["jobTags"] = [{"key": k, "value": v} for k, v in tags.items()]
    if client_request_token:
        request["clientRequestToken"] = client_request_token
    return request


def _hp(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def trainer_configs(
    fmt: ExportFormat,
    name: str,
    files: Mapping[str, str],
    max_tokens: int | None,
    bedrock: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """File name -> text of every config this format supports. ``files``: split (or
    "all") -> data file name; ``bedrock``: a ready ``bedrock_job`` request (anthropic)."""
    out: dict[str, str] = {}
    info = llamafactory_dataset_info(fmt, name, files)
    if info is not None:
        out["dataset_info.json"] = json.dumps(info, indent=2) + "\n"
    axolotl = axolotl_yaml(fmt, files, max_tokens)
    if axolotl is not None:
        out["axolotl.yaml"] = axolotl
    trl = trl_script(fmt, files, max_tokens)
    if trl is not None:
        out["train_trl.py"] = trl
    openai = openai_script(fmt, files)
    if openai is not None:
        out["openai_finetune.py"] = openai
    if bedrock is not None and fmt == ExportFormat.ANTHROPIC:
        out["bedrock_customization_job.json"] = json.dumps(bedrock, indent=2) + "\n"
    return out


def readme(
    fmt: ExportFormat,
    title: str,
    files: Mapping[str, str],
    manifest_name: str,
    configs: Mapping[str, str],
    name: str,
) -> str:
    lines = [
        f"# {title}",
        "",
        f"Format: {fmt.value}. Manifest (counts, seed, which conversation went where,",
        f"sha256 of every file, token statistics, leakage report): `{manifest_name}`.",
        "",
        "## Files",
        "",
        *(f"- `{filename}`: {split}" for split, filename in files.items()),
        "",
    ]
    if configs:
        lines += ["## Trainer configs", ""]
    if "dataset_info.json" in configs:
        splits = ", ".join(f"`{name}_{s}`" for s in files)
        lines += [
            "- `dataset_info.json` (LLaMA-Factory): unzip into a folder, set",
            f"  `dataset_dir` to it and `dataset: {name}_train` (datasets: {splits};",
            "  e.g. `eval_dataset` for the validation file).",
        ]
    if "axolotl.yaml" in configs:
        lines.append("- `axolotl.yaml`: the `datasets`/`test_datasets` part of an axolotl config.")
    if "train_trl.py" in configs:
        lines.append("- `train_trl.py`: TRL SFTTrainer with LoRA on the split files.")
    if "openai_finetune.py" in configs:
        lines.append("- `openai_finetune.py`: uploads the files and starts an OpenAI job.")
    if "bedrock_customization_job.json" in configs:
        lines += [
            "- `bedrock_customization_job.json`: `aws bedrock create-model-customization-job",
            "  --cli-input-json file://bedrock_customization_job.json` (or start it from the",
            "  studio: Exports -> Fine-tune on Bedrock).",
        ]
    return "\n".join(lines) + "\n"


# Bedrock's documented defaults for Claude 3 Haiku (epochCount 1-10, batchSize 4-256,
# learningRateMultiplier 0.1-2).
BEDROCK_DEFAULT_HYPERPARAMETERS: Final[dict[str, Any]] = {
    "epochCount": 2,
    "batchSize": 32,
    "learningRateMultiplier": 1,
}
