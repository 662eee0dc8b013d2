"""``python -m infra.deploy``: the dry run, the refusal without credentials, and the
cloud steps (artifacts bucket, package upload, change sets, frontend) against moto."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.store.records import ALL_RECORDS
from infra import deploy
from infra.build import LAMBDA_FUNCTIONS, ROOT


def no_aws_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "missing-credentials")
    env["AWS_CONFIG_FILE"] = str(tmp_path / "missing-config")
    # No instance metadata lookups either (there is no EC2 role to find here).
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def fake_dist(root: Path) -> Path:
    dist = root / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><script src=/assets/app-1a2b.js></script>")
    (dist / "assets" / "app-1a2b.js").write_text("console.log('hi')")
    (dist / "assets" / "app-1a2b.css").write_text("body{}")
    return dist


@pytest.mark.slow
def test_dry_run_without_credentials_packages_lints_and_plans(tmp_path: Path) -> None:
    dist = fake_dist(tmp_path)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.deploy",
            "--dry-run",
            "--stage",
            "prod",
            "--region",
            "eu-west-1",
            "--alarm-email",
            "ops@example.org",
            "--frontend-dist",
            str(dist),
        ],
        cwd=ROOT,
        env=no_aws_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "nothing was sent to AWS" in out
    assert "stack        brightrun-prod in eu-west-1" in out
    assert "Stage                prod" in out
    assert "AlarmEmail           ops@example.org" in out
    assert "AnthropicSecretArn   (ARN of secret brightrun/prod/anthropic" in out
    assert "cfn-lint clean" in out
    lines = out.splitlines()
    functions = next(line for line in lines if "AWS::Serverless::Function" in line)
    assert functions.split()[1] == str(len(LAMBDA_FUNCTIONS))
    assert all(fn in functions for fn in LAMBDA_FUNCTIONS)
    tables = next(line for line in lines if "AWS::DynamoDB::Table" in line)
    assert tables.split()[1] == str(len(ALL_RECORDS))
    assert any(
        line.strip().startswith("s3://brightrun-prod-artifacts-<account>/prod/deployment-")
        and line.rstrip().endswith(f"Lambda code of {len(LAMBDA_FUNCTIONS)} functions")
        for line in lines
    )
    assert "s3://brightrun-prod-artifacts-<account>/prod/sam-" in out
    assert (
        "s3://<FrontendBucketName output>/index.html  0.1 KB  text/html; charset=utf-8; no-cache"
        in out
    )
    assert (
        "s3://<FrontendBucketName output>/assets/app-1a2b.js  0.0 KB  text/javascript;"
        " charset=utf-8; public, max-age=31536000, immutable" in out
    )
    assert "S3 uploads   5" in out
    assert "LogRetentionDays     90" in out  # prod's log_retention_in_days
    # Outside us-east-1, the CLOUDFRONT web ACL is made there first.
    assert (
        "CloudFrontWebAclArn  (WebAclArn of stack brightrun-prod-cloudfront-waf in us-east-1" in out
    )


def test_refuses_without_credentials(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "infra.deploy", "--stage", "dev", "--region", "us-east-1"],
        cwd=ROOT,
        env=no_aws_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""  # refused before building or packaging anything
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("deploy refused: no AWS credentials found")
    assert "--dry-run" in line


# --------------------------------------------------------------------------- moto


@pytest.fixture(scope="module")
def moto_endpoint() -> Any:
    """A moto server in its own process: an in-process ``mock_aws`` would reset the
    moto backends (and boto3's default session) that the session's local stack uses."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port), "-H", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2).read()
            break
        except OSError:
            if time.time() > deadline:
                proc.kill()
                raise
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> Any:
    import urllib.request

    urllib.request.urlopen(
        urllib.request.Request(f"{moto_endpoint}/moto-api/reset", data=b"", method="POST")
    ).read()
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)  # every boto3 client goes there
    yield boto3.Session(region_name="eu-west-1")


PLAIN_TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "Stage": {"Type": "String"},
        "AlarmEmail": {"Type": "String"},
        "AnthropicSecretArn": {"Type": "String"},
    },
    "Resources": {
        # Stands in for the CloudFront distribution (the lookup is by logical id).
        "FrontendDistribution": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": {"Fn::Sub": "brightrun-${Stage}-alarms"}},
        }
    },
}


def make_package(root: Path, template: dict[str, Any]) -> Path:
    pkg = root / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "sam.json").write_text(json.dumps(template))
    with zipfile.ZipFile(pkg / "deployment.zip", "w") as z:
        z.writestr("app.py", "app = None\n")
    return pkg


def make_plan(root: Path, template: dict[str, Any], alarm_email: str | None) -> deploy.Plan:
    return deploy.make_plan(
        stage="dev",
        region="eu-west-1",
        account="123456789012",
        package_dir=make_package(root, template),
        frontend_dist=fake_dist(root),
        alarm_email=alarm_email,
        secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:brightrun/dev/anthropic-Ab",
    )


def test_point_code_at_rewrites_local_code_only() -> None:
    template = {
        "Resources": {
            "A": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"CodeUri": "./deployment.zip"},
            },
            "B": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "s3://x/y.zip"}},
            "C": {"Type": "AWS::SNS::Topic", "Properties": {}},
        }
    }
    code = deploy.Upload("bkt", "dev/deployment-abc.zip", Path("z"), "application/zip")
    out = deploy.point_code_at(template, code)
    assert out["Resources"]["A"]["Properties"]["CodeUri"] == {
        "Bucket": "bkt",
        "Key": "dev/deployment-abc.zip",
    }
    assert out["Resources"]["B"]["Properties"]["CodeUri"] == "s3://x/y.zip"
    assert template["Resources"]["A"]["Properties"]["CodeUri"] == "./deployment.zip"


def test_artifacts_bucket_and_package_upload(aws: Any, tmp_path: Path) -> None:
    s3 = aws.client("s3")
    sam = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"CodeUri": "./deployment.zip"},
            }
        },
    }
    plan = make_plan(tmp_path, sam, "ops@example.org")
    bucket = plan.artifacts_bucket
    assert bucket == "brightrun-dev-artifacts-123456789012"
    deploy.ensure_artifacts_bucket(s3, bucket, "eu-west-1", "123456789012")
    deploy.ensure_artifacts_bucket(s3, bucket, "eu-west-1", "123456789012")  # idempotent
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # moto ignores policy conditions, so this Deny would refuse every call below.
    s3.delete_bucket_policy(Bucket=bucket)

    url = deploy.publish_package(s3, plan)
    key = plan.template_key()
    assert url == f"https://{bucket}.s3.eu-west-1.amazonaws.com/{key}"
    code = plan.code_upload()
    stored = s3.get_object(Bucket=bucket, Key=code.key)["Body"].read()
    assert stored == plan.zip_path.read_bytes()
    uploaded = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert uploaded["Resources"]["Fn"]["Properties"]["CodeUri"] == {
        "Bucket": bucket,
        "Key": code.key,
    }
    first = s3.head_object(Bucket=bucket, Key=code.key)["LastModified"]
    deploy.publish_package(s3, plan)  # same code: the zip is not uploaded again
    assert s3.head_object(Bucket=bucket, Key=code.key)["LastModified"] == first


def test_change_sets_create_then_update_or_nothing(
    aws: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3, cfn = aws.client("s3"), aws.client("cloudformation")
    plan = make_plan(tmp_path / "one", PLAIN_TEMPLATE, "ops@example.org")
    deploy.ensure_artifacts_bucket(s3, plan.artifacts_bucket, "eu-west-1", "123456789012")
    s3.delete_bucket_policy(Bucket=plan.artifacts_bucket)  # moto ignores its condition
    deploy.deploy_stack(cfn, plan, deploy.publish_package(s3, plan))
    stack = cfn.describe_stacks(StackName="brightrun-dev")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert params["Stage"] == "dev" and params["AlarmEmail"] == "ops@example.org"
    assert {t["Key"]: t["Value"] for t in stack["Tags"]}["stage"] == "dev"
    topic_arn = aws.client("sns").list_topics()["Topics"][0]["TopicArn"]
    assert deploy.distribution_id(cfn, "brightrun-dev") == topic_arn

    deploy.deploy_stack(cfn, plan, deploy.publish_package(s3, plan))
    assert "no changes to the stack" in capsys.readouterr().out
    summaries = cfn.list_change_sets(StackName="brightrun-dev")["Summaries"]
    assert [c for c in summaries if c["Status"] == "FAILED"] == []  # the empty one is deleted

    changed = json.loads(json.dumps(PLAIN_TEMPLATE))
    changed["Resources"]["Second"] = {"Type": "AWS::SNS::Topic", "Properties": {}}
    plan2 = make_plan(tmp_path / "two", changed, None)  # no --alarm-email on update
    deploy.deploy_stack(cfn, plan2, deploy.publish_package(s3, plan2))
    stack = cfn.describe_stacks(StackName="brightrun-dev")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert params["AlarmEmail"] == "ops@example.org"  # the previous value was kept
    resources = cfn.describe_stack_resources(StackName="brightrun-dev")["StackResources"]
    assert {r["LogicalResourceId"] for r in resources} == {"FrontendDistribution", "Second"}


class Recorder:
    def __init__(self, inner: Any = None) -> None:
        self.inner = inner
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, {"args": args, **kwargs}))
            return getattr(self.inner, name)(*args, **kwargs) if self.inner else {}

        return call


def test_publish_frontend_uploads_assets_then_index_and_invalidates(
    aws: Any, tmp_path: Path
) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="front", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    plan = make_plan(tmp_path, PLAIN_TEMPLATE, None)
    spy, cloudfront = Recorder(s3), Recorder()
    deploy.publish_frontend(spy, cloudfront, plan, "front", "E123")
    keys = [c[1]["args"][2] for c in spy.calls if c[0] == "upload_file"]
    assert keys[-1] == "index.html" and len(keys) == 3
    index = s3.head_object(Bucket="front", Key="index.html")
    assert index["ContentType"] == "text/html; charset=utf-8"
    assert index["CacheControl"] == "no-cache"
    css = s3.head_object(Bucket="front", Key="assets/app-1a2b.css")
    assert css["CacheControl"] == "public, max-age=31536000, immutable"
    ((name, kwargs),) = cloudfront.calls
    assert name == "create_invalidation" and kwargs["DistributionId"] == "E123"
    assert kwargs["InvalidationBatch"]["Paths"]["Items"] == ["/*"]


def test_plan_parameters_follow_the_region_and_the_template(tmp_path: Path) -> None:
    hardened = json.loads(json.dumps(PLAIN_TEMPLATE))
    hardened["Parameters"].update(
        {"LogRetentionDays": {"Type": "Number"}, "CloudFrontWebAclArn": {"Type": "String"}}
    )
    cases = (
        ("us-east-1", None, ""),  # the stack makes its own CLOUDFRONT web ACL
        ("eu-west-1", None, None),  # made in us-east-1 first by the deploy
        ("eu-west-1", "arn:aws:wafv2:us-east-1:1:global/webacl/x/y", None),
    )
    for n, (region, arn, expected) in enumerate(cases):
        plan = deploy.make_plan(
            stage="dev",
            region=region,
            account="123456789012",
            package_dir=make_package(tmp_path / str(n), hardened),
            frontend_dist=fake_dist(tmp_path / str(n)),
            alarm_email=None,
            secret_arn=None,
            cloudfront_web_acl_arn=arn,
        )
        assert plan.parameters["CloudFrontWebAclArn"] == (arn or expected)
        assert plan.parameters["LogRetentionDays"] == "14"  # dev's log_retention_in_days
    # A template that does not declare them is not sent them (CloudFormation refuses).
    plain = make_plan(tmp_path / "plain", PLAIN_TEMPLATE, None)
    assert set(plain.parameters) == {"Stage", "AlarmEmail", "AnthropicSecretArn"}


def test_cloudfront_web_acl_stack_is_made_in_its_own_stack(
    aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto's CloudFormation cannot make WAF resources: an SNS topic stands in for the
    web ACL. (moto also gives stacks made by change sets no outputs, so the ARN cannot be
    read back here: the deploy says so instead of failing with a KeyError.)"""
    stand_in = {
        "Parameters": {"Stage": {"Type": "String"}},
        "Resources": {"Acl": {"Type": "AWS::SNS::Topic", "Properties": {}}},
        "Outputs": {"WebAclArn": {"Value": {"Ref": "Acl"}}},
    }
    path = tmp_path / "cloudfront-waf.json"
    path.write_text(json.dumps(stand_in))
    monkeypatch.setattr(deploy, "CLOUDFRONT_WAF_PATH", path)
    cfn = aws.client("cloudformation", region_name="us-east-1")
    with pytest.raises(deploy.DeployError, match="no WebAclArn output"):
        deploy.deploy_cloudfront_waf(cfn, "prod")
    stack = cfn.describe_stacks(StackName="brightrun-prod-cloudfront-waf")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert stack["StackId"].split(":")[3] == "us-east-1"
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]} == {
        "Stage": "prod"
    }
    resources = cfn.describe_stack_resources(StackName="brightrun-prod-cloudfront-waf")
    assert [r["ResourceType"] for r in resources["StackResources"]] == ["AWS::SNS::Topic"]
