"""``make deploy``: package, lint and deploy the stack, then publish the frontend.

    python -m infra.deploy --stage dev --region eu-west-1 --alarm-email ops@example.com
    python -m infra.deploy --dry-run        # no AWS needed: package, lint, print the plan

Steps of a deploy:
1. refuse (exit 2, one line) when boto3 finds no AWS credentials;
2. build the frontend (``npm run build`` in frontend/) when frontend/dist is missing;
3. ``chalice package --merge-template infra/template.json`` into a work directory
   (infra/template.json must be current: ``python -m infra.build``), then cfn-lint the
   merged sam.json (errors or warnings stop the deploy);
4. what ``aws cloudformation package`` does, with boto3: ensure the artifacts bucket
   ``brightrun-<stage>-artifacts-<account>`` (private, encrypted, TLS-only), upload the
   deployment zip under a content-addressed key, point every function's CodeUri at it,
   upload the template (too large for an inline TemplateBody);
5. create a change set (CREATE or UPDATE, by the stack's state) with the parameters
   Stage / AlarmEmail / AnthropicSecretArn, execute it and wait for the stack;
6. upload frontend/dist to the stack's FrontendBucketName output, invalidate
   CloudFront, print FrontendUrl.

``--dry-run`` does 2-3 and prints the plan of 4-6 (stack, parameters, resources by
type, S3 uploads) without touching AWS, so it works without credentials.
Exit codes: 0 done, 1 a step failed, 2 refused (no credentials, missing input).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mimetypes
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.build import CLOUDFRONT_WAF_PATH, ROOT, TEMPLATE_PATH, render

CHALICE_CONFIG = ROOT / ".chalice" / "config.json"
DEPLOYMENTS_DIR = ROOT / ".chalice" / "deployments"
FRONTEND_DIR = ROOT / "frontend"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
DEFAULT_REGION = "us-east-1"
KEEP_DEPLOYMENT_ZIPS = 3
UNKNOWN_ACCOUNT = "<account>"


class DeployError(Exception):
    """A step failed (exit 1)."""


class Refusal(Exception):
    """Deploying cannot start: missing credentials or input (exit 2, one line)."""


# --------------------------------------------------------------------------- names


def stack_name(stage: str) -> str:
    return f"brightrun-{stage}"


def artifacts_bucket_name(stage: str, account: str) -> str:
    return f"brightrun-{stage}-artifacts-{account}"


def secret_name(stage: str) -> str:
    return f"brightrun/{stage}/anthropic"


def configured_stages() -> list[str]:
    return sorted(json.loads(CHALICE_CONFIG.read_text()).get("stages", {}))


def stage_log_retention(stage: str) -> str:
    """The stage's ``log_retention_in_days`` (Chalice's own log groups use it too)."""
    stages = json.loads(CHALICE_CONFIG.read_text()).get("stages", {})
    return str(stages.get(stage, {}).get("log_retention_in_days", 90))


def cloudfront_waf_stack_name(stage: str) -> str:
    return f"brightrun-{stage}-cloudfront-waf"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tool(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise DeployError(f"{name} is not installed: run make setup")
    return found


# --------------------------------------------------------------------------- build steps


def build_frontend(dist: Path) -> None:
    if (dist / "index.html").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise DeployError(f"{dist} is missing and npm is not installed to build it")
    if not (FRONTEND_DIR / "node_modules").exists():
        _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=FRONTEND_DIR)
    _run([npm, "run", "build", "--silent"], cwd=FRONTEND_DIR)
    if not (dist / "index.html").exists():
        raise DeployError(f"npm run build did not produce {dist / 'index.html'}")


def _run(cmd: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        raise DeployError(f"{' '.join(cmd[:3])} failed ({done.returncode}):\n{output}")
    return done.stdout


def check_template_current() -> None:
    if not TEMPLATE_PATH.exists() or TEMPLATE_PATH.read_text() != render():
        raise DeployError("infra/template.json is out of date: run python -m infra.build")


def package(stage: str, region: str, outdir: Path) -> Path:
    """``chalice package --merge-template infra/template.json``; returns sam.json."""
    check_template_current()
    env = {**os.environ, "AWS_DEFAULT_REGION": region}
    _run(
        [
            _tool("chalice"),
            "--project-dir",
            str(ROOT),
            "package",
            "--stage",
            stage,
            "--merge-template",
            str(TEMPLATE_PATH),
            str(outdir),
        ],
        cwd=ROOT,
        env=env,
    )
    prune_deployment_cache()
    sam = outdir / "sam.json"
    if not sam.exists() or not (outdir / "deployment.zip").exists():
        raise DeployError(f"chalice package wrote no sam.json/deployment.zip to {outdir}")
    return sam


def prune_deployment_cache(keep: int = KEEP_DEPLOYMENT_ZIPS) -> None:
    """Chalice caches one ~35 MB dependency zip per app revision and never prunes them."""
    if not DEPLOYMENTS_DIR.is_dir():
        return
    zips = sorted(DEPLOYMENTS_DIR.glob("*.zip"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in zips[keep:]:
        old.unlink(missing_ok=True)


def lint(sam: Path) -> None:
    """cfn-lint with the repo's .cfnlintrc: any error or warning stops the deploy."""
    done = subprocess.run(
        [_tool("cfn-lint"), "--", str(sam)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise DeployError(f"cfn-lint found problems in the merged template:\n{done.stdout}")


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    source: Path
    content_type: str
    cache_control: str | None = None

    @property
    def size(self) -> int:
        return self.source.stat().st_size


@dataclass
class Plan:
    stage: str
    region: str
    account: str
    template: dict[str, Any]
    package_dir: Path
    parameters: dict[str, str | None]
    frontend_dist: Path
    resources: dict[str, list[str]] = field(default_factory=dict)

    @property
    def stack(self) -> str:
        return stack_name(self.stage)

    @property
    def artifacts_bucket(self) -> str:
        return artifacts_bucket_name(self.stage, self.account)

    @property
    def zip_path(self) -> Path:
        return self.package_dir / "deployment.zip"

    @property
    def sam_path(self) -> Path:
        return self.package_dir / "sam.json"

    def code_upload(self) -> Upload:
        digest = _sha256(self.zip_path)[:20]
        return Upload(
            self.artifacts_bucket,
            f"{self.stage}/deployment-{digest}.zip",
            self.zip_path,
            "application/zip",
        )

    def template_key(self) -> str:
        digest = hashlib.sha256(
            self.sam_path.read_bytes() + self.code_upload().key.encode()
        ).hexdigest()[:20]
        return f"{self.stage}/sam-{digest}.json"

    def frontend_uploads(self, bucket: str) -> list[Upload]:
        return frontend_uploads(self.frontend_dist, bucket)


def frontend_uploads(dist: Path, bucket: str) -> list[Upload]:
    uploads = []
    for path in sorted(p for p in dist.rglob("*") if p.is_file()):
        key = path.relative_to(dist).as_posix()
        content_type = (
            "application/json"
            if path.suffix == ".map"
            else mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        if content_type.startswith("text/") or content_type in ("application/json",):
            content_type += "; charset=utf-8"
        # Vite fingerprints assets/: cache them for good; index.html must be revalidated.
        immutable = key.startswith("assets/")
        cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
        uploads.append(Upload(bucket, key, path, content_type, cache))
    return uploads


def make_plan(
    *,
    stage: str,
    region: str,
    account: str,
    package_dir: Path,
    frontend_dist: Path,
    alarm_email: str | None,
    secret_arn: str | None,
    cloudfront_web_acl_arn: str | None = None,
) -> Plan:
    template = json.loads((package_dir / "sam.json").read_text())
    resources: dict[str, list[str]] = defaultdict(list)
    for logical, res in template["Resources"].items():
        resources[res["Type"]].append(logical)
    parameters: dict[str, str | None] = {
        "Stage": stage,
        "AlarmEmail": alarm_email,
        "AnthropicSecretArn": secret_arn,
        "LogRetentionDays": stage_log_retention(stage),
        # None outside us-east-1: made first by deploy_cloudfront_waf (in us-east-1,
        # where CLOUDFRONT web ACLs live); "" in us-east-1: the stack makes its own.
        "CloudFrontWebAclArn": cloudfront_web_acl_arn or ("" if region == "us-east-1" else None),
    }
    declared = template.get("Parameters", {})
    return Plan(
        stage=stage,
        region=region,
        account=account,
        template=template,
        package_dir=package_dir,
        parameters={k: v for k, v in parameters.items() if k in declared or k == "Stage"},
        frontend_dist=frontend_dist,
        resources={t: sorted(ids) for t, ids in sorted(resources.items())},
    )


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{n / 1000:.1f} KB"


def format_plan(plan: Plan, *, dry_run: bool) -> str:
    code = plan.code_upload()
    functions = plan.resources.get("AWS::Serverless::Function", [])
    params = {
        "Stage": plan.stage,
        "AlarmEmail": plan.parameters["AlarmEmail"]
        or "(previous value on update; required to create)",
        "AnthropicSecretArn": plan.parameters["AnthropicSecretArn"]
        or f"(ARN of secret {secret_name(plan.stage)}, looked up at deploy)",
    }
    if "LogRetentionDays" in plan.parameters:
        params["LogRetentionDays"] = str(plan.parameters["LogRetentionDays"])
    if "CloudFrontWebAclArn" in plan.parameters:
        arn = plan.parameters["CloudFrontWebAclArn"]
        params["CloudFrontWebAclArn"] = (
            arn or "(none: the stack creates its CLOUDFRONT web ACL in us-east-1)"
            if arn is not None
            else f"(WebAclArn of stack {cloudfront_waf_stack_name(plan.stage)} in us-east-1, "
            f"created first from {CLOUDFRONT_WAF_PATH.name})"
        )
    lines = [
        "Deploy plan" + (" (dry run: nothing was sent to AWS)" if dry_run else ""),
        f"  stack        {plan.stack} in {plan.region}, account {plan.account}",
        "  change set   CREATE if the stack does not exist, else UPDATE;"
        f" capabilities {' '.join(CAPABILITIES)}",
        "  parameters",
        *(f"    {k:<20} {v}" for k, v in params.items()),
        f"  template     sam.json ({_mb(plan.sam_path.stat().st_size)}), cfn-lint clean",
        f"  resources    {sum(len(v) for v in plan.resources.values())} in the template"
        " (SAM expands the Serverless:: ones)",
    ]
    width = max(len(t) for t in plan.resources)
    for rtype, ids in plan.resources.items():
        lines.append(f"    {rtype:<{width}} {len(ids):>3}  {', '.join(ids)}")
    frontend_bucket = "<FrontendBucketName output>"
    uploads = [
        (code, f"Lambda code of {len(functions)} functions"),
        (
            Upload(plan.artifacts_bucket, plan.template_key(), plan.sam_path, "application/json"),
            "template, CodeUri -> the zip above",
        ),
        *(
            (u, f"{u.content_type}; {u.cache_control}")
            for u in plan.frontend_uploads(frontend_bucket)
        ),
    ]
    lines.append(f"  S3 uploads   {len(uploads)}")
    for up, what in uploads:
        lines.append(f"    s3://{up.bucket}/{up.key}  {_mb(up.size)}  {what}")
    lines += [
        "  then         execute the change set, wait for the stack, upload the frontend,",
        "               invalidate CloudFront /*, print the FrontendUrl output",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- AWS steps


def ensure_artifacts_bucket(
    s3: Any, bucket: str, region: str, account: str, partition: str = "aws"
) -> None:
    """Private, encrypted, TLS-only bucket for deployment artifacts (created once)."""
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account)
        return
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise DeployError(f"artifacts bucket {bucket} is not usable: {e}") from e
    create: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**create)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-old-artifacts",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Expiration": {"Days": 90},
                }
            ]
        },
    )
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "TlsOnly",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [
                            f"arn:{partition}:s3:::{bucket}",
                            f"arn:{partition}:s3:::{bucket}/*",
                        ],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            }
        ),
    )


def upload(s3: Any, up: Upload, *, skip_existing: bool = False) -> None:
    from botocore.exceptions import ClientError

    if skip_existing:
        try:
            s3.head_object(Bucket=up.bucket, Key=up.key)
            return
        except ClientError:
            pass
    extra: dict[str, str] = {"ContentType": up.content_type}
    if up.cache_control:
        extra["CacheControl"] = up.cache_control
    s3.upload_file(str(up.source), up.bucket, up.key, ExtraArgs=extra)


def point_code_at(template: dict[str, Any], code: Upload) -> dict[str, Any]:
    """What ``aws cloudformation package`` does to CodeUri: local zip -> S3 object."""
    out = json.loads(json.dumps(template))
    local = {"./deployment.zip", "deployment.zip"}
    for res in out["Resources"].values():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Serverless::Function" and props.get("CodeUri") in local:
            props["CodeUri"] = {"Bucket": code.bucket, "Key": code.key}
    return out


def publish_package(s3: Any, plan: Plan) -> str:
    """Uploads code and template; returns the TemplateURL."""
    code = plan.code_upload()
    upload(s3, code, skip_existing=True)
    body = json.dumps(point_code_at(plan.template, code), indent=1)
    key = plan.template_key()
    s3.put_object(
        Bucket=plan.artifacts_bucket, Key=key, Body=body.encode(), ContentType="application/json"
    )
    return f"https://{plan.artifacts_bucket}.s3.{plan.region}.amazonaws.com/{key}"


def _stack_status(cfn: Any, name: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        return str(cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])
    except ClientError as e:
        if "does not exist" in str(e):
            return None
        raise


def deploy_stack(cfn: Any, plan: Plan, template_url: str) -> dict[str, str]:
    return deploy_change_set(
        cfn, plan.stack, plan.stage, plan.parameters, {"TemplateURL": template_url}
    )


def deploy_cloudfront_waf(cfn_us_east_1: Any, stage: str) -> str:
    """The CLOUDFRONT web ACL for a stack outside us-east-1 (WAF keeps them there): its
    own small stack in us-east-1 from infra/cloudfront-waf.json; returns its ARN."""
    outputs = deploy_change_set(
        cfn_us_east_1,
        cloudfront_waf_stack_name(stage),
        stage,
        {"Stage": stage},
        {"TemplateBody": CLOUDFRONT_WAF_PATH.read_text()},
    )
    if "WebAclArn" not in outputs:
        raise DeployError(f"stack {cloudfront_waf_stack_name(stage)} has no WebAclArn output")
    return outputs["WebAclArn"]


def deploy_change_set(
    cfn: Any,
    stack: str,
    stage: str,
    parameters: dict[str, str | None],
    template: dict[str, str],
) -> dict[str, str]:
    """Creates or updates ``stack`` through a change set; returns its outputs."""
    status = _stack_status(cfn, stack)
    if status == "ROLLBACK_COMPLETE":
        raise DeployError(
            f"stack {stack} is ROLLBACK_COMPLETE (its creation failed): delete it first"
        )
    if status and status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        raise DeployError(f"stack {stack} is busy ({status}): try again when it settles")
    creating = status in (None, "REVIEW_IN_PROGRESS")
    params: list[dict[str, Any]] = []
    for key, value in parameters.items():
        if value is not None:
            params.append({"ParameterKey": key, "ParameterValue": value})
        elif not creating:
            params.append({"ParameterKey": key, "UsePreviousValue": True})
        else:
            raise Refusal(f"parameter {key} is required to create the stack")
    change_set = f"deploy-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    cfn.create_change_set(
        StackName=stack,
        ChangeSetName=change_set,
        ChangeSetType="CREATE" if creating else "UPDATE",
        **template,
        Parameters=params,
        Capabilities=CAPABILITIES,
        Tags=[
            {"Key": "app", "Value": "conversation-studio"},
            {"Key": "stage", "Value": stage},
        ],
    )
    print(f"change set {change_set} ({'CREATE' if creating else 'UPDATE'}) created; waiting")
    try:
        cfn.get_waiter("change_set_create_complete").wait(
            StackName=stack,
            ChangeSetName=change_set,
            WaiterConfig={"Delay": 5, "MaxAttempts": 120},
        )
    except Exception as e:
        desc = cfn.describe_change_set(StackName=stack, ChangeSetName=change_set)
        reason = str(desc.get("StatusReason", ""))
        if "didn't contain changes" in reason or "No updates" in reason:
            print("no changes to the stack")
            cfn.delete_change_set(StackName=stack, ChangeSetName=change_set)
            return _outputs(cfn, stack)
        raise DeployError(f"change set failed: {reason or e}") from e
    cfn.execute_change_set(StackName=stack, ChangeSetName=change_set)
    waiter = "stack_create_complete" if creating else "stack_update_complete"
    print(f"executing; waiting for {stack} (CloudFront can take 15 minutes)")
    try:
        cfn.get_waiter(waiter).wait(StackName=stack, WaiterConfig={"Delay": 15, "MaxAttempts": 240})
    except Exception as e:
        raise DeployError(f"stack {stack} failed: {_failure_reasons(cfn, stack)}") from e
    return _outputs(cfn, stack)


def _failure_reasons(cfn: Any, stack: str) -> str:
    events = cfn.describe_stack_events(StackName=stack)["StackEvents"][:50]
    failed = [
        f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
        for e in events
        if str(e.get("ResourceStatus", "")).endswith("FAILED")
    ]
    return "; ".join(failed[:5]) or "see the stack's events"


def _outputs(cfn: Any, stack: str) -> dict[str, str]:
    desc = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}


def distribution_id(cfn: Any, stack: str) -> str:
    detail = cfn.describe_stack_resource(StackName=stack, LogicalResourceId="FrontendDistribution")
    return str(detail["StackResourceDetail"]["PhysicalResourceId"])


def publish_frontend(
    s3: Any, cloudfront: Any, plan: Plan, bucket: str, distribution: str | None
) -> None:
    uploads = plan.frontend_uploads(bucket)
    # Assets first, index.html last: a reader never gets a page whose assets are missing.
    for up in sorted(uploads, key=lambda u: u.key == "index.html"):
        upload(s3, up)
    print(f"uploaded {len(uploads)} frontend files to s3://{bucket}")
    if distribution:
        cloudfront.create_invalidation(
            DistributionId=distribution,
            InvalidationBatch={
                "Paths": {"Quantity": 1, "Items": ["/*"]},
                "CallerReference": f"deploy-{time.time_ns()}",
            },
        )


def resolve_secret(secrets: Any, stage: str) -> str:
    from botocore.exceptions import ClientError

    name = secret_name(stage)
    try:
        return str(secrets.describe_secret(SecretId=name)["ARN"])
    except ClientError as e:
        raise Refusal(
            f"no Anthropic key secret {name}: create it (aws secretsmanager create-secret"
            f" --name {name} --secret-string <key>) or pass --anthropic-secret-arn"
        ) from e


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m infra.deploy", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--stage", default="dev", choices=configured_stages())
    parser.add_argument("--region", help="default: the AWS profile's region, else us-east-1")
    parser.add_argument("--alarm-email", help="where CloudWatch alarms are mailed")
    parser.add_argument(
        "--anthropic-secret-arn",
        help="Secrets Manager secret with the Anthropic key (default: brightrun/<stage>/anthropic)",
    )
    parser.add_argument(
        "--cloudfront-web-acl-arn",
        help="outside us-east-1: an existing CLOUDFRONT web ACL (default: deploy "
        "infra/cloudfront-waf.json in us-east-1 first)",
    )
    parser.add_argument("--frontend-dist", type=Path, default=FRONTEND_DIR / "dist")
    parser.add_argument("--out", type=Path, help="keep the package here (default: a temp dir)")
    parser.add_argument(
        "--dry-run", action="store_true", help="package, lint and print the plan; no AWS calls"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    import boto3

    session = boto3.Session(region_name=args.region)
    region = args.region or session.region_name or DEFAULT_REGION
    if not args.dry_run and session.get_credentials() is None:
        raise Refusal(
            "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY); use --dry-run to package and plan without AWS"
        )

    def client(service: str) -> Any:
        return session.client(service, region_name=region)  # type: ignore[call-overload]

    account, partition = UNKNOWN_ACCOUNT, "aws"
    if not args.dry_run:
        identity = client("sts").get_caller_identity()
        account, partition = identity["Account"], identity["Arn"].split(":")[1]

    build_frontend(args.frontend_dist)
    with tempfile.TemporaryDirectory(prefix="brightrun-package-") as tmp:
        outdir = args.out or Path(tmp)
        outdir.mkdir(parents=True, exist_ok=True)
        print(f"packaging stage {args.stage} (chalice package --merge-template)...", flush=True)
        sam = package(args.stage, region, outdir)
        lint(sam)
        secret = args.anthropic_secret_arn
        if not args.dry_run and not secret:
            secret = resolve_secret(client("secretsmanager"), args.stage)
        plan = make_plan(
            stage=args.stage,
            region=region,
            account=account,
            package_dir=outdir,
            frontend_dist=args.frontend_dist,
            alarm_email=args.alarm_email,
            secret_arn=secret,
            cloudfront_web_acl_arn=args.cloudfront_web_acl_arn,
        )
        print(format_plan(plan, dry_run=args.dry_run))
        if args.dry_run:
            return 0
        cfn = client("cloudformation")
        if (
            "CloudFrontWebAclArn" in plan.parameters
            and plan.parameters["CloudFrontWebAclArn"] is None
        ):
            print(f"creating the CloudFront web ACL in us-east-1 ({CLOUDFRONT_WAF_PATH.name})")
            plan.parameters["CloudFrontWebAclArn"] = deploy_cloudfront_waf(
                session.client("cloudformation", region_name="us-east-1"), args.stage
            )
        if plan.parameters["AlarmEmail"] is None and _stack_status(cfn, plan.stack) is None:
            raise Refusal("--alarm-email is required to create the stack (alarms are mailed there)")
        s3 = client("s3")
        ensure_artifacts_bucket(s3, plan.artifacts_bucket, region, account, partition)
        template_url = publish_package(s3, plan)
        outputs = deploy_stack(cfn, plan, template_url)
        distribution = distribution_id(cfn, plan.stack)
    publish_frontend(s3, client("cloudfront"), plan, outputs["FrontendBucketName"], distribution)
    print(f"FrontendUrl: {outputs.get('FrontendUrl')}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except Refusal as e:
        print(f"deploy refused: {e}", file=sys.stderr)
        return 2
    except DeployError as e:
        print(f"deploy failed: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
