"""The deployable template: ``chalice package --merge-template infra/template.json``.

Packages the real app into a temp dir (Chalice reuses its dependency zip from
.chalice/deployments when requirements and app are unchanged; a cold package downloads
the Lambda wheels, ~30 s), lints the merged sam.json with cfn-lint and checks what the
deployment relies on: the merge fragments land on Chalice's own resources, the policies,
the buckets, the topic, the state machine, the tables' tenant-first keys and the alarms.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.store import list_snapshots
from chalicelib.store.records import ALL_RECORDS
from infra.build import (
    API_FUNCTION,
    ASL_PATH,
    ASYNC_FUNCTIONS,
    CLOUDFRONT_WAF_PATH,
    EXPORT_FUNCTION,
    FUNCTION_ROLES,
    LAMBDA_FUNCTIONS,
    RESERVED_CONCURRENCY,
    ROOT,
    TEMPLATE_PATH,
    WORKFLOW_FUNCTIONS,
)
from infra.deploy import prune_deployment_cache

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
TENANT_FIRST_KEYS = {
    "tenant_id",
    "dataset_key",
    "job_key",
    "conversation_key",
    "template_key",
    "limiter_key",
}
# tenant#dataset, tenant#entity, tenant#dataset (the trash)
TENANT_FIRST_INDEX_KEYS = {"dataset_key", "entity_key", "trash_key"}
DYNAMODB_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
}


def cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "cfn-lint"), "--", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chalice-package")
    done = subprocess.run(
        [
            str(BIN / "chalice"),
            "--project-dir",
            str(ROOT),
            "package",
            "--stage",
            "dev",
            "--merge-template",
            str(TEMPLATE_PATH),
            str(out),
        ],
        cwd=ROOT,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    prune_deployment_cache()  # Chalice keeps a ~35 MB zip per app revision
    return out


@pytest.fixture(scope="module")
def sam(package_dir: Path) -> dict[str, Any]:
    return json.loads((package_dir / "sam.json").read_text())


def test_the_deployment_package_leaves_the_local_stack_out(package_dir: Path) -> None:
    """Chalice zips app.py and all of chalicelib/: the local stack, the simulator and
    the synthetic-data makers live in devstack/ so that no function carries them."""
    import zipfile

    with zipfile.ZipFile(package_dir / "deployment.zip") as z:
        names = z.namelist()
    assert "app.py" in names and "chalicelib/bootstrap.py" in names
    assert not [n for n in names if n.startswith(("devstack/", "chalicelib/local/"))]
    assert "chalicelib/quality/synthetic.py" not in names
    assert "moto/__init__.py" not in names  # test-only dependencies stay out too


def res(sam: dict[str, Any], logical: str) -> dict[str, Any]:
    assert logical in sam["Resources"], f"{logical} missing from the merged template"
    return sam["Resources"][logical]


def test_merged_template_is_lint_clean(package_dir: Path) -> None:
    done = cfn_lint(package_dir / "sam.json")
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_lint_catches_a_broken_merge(package_dir: Path, tmp_path: Path) -> None:
    # The clean result above means something: a fragment whose logical id misses
    # Chalice's (a renamed function) becomes a function without code, which lint rejects.
    broken = json.loads((package_dir / "sam.json").read_text())
    broken["Resources"]["PrepareJobFn"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {"Tracing": "Active", "Environment": {"Variables": {"A": "b"}}},
    }
    broken["Resources"]["FailedExecutionsAlarm"]["Properties"]["AlarmActions"] = [
        {"Ref": "NoSuchTopic"}
    ]
    path = tmp_path / "sam.json"
    path.write_text(json.dumps(broken))
    done = cfn_lint(path)
    assert done.returncode != 0
    assert "NoSuchTopic" in done.stdout


def test_fragments_merge_into_chalice_functions(sam: dict[str, Any]) -> None:
    functions = {
        k: v for k, v in sam["Resources"].items() if v["Type"] == "AWS::Serverless::Function"
    }
    assert set(functions) == set(LAMBDA_FUNCTIONS)
    handlers = {k: v["Properties"]["Handler"] for k, v in functions.items()}
    assert handlers[API_FUNCTION] == "app.app"
    for fn in LAMBDA_FUNCTIONS:
        props = functions[fn]["Properties"]
        if fn != API_FUNCTION:
            snake = re.sub(r"(?<!^)([A-Z])", r"_\1", fn).lower()
            assert handlers[fn] == f"app.{snake}"
        assert props["CodeUri"] == "./deployment.zip"
        assert props["Runtime"] == "python3.11"
        assert props["Tracing"] == "Active"
        assert "Layers" not in props  # automatic_layer is off
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "BrightRun"
        assert env["POWERTOOLS_SERVICE_NAME"] == "conversation-studio"
        assert env["TABLE_PREFIX"] == {"Fn::Sub": "brightrun-${Stage}"}
        # Chalice's role for this function is the one the policies attach to.
        assert props["Role"] == {"Fn::GetAtt": [FUNCTION_ROLES[fn], "Arn"]}
        assert res(sam, FUNCTION_ROLES[fn])["Type"] == "AWS::IAM::Role"
    assert (
        functions["GenerateItem"]["Properties"]["Timeout"] == 420
    )  # covers the SDK's 3 x 120 s attempts
    assert functions[API_FUNCTION]["Properties"]["Timeout"] <= 29  # API Gateway's limit
    api_env = functions[API_FUNCTION]["Properties"]["Environment"]["Variables"]
    assert api_env["RUN_EXPORT_FUNCTION"] == {"Ref": EXPORT_FUNCTION}
    assert api_env["AUTH_MODE"] == "cognito"
    # Log groups are named after functions that exist (Chalice's API one was not).
    for logical, r in sam["Resources"].items():
        if r["Type"] == "AWS::Logs::LogGroup" and logical != "ApiAccessLogGroup":
            name = r["Properties"]["LogGroupName"]["Fn::Sub"]
            assert name.startswith("/aws/lambda/"), logical
            refs = re.findall(r"\$\{([^}]+)\}", name)
            assert all(ref in sam["Resources"] or ref in sam["Parameters"] for ref in refs)


def test_roles_get_exactly_the_needed_permissions(sam: dict[str, Any]) -> None:
    policy = res(sam, "FunctionPolicy")
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    roles = {r["Ref"] for r in policy["Properties"]["Roles"]}
    assert roles == set(FUNCTION_ROLES.values())
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    tables = set(statements["Tables"]["Action"])
    assert tables == DYNAMODB_ACTIONS
    table_ids = {k for k, v in sam["Resources"].items() if v["Type"] == "AWS::DynamoDB::Table"}
    arns = statements["Tables"]["Resource"]
    assert {a["Fn::GetAtt"][0] for a in arns if "Fn::GetAtt" in a} == table_ids
    assert {a["Fn::Sub"] for a in arns if "Fn::Sub" in a} == {
        f"${{{t}.Arn}}/index/*" for t in table_ids
    }
    assert statements["Exports"]["Resource"] == {"Fn::Sub": "${ExportBucket.Arn}/*"}
    assert set(statements["Notify"]["Action"]) == {"sns:Publish", "sns:Subscribe"}
    assert statements["Notify"]["Resource"] == {"Ref": "NotificationTopic"}
    states = {statements["Workflow"]["Action"], *statements["Executions"]["Action"]}
    assert states == {"states:StartExecution", "states:DescribeExecution", "states:StopExecution"}
    assert statements["AnthropicKey"] == {
        "Sid": "AnthropicKey",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": {"Ref": "AnthropicSecretArn"},
    }
    for s in statements.values():
        assert s["Effect"] == "Allow" and s["Resource"] != "*"
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        assert not any(a.endswith("*") for a in actions)
    invoke = res(sam, "ExportInvokePolicy")["Properties"]
    assert invoke["Roles"] == [{"Ref": FUNCTION_ROLES[API_FUNCTION]}]
    (stmt,) = invoke["PolicyDocument"]["Statement"]
    assert stmt["Action"] == "lambda:InvokeFunction"
    assert stmt["Resource"] == {"Fn::GetAtt": [EXPORT_FUNCTION, "Arn"]}
    # Chalice's inline policy (the .chalice policy file) only carries X-Ray.
    inline = res(sam, "GenerateItemRole")["Properties"]["Policies"]
    (doc,) = [p["PolicyDocument"] for p in inline]
    assert {a for s in doc["Statement"] for a in s["Action"]} == {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }


def test_export_bucket_is_private_encrypted_tls_only(sam: dict[str, Any]) -> None:
    bucket = res(sam, "ExportBucket")["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (sse,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    policy = res(sam, "ExportBucketPolicy")["Properties"]
    assert policy["Bucket"] == {"Ref": "ExportBucket"}
    (deny,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [
        {"Fn::GetAtt": ["ExportBucket", "Arn"]},
        {"Fn::Sub": "${ExportBucket.Arn}/*"},
    ]


def test_topics(sam: dict[str, Any]) -> None:
    topic = res(sam, "NotificationTopic")
    assert topic["Type"] == "AWS::SNS::Topic"
    assert topic["Properties"]["TopicName"] == {"Fn::Sub": "brightrun-${Stage}-notifications"}
    alarms = res(sam, "AlarmTopic")["Properties"]
    assert alarms["Subscription"] == [{"Endpoint": {"Ref": "AlarmEmail"}, "Protocol": "email"}]


def test_state_machine_is_the_asl_with_function_arns(sam: dict[str, Any]) -> None:
    machine = res(sam, "GenerationStateMachine")
    assert machine["Type"] == "AWS::StepFunctions::StateMachine"
    asl, mapping = machine["Properties"]["DefinitionString"]["Fn::Sub"]
    assert asl == ASL_PATH.read_text()
    placeholders = set(re.findall(r"\$\{([^}]+)\}", asl))
    assert placeholders == set(mapping)
    for placeholder, logical in WORKFLOW_FUNCTIONS.items():
        assert mapping[placeholder] == {"Fn::GetAtt": [logical, "Arn"]}
        assert res(sam, logical)["Type"] == "AWS::Serverless::Function"
    assert mapping["NotificationTopicArn"] == {"Ref": "NotificationTopic"}
    assert mapping["ExportBucketName"] == {"Ref": "ExportBucket"}  # the ResultWriter's
    # The role may invoke exactly those functions.
    role = res(sam, machine["Properties"]["RoleArn"]["Fn::GetAtt"][0])
    policies = {p["PolicyName"]: p for p in role["Properties"]["Policies"]}
    assert set(policies) == {"invoke-and-notify", "distributed-map"}
    invoke = next(
        s
        for s in policies["invoke-and-notify"]["PolicyDocument"]["Statement"]
        if s["Action"] == "lambda:InvokeFunction"
    )
    assert invoke["Resource"] == [{"Fn::GetAtt": [fn, "Arn"]} for fn in WORKFLOW_FUNCTIONS.values()]
    # The Distributed Map: its child executions, and jobs/ in the export bucket only.
    dm = {s["Sid"]: s for s in policies["distributed-map"]["PolicyDocument"]["Statement"]}
    assert dm["ChildExecutions"]["Action"] == "states:StartExecution"
    assert (
        "stateMachine:brightrun-${Stage}-generation" in dm["ChildExecutions"]["Resource"]["Fn::Sub"]
    )
    assert dm["ChildExecutionState"]["Resource"]["Fn::Sub"].endswith(
        "execution:brightrun-${Stage}-generation/*"
    )
    assert dm["ItemsAndResults"]["Resource"] == {"Fn::Sub": "${ExportBucket.Arn}/jobs/*"}


def test_tables_keys_start_with_the_tenant(sam: dict[str, Any]) -> None:
    tables = {k: v for k, v in sam["Resources"].items() if v["Type"] == "AWS::DynamoDB::Table"}
    assert len(tables) == len(ALL_RECORDS)
    hash_keys = set()
    for logical, table in tables.items():
        props = table["Properties"]
        (hash_key,) = [k["AttributeName"] for k in props["KeySchema"] if k["KeyType"] == "HASH"]
        assert hash_key in TENANT_FIRST_KEYS, logical
        hash_keys.add(hash_key)
        for index in props.get("GlobalSecondaryIndexes", []):
            (ih,) = [k["AttributeName"] for k in index["KeySchema"] if k["KeyType"] == "HASH"]
            assert ih in TENANT_FIRST_INDEX_KEYS, (logical, index["IndexName"])
        assert props["SSESpecification"] == {"SSEEnabled": True}
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert table["DeletionPolicy"] == "Retain"
    assert hash_keys == TENANT_FIRST_KEYS


def test_alarms_on_failed_executions_and_lambda_errors(sam: dict[str, Any]) -> None:
    alarms = {
        k: v["Properties"] for k, v in sam["Resources"].items() if v["Type"].endswith("Alarm")
    }
    failed = alarms["FailedExecutionsAlarm"]
    assert (failed["Namespace"], failed["MetricName"]) == ("AWS/States", "ExecutionsFailed")
    assert failed["Dimensions"] == [
        {"Name": "StateMachineArn", "Value": {"Ref": "GenerationStateMachine"}}
    ]
    watched = set()
    for props in alarms.values():
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        if props["Namespace"] == "AWS/Lambda":
            assert props["MetricName"] == "Errors"
            (dim,) = props["Dimensions"]
            watched.add(dim["Value"]["Ref"])
    assert watched == set(LAMBDA_FUNCTIONS)


# --------------------------------------------------------------------------- hardening


def checkov_bin() -> Path | None:
    """checkov lives in its own venv (its pins conflict with the app's boto3)."""
    for candidate in (ROOT / ".venv-checkov" / "bin" / "checkov", BIN / "checkov"):
        if candidate.exists():
            return candidate
    return None


def checkov(path: Path) -> dict[str, Any]:
    found = checkov_bin()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("checkov is not installed: make setup installs it into .venv-checkov")
        pytest.skip("checkov is not installed (make setup installs it into .venv-checkov)")
    done = subprocess.run(
        [
            str(found),
            "-f",
            str(path),
            "--framework",
            "cloudformation",
            "--skip-download",
            "-o",
            "json",
        ],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(done.stdout)
    return report[0] if isinstance(report, list) else report


def assert_checkov_clean(report: dict[str, Any]) -> None:
    failed = [
        f"{f['check_id']} {f['resource']}: {f['check_name']}"
        for f in report["results"]["failed_checks"]
    ]
    assert report["summary"]["failed"] == 0, "\n".join(failed)
    assert report["summary"]["passed"] > 100
    for skipped in report["results"]["skipped_checks"]:
        comment = skipped["check_result"].get("suppress_comment", "")
        assert len(comment) > 30, (skipped["check_id"], skipped["resource"], comment)


def test_checkov_passes_on_the_template_and_every_skip_says_why() -> None:
    assert_checkov_clean(checkov(TEMPLATE_PATH))


def test_checkov_passes_on_what_is_deployed(package_dir: Path) -> None:
    """The merged package (Chalice's API, functions, roles and log groups included)."""
    assert_checkov_clean(checkov(package_dir / "sam.json"))


def test_checkov_fails_a_template_that_lost_its_protection(tmp_path: Path) -> None:
    """The clean results above mean something: without the WAF, the reserved concurrency
    and the DLQ, checkov fails exactly those checks."""
    broken = json.loads(TEMPLATE_PATH.read_text())
    config = broken["Resources"]["FrontendDistribution"]["Properties"]["DistributionConfig"]
    del config["WebACLId"]
    del broken["Resources"]["GenerateItem"]["Properties"]["ReservedConcurrentExecutions"]
    del broken["Resources"][EXPORT_FUNCTION]["Properties"]["DeadLetterQueue"]
    del broken["Resources"]["ApiHandlerLogGroup"]["Properties"]["RetentionInDays"]
    path = tmp_path / "template.json"
    path.write_text(json.dumps(broken))
    report = checkov(path)
    failed = {
        (f["check_id"], f["resource"].split(".")[-1]) for f in report["results"]["failed_checks"]
    }
    assert failed == {
        ("CKV_AWS_68", "FrontendDistribution"),
        ("CKV_AWS_115", "GenerateItem"),
        ("CKV_AWS_116", EXPORT_FUNCTION),
        ("CKV_AWS_66", "ApiHandlerLogGroup"),
    }


def test_the_api_stage_and_cloudfront_have_waf_and_access_logs(sam: dict[str, Any]) -> None:
    api = res(sam, "RestAPI")
    assert api["Type"] == "AWS::Serverless::Api"
    assert api["Properties"]["StageName"] == "api"  # Chalice's, kept by the merge
    assert api["Properties"]["TracingEnabled"] is True
    access = api["Properties"]["AccessLogSetting"]
    assert access["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert set(json.loads(access["Format"])) >= {"requestId", "ip", "status", "wafStatus"}
    association = res(sam, "ApiWebAclAssociation")["Properties"]
    assert association["WebACLArn"] == {"Fn::GetAtt": ["ApiWebAcl", "Arn"]}
    assert "/restapis/${RestAPI}/stages/${RestAPI.Stage}" in association["ResourceArn"]["Fn::Sub"]
    for acl, scope in (("ApiWebAcl", "REGIONAL"), ("CloudFrontWebAcl", "CLOUDFRONT")):
        props = res(sam, acl)["Properties"]
        assert props["Scope"] == scope and props["DefaultAction"] == {"Allow": {}}
        rules = {r["Name"]: r for r in props["Rules"]}
        rate = rules["RateLimitPerIp"]["Statement"]["RateBasedStatement"]
        assert rate == {"Limit": {"Ref": "WafRateLimit"}, "AggregateKeyType": "IP"}
        assert {
            "AWSManagedRulesCommonRuleSet",
            "AWSManagedRulesKnownBadInputsRuleSet",
            "AWSManagedRulesAmazonIpReputationList",
        } <= set(rules)
        common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
        # Large bodies (chunk files) and HTML-like text (documents are data) stay allowed.
        assert {o["Name"] for o in common["RuleActionOverrides"]} == {
            "SizeRestrictions_BODY",
            "CrossSiteScripting_BODY",
        }
    assert res(sam, "CloudFrontWebAcl")["Condition"] == "CreateCloudFrontWebAcl"
    config = res(sam, "FrontendDistribution")["Properties"]["DistributionConfig"]
    assert config["WebACLId"]["Fn::If"][0] == "CreateCloudFrontWebAcl"
    assert config["WebACLId"]["Fn::If"][2] == {"Ref": "CloudFrontWebAclArn"}
    assert config["Logging"]["Bucket"] == {"Fn::GetAtt": ["AccessLogBucket", "DomainName"]}
    assert "CloudFrontWebAclOutsideUsEast1" in sam["Rules"]
    standalone = json.loads(CLOUDFRONT_WAF_PATH.read_text())
    assert (
        standalone["Resources"]["CloudFrontWebAcl"]["Properties"]["Rules"]
        == (res(sam, "CloudFrontWebAcl")["Properties"]["Rules"])
    )


def test_buckets_log_to_the_access_log_bucket(sam: dict[str, Any]) -> None:
    for bucket, prefix in (("ExportBucket", "s3/export/"), ("FrontendBucket", "s3/frontend/")):
        logging = res(sam, bucket)["Properties"]["LoggingConfiguration"]
        assert logging == {
            "DestinationBucketName": {"Ref": "AccessLogBucket"},
            "LogFilePrefix": prefix,
        }
        assert res(sam, bucket)["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = {
        r["Id"]: r
        for r in res(sam, "ExportBucket")["Properties"]["LifecycleConfiguration"]["Rules"]
    }
    # snapshots older than a day are never read (store/list_snapshots.MAX_AGE_MS)
    snapshots = rules["expire-list-snapshots"]
    assert snapshots["Prefix"] == f"{list_snapshots.PREFIX}/"
    assert snapshots["ExpirationInDays"] * 24 * 3600 * 1000 > list_snapshots.MAX_AGE_MS
    assert snapshots["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    log_bucket = res(sam, "AccessLogBucket")["Properties"]
    assert all(log_bucket["PublicAccessBlockConfiguration"].values())
    (rule,) = log_bucket["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == {"Ref": "LogRetentionDays"}
    statements = res(sam, "AccessLogBucketPolicy")["Properties"]["PolicyDocument"]["Statement"]
    assert {s["Sid"] for s in statements} == {"S3ServerAccessLogs", "TlsOnly"}


def test_every_function_has_reserved_concurrency_and_async_ones_a_dlq(
    sam: dict[str, Any],
) -> None:
    functions = {
        k: v["Properties"]
        for k, v in sam["Resources"].items()
        if v["Type"] == "AWS::Serverless::Function"
    }
    assert functions["GenerateItem"]["ReservedConcurrentExecutions"] == {
        "Ref": "GenerationReservedConcurrency"
    }
    for fn, props in functions.items():
        assert props["ReservedConcurrentExecutions"] == RESERVED_CONCURRENCY[fn], fn
    fixed = sum(v for v in RESERVED_CONCURRENCY.values() if isinstance(v, int))
    defaults = sum(
        sam["Parameters"][v["Ref"]]["Default"]
        for v in RESERVED_CONCURRENCY.values()
        if isinstance(v, dict)
    )
    assert fixed + defaults <= 900  # the account default is 1,000, of which 100 stay unreserved
    assert functions[EXPORT_FUNCTION]["DeadLetterQueue"] == {
        "Type": "SQS",
        "TargetArn": {"Fn::GetAtt": ["ExportDeadLetterQueue", "Arn"]},
    }
    assert [fn for fn, props in functions.items() if "DeadLetterQueue" in props] == list(
        ASYNC_FUNCTIONS
    )
    policy = res(sam, "ExportDeadLetterPolicy")["Properties"]
    assert policy["Roles"] == [{"Ref": FUNCTION_ROLES[EXPORT_FUNCTION]}]
    (stmt,) = policy["PolicyDocument"]["Statement"]
    assert stmt["Action"] == "sqs:SendMessage"
    alarm = res(sam, "ExportDeadLetterAlarm")["Properties"]
    assert alarm["Namespace"] == "AWS/SQS" and alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_every_log_group_keeps_logs_for_the_stage_retention(sam: dict[str, Any]) -> None:
    groups = {k: v for k, v in sam["Resources"].items() if v["Type"] == "AWS::Logs::LogGroup"}
    assert len(groups) == len(LAMBDA_FUNCTIONS) + 1  # one per function, plus API access
    for logical, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, logical
        assert "LogGroupName" in group["Properties"], logical


def test_the_local_stack_leaves_out_what_moto_cannot_create() -> None:
    from devstack.launcher import localize_template
    from infra.build import build_template

    local = localize_template(build_template())
    types = {r["Type"] for r in local["Resources"].values()}
    assert not types & {
        "AWS::WAFv2::WebACL",
        "AWS::WAFv2::WebACLAssociation",
        "AWS::Serverless::Api",
        "AWS::ApiGateway::Account",
        "AWS::Logs::LogGroup",
        "AWS::CloudWatch::Alarm",
    }
    assert "Rules" not in local
    assert {"ExportBucket", "ExportDeadLetterQueue", "GenerationStateMachine"} <= set(
        local["Resources"]
    )


def test_stalled_jobs_are_checked_on_a_schedule(sam: dict[str, Any]) -> None:
    from infra.build import RECOVERY_FUNCTION, STALLED_JOB_SCHEDULE

    fn = res(sam, RECOVERY_FUNCTION)["Properties"]
    assert fn["Handler"] == "app.recover_stalled_jobs"
    rule = res(sam, "StalledJobSchedule")
    assert rule["Type"] == "AWS::Events::Rule"
    assert rule["Properties"]["ScheduleExpression"] == STALLED_JOB_SCHEDULE
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [RECOVERY_FUNCTION, "Arn"]}
    permission = res(sam, "StalledJobSchedulePermission")["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["StalledJobSchedule", "Arn"]}
    # The one cross-tenant read: a Scan of the jobs table, given to this function only.
    scan = res(sam, "StalledJobScanPolicy")["Properties"]
    assert scan["Roles"] == [{"Ref": FUNCTION_ROLES[RECOVERY_FUNCTION]}]
    (stmt,) = scan["PolicyDocument"]["Statement"]
    assert stmt["Action"] == "dynamodb:Scan"
    assert stmt["Resource"] == {"Fn::GetAtt": ["JobsTable", "Arn"]}
