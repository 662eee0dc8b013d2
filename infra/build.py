"""Writes infra/template.json: the CloudFormation resources beside the Chalice app.

The tables are derived from the pynamodb records (one source of truth for keys and
indexes), the state machine's definition is the ASL file under statemachines/. The
output is plain CloudFormation, merged with the app by
``chalice package --merge-template infra/template.json`` and created as-is by the local
stack through moto's CloudFormation, so local and cloud cannot drift.

Run ``python -m infra.build`` after changing records or the ASL; a test fails when the
committed template is out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pynamodb.attributes import NumberAttribute, TTLAttribute
from pynamodb.indexes import AllProjection, KeysOnlyProjection

from chalicelib.store.records import ALL_RECORDS, BaseRecord

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "infra" / "template.json"
ASL_PATH = ROOT / "statemachines" / "generation.asl.json"

# Logical ids that ``chalice package`` gives app.py's functions (tests/integration/
# test_infra.py packages the app and checks them): the API handler is "APIHandler", each
# ``@app.lambda_function(name="x_y")`` is "XY". With ``autogen_policy`` off (.chalice/
# config.json) Chalice also generates one role per function, "<resource>Role", where the
# API handler's resource is "api_handler", hence "ApiHandlerRole".
API_FUNCTION = "APIHandler"
EXPORT_FUNCTION = "RunExport"  # invoked asynchronously by the API (POST .../exports)
# The stalled-job check, invoked by an EventBridge schedule (``STALLED_JOB_SCHEDULE``).
RECOVERY_FUNCTION = "RecoverStalledJobs"
STALLED_JOB_SCHEDULE = "rate(5 minutes)"
# Functions the state machine invokes: ASL placeholder -> logical id.
WORKFLOW_FUNCTIONS = {
    "PrepareJobArn": "PrepareJob",
    "GenerateItemArn": "GenerateItem",
    "RecordItemFailureArn": "RecordItemFailure",
    "FinishJobArn": "FinishJob",
    "SubmitBatchArn": "SubmitBatch",
    "PollBatchArn": "PollBatch",
}
LAMBDA_FUNCTIONS = [
    API_FUNCTION,
    *WORKFLOW_FUNCTIONS.values(),
    EXPORT_FUNCTION,
    RECOVERY_FUNCTION,
]
FUNCTION_ROLES = {
    fn: "ApiHandlerRole" if fn == API_FUNCTION else f"{fn}Role" for fn in LAMBDA_FUNCTIONS
}
# Physical names, stage-scoped like every other resource: predictable for logs and
# ``aws lambda invoke``, and they let the API's log group be named without a reference
# (Chalice names it "/aws/lambda/${ApiHandler}", an id that does not exist).
FUNCTION_NAMES = {
    fn: "api"
    if fn == API_FUNCTION
    else "".join("-" + c.lower() if c.isupper() else c for c in fn)[1:]
    for fn in LAMBDA_FUNCTIONS
}


def function_name(fn: str) -> dict[str, str]:
    return {"Fn::Sub": f"brightrun-${{Stage}}-{FUNCTION_NAMES[fn]}"}


def _logical(name: str) -> str:
    return "".join(p.capitalize() for p in name.split("_")) + "Table"


def _attr_type(attr: Any) -> str:
    return "N" if isinstance(attr, NumberAttribute) else "S"


def table_resource(record: type[BaseRecord]) -> dict[str, Any]:
    logical = record.Meta.logical_name  # type: ignore[attr-defined]
    attrs = record.get_attributes()
    hash_key = next(n for n, a in attrs.items() if a.is_hash_key)
    range_key = next((n for n, a in attrs.items() if a.is_range_key), None)
    defined = {hash_key: _attr_type(attrs[hash_key])}
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        defined[range_key] = _attr_type(attrs[range_key])
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    gsis = []
    for index in record._indexes.values():
        idx_schema = []
        for name, attr in index.Meta.attributes.items():
            defined[name] = _attr_type(attr)
            idx_schema.append(
                {"AttributeName": name, "KeyType": "HASH" if attr.is_hash_key else "RANGE"}
            )
        idx_schema.sort(key=lambda k: k["KeyType"] != "HASH")
        projection = index.Meta.projection
        ptype = (
            "ALL"
            if isinstance(projection, AllProjection)
            else "KEYS_ONLY"
            if isinstance(projection, KeysOnlyProjection)
            else "INCLUDE"
        )
        gsis.append(
            {
                "IndexName": index.Meta.index_name,
                "KeySchema": idx_schema,
                "Projection": {"ProjectionType": ptype},
            }
        )
    props: dict[str, Any] = {
        "TableName": {"Fn::Sub": f"brightrun-${{Stage}}-{logical}"},
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": t} for n, t in sorted(defined.items())
        ],
        "KeySchema": schema,
        "SSESpecification": {"SSEEnabled": True},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
    }
    if gsis:
        props["GlobalSecondaryIndexes"] = gsis
    ttl = [name for name, attr in attrs.items() if isinstance(attr, TTLAttribute)]
    if ttl:
        # DynamoDB deletes an item (free, within days) once this epoch time has passed.
        props["TimeToLiveSpecification"] = {"AttributeName": ttl[0], "Enabled": True}
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Metadata": checkov_skips(SKIP_TABLE_CMK),
        "Properties": props,
    }


STATE_MACHINE_ARN = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:brightrun-${Stage}-generation"


def distributed_map_policy() -> dict[str, Any]:
    """What the Distributed Map needs of the state machine's own role: start its child
    executions (an execution of this state machine), watch and stop them, read the
    execution's items (written by PrepareJob) and write the Map Run's results, both
    under ``jobs/`` in the export bucket."""
    jobs_objects = {"Fn::Sub": "${ExportBucket.Arn}/jobs/*"}
    return {
        "PolicyName": "distributed-map",
        "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ChildExecutions",
                    "Effect": "Allow",
                    "Action": "states:StartExecution",
                    "Resource": {"Fn::Sub": STATE_MACHINE_ARN},
                },
                {
                    "Sid": "ChildExecutionState",
                    "Effect": "Allow",
                    "Action": ["states:DescribeExecution", "states:StopExecution"],
                    "Resource": {
                        "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:brightrun-${Stage}-generation/*"
                    },
                },
                {
                    "Sid": "ItemsAndResults",
                    "Effect": "Allow",
                    "Action": [
                        "s3:GetObject",
                        "s3:PutObject",
                        "s3:ListMultipartUploadParts",
                        "s3:AbortMultipartUpload",
                    ],
                    "Resource": jobs_objects,
                },
            ],
        },
    }


def function_policy(table_arns: list[Any]) -> dict[str, Any]:
    """What the Lambdas may do, attached to every role Chalice generates for them.

    Exactly the calls the code makes: pynamodb's GetItem/BatchGetItem/Query/PutItem/
    UpdateItem/DeleteItem/BatchWriteItem (a TransactWriteItems is authorised per item by
    the same Put/Update/Delete actions; no Scan, no DescribeTable: pynamodb 6 knows the
    schema from the records), the export writer's multipart upload, copy and delete, SNS
    publish/subscribe, the job lifecycle on the one state machine, and the Anthropic key.

    Tenancy and ``dynamodb:LeadingKeys``: every hash key starts with the tenant id, so a
    ``ForAllValues:StringLike`` condition on ``dynamodb:LeadingKeys`` could confine a
    principal to one tenant, but only one that carries its tenant, i.e. a role session
    tagged with it (``["${aws:PrincipalTag/tenant_id}", "${aws:PrincipalTag/tenant_id}#*"]``
    after ``sts:AssumeRole`` with ``Tags``). These roles are the Lambdas' execution roles
    and act for every tenant (the workflow handles jobs of all tenants, the API serves
    all users), so such a condition would deny them everything; stating a pattern any
    tenant matches would only look like isolation. Decision: no LeadingKeys condition here;
    tenant isolation is enforced where the tenant is known, in the API (the tenant comes
    from the verified Cognito token, never from the request) and in the repositories
    (every key is built from that tenant id). A per-request tenant-scoped role assumed
    with a session tag is the upgrade path if defence in depth at the IAM layer is needed.
    """
    return {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {
            "Description": "Data access of the API and workflow Lambdas",
            "Roles": [{"Ref": FUNCTION_ROLES[fn]} for fn in LAMBDA_FUNCTIONS],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "Tables",
                        "Effect": "Allow",
                        "Action": [
                            "dynamodb:GetItem",
                            "dynamodb:BatchGetItem",
                            "dynamodb:Query",
                            "dynamodb:PutItem",
                            "dynamodb:UpdateItem",
                            "dynamodb:DeleteItem",
                            "dynamodb:BatchWriteItem",
                        ],
                        "Resource": table_arns,
                    },
                    {
                        "Sid": "Exports",
                        "Effect": "Allow",
                        "Action": [
                            "s3:PutObject",
                            "s3:GetObject",
                            "s3:DeleteObject",
                            "s3:AbortMultipartUpload",
                        ],
                        "Resource": {"Fn::Sub": "${ExportBucket.Arn}/*"},
                    },
                    {
                        "Sid": "Notify",
                        "Effect": "Allow",
                        "Action": ["sns:Publish", "sns:Subscribe"],
                        "Resource": {"Ref": "NotificationTopic"},
                    },
                    {
                        "Sid": "Workflow",
                        "Effect": "Allow",
                        "Action": "states:StartExecution",
                        "Resource": {"Fn::Sub": STATE_MACHINE_ARN},
                    },
                    {
                        "Sid": "Executions",
                        "Effect": "Allow",
                        "Action": ["states:DescribeExecution", "states:StopExecution"],
                        "Resource": {
                            "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:brightrun-${Stage}-generation:*"
                        },
                    },
                    {
                        "Sid": "AnthropicKey",
                        "Effect": "Allow",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": {"Ref": "AnthropicSecretArn"},
                    },
                    {
                        "Sid": "Logs",
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": {
                            "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/brightrun-${Stage}-*:*"
                        },
                    },
                ],
            },
        },
    }


# --------------------------------------------------------------------------- hardening
# What checkov (``make test``) asks of a service on the internet, and what this stack
# answers. Fixed: WAF on CloudFront and on the API stage, reserved concurrency, a DLQ for
# the asynchronously invoked export, retention on every log group, access logs (API
# stage, CloudFront, both buckets). Skipped inline, each with its reason: the rest.

CLOUDFRONT_WAF_PATH = ROOT / "infra" / "cloudfront-waf.json"
API_STAGE = "api"  # .chalice/config.json api_gateway_stage
# Each function's share of the account's Lambda concurrency: a cap (a runaway job, or a
# flood of requests, cannot take the account's other functions down) and a guarantee.
# GenerateItem's is also the ceiling of the adaptive in-flight target
# (GENERATION_MAX_IN_FLIGHT); throttled invocations are retried by the state machine
# (Lambda.TooManyRequestsException).
RESERVED_CONCURRENCY: dict[str, Any] = {
    API_FUNCTION: {"Ref": "ApiReservedConcurrency"},
    "GenerateItem": {"Ref": "GenerationReservedConcurrency"},
    "RecordItemFailure": 20,
    "PrepareJob": 10,
    "FinishJob": 10,
    "SubmitBatch": 10,
    "PollBatch": 10,
    EXPORT_FUNCTION: 5,
    RECOVERY_FUNCTION: 1,  # one check of stalled jobs at a time
}
ASYNC_FUNCTIONS = (EXPORT_FUNCTION,)  # invoked with InvocationType=Event: need a DLQ
LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653]

SKIP_VPC = (
    "CKV_AWS_117",
    "No private resources to reach: AWS services are called over their endpoints with IAM and "
    "the Anthropic API is on the internet; a VPC would add NAT cost, not isolation",
)
SKIP_ENV_KMS = (
    "CKV_AWS_173",
    "The environment holds names and ARNs only (the Anthropic key is read from Secrets Manager); "
    "Lambda encrypts it at rest",
)
SKIP_SYNC_DLQ = (
    "CKV_AWS_116",
    "Invoked synchronously (API Gateway or Step Functions, whose Retry/Catch handle failures); "
    "a DLQ only receives asynchronous invocations",
)
SKIP_TABLE_CMK = (
    "CKV_AWS_119",
    "Encrypted at rest with the AWS managed key; a customer managed key adds cost and key "
    "administration, and tenants are isolated by key prefix, not by encryption key",
)
SKIP_LOG_KMS = (
    "CKV_AWS_158",
    "Logs hold ids and counts, never keys or conversation text; CloudWatch Logs encrypts them "
    "at rest",
)
SKIP_DEFAULT_CERT = (
    "CKV_AWS_174",
    "Served on the default *.cloudfront.net certificate, whose TLS policy CloudFront fixes; a "
    "custom domain's ACM certificate must use TLSv1.2_2021",
)
SKIP_API_CACHE = (
    "CKV_AWS_120",
    "Every answer is per signed-in user and marked no-store: a shared cache would serve one "
    "tenant's data to another",
)
SKIP_LOG_BUCKET_LOGGING = (
    "CKV_AWS_18",
    "This is the access-log bucket: logging it would log its own log deliveries",
)


def checkov_skips(*skips: tuple[str, str]) -> dict[str, Any]:
    """Resource metadata that tells checkov which checks do not apply, and why."""
    return {"checkov": {"skip": [{"id": check, "comment": why} for check, why in skips]}}


def _visibility(metric: str) -> dict[str, Any]:
    return {
        "CloudWatchMetricsEnabled": True,
        "MetricName": metric,
        "SampledRequestsEnabled": True,
    }


def _managed_rule(name: str, priority: int, counted: tuple[str, ...] = ()) -> dict[str, Any]:
    statement: dict[str, Any] = {"VendorName": "AWS", "Name": name}
    if counted:
        statement["RuleActionOverrides"] = [
            {"Name": rule, "ActionToUse": {"Count": {}}} for rule in counted
        ]
    return {
        "Name": name,
        "Priority": priority,
        "OverrideAction": {"None": {}},
        "Statement": {"ManagedRuleGroupStatement": statement},
        "VisibilityConfig": _visibility(name),
    }


def web_acl(scope: str, name: str) -> dict[str, Any]:
    """A WAF web ACL: a per-IP rate limit and AWS's managed rule groups (IP reputation,
    the common rule set, known bad inputs such as Log4j lookups). Two common rules only
    count: bodies above 8 KB (chunk imports of up to 5 MB and 1 MB bodies are valid
    here, and the API enforces its own limits) and script-like body text (uploaded
    documents and model output are data that may quote HTML; it is never rendered)."""
    return {
        "Type": "AWS::WAFv2::WebACL",
        "Properties": {
            "Name": {"Fn::Sub": f"brightrun-${{Stage}}-{name}"},
            "Scope": scope,
            "DefaultAction": {"Allow": {}},
            "VisibilityConfig": _visibility(f"brightrun-{name}"),
            "Rules": [
                {
                    "Name": "RateLimitPerIp",
                    "Priority": 0,
                    "Action": {"Block": {}},
                    "Statement": {
                        "RateBasedStatement": {
                            "Limit": {"Ref": "WafRateLimit"},
                            "AggregateKeyType": "IP",
                        }
                    },
                    "VisibilityConfig": _visibility("RateLimitPerIp"),
                },
                _managed_rule("AWSManagedRulesAmazonIpReputationList", 1),
                _managed_rule(
                    "AWSManagedRulesCommonRuleSet",
                    2,
                    counted=("SizeRestrictions_BODY", "CrossSiteScripting_BODY"),
                ),
                _managed_rule("AWSManagedRulesKnownBadInputsRuleSet", 3),
            ],
        },
    }


WAF_RATE_LIMIT_PARAMETER = {
    "Type": "Number",
    "Default": 2000,
    "MinValue": 100,
    "Description": "Requests per IP address in any 5 minutes before WAF blocks that address",
}


def log_bucket() -> dict[str, Any]:
    """Where S3 server access logs and CloudFront's standard logs go. CloudFront's
    standard logging writes with ACLs, so this bucket (only this one) keeps them enabled
    for its owner (BucketOwnerPreferred); public access stays blocked."""
    return {
        "Type": "AWS::S3::Bucket",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Metadata": checkov_skips(SKIP_LOG_BUCKET_LOGGING),
        "Properties": {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]},
            "VersioningConfiguration": {"Status": "Enabled"},
            "LifecycleConfiguration": {
                "Rules": [
                    {
                        "Id": "expire-logs",
                        "Status": "Enabled",
                        "ExpirationInDays": {"Ref": "LogRetentionDays"},
                        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                    }
                ]
            },
        },
    }


def log_bucket_policy() -> dict[str, Any]:
    return {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": {"Ref": "AccessLogBucket"},
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "S3ServerAccessLogs",
                        "Effect": "Allow",
                        "Principal": {"Service": "logging.s3.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Resource": {"Fn::Sub": "${AccessLogBucket.Arn}/s3/*"},
                        "Condition": {
                            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                            "ArnLike": {
                                "aws:SourceArn": [
                                    {"Fn::GetAtt": ["ExportBucket", "Arn"]},
                                    {"Fn::GetAtt": ["FrontendBucket", "Arn"]},
                                ]
                            },
                        },
                    },
                    {
                        "Sid": "TlsOnly",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [
                            {"Fn::GetAtt": ["AccessLogBucket", "Arn"]},
                            {"Fn::Sub": "${AccessLogBucket.Arn}/*"},
                        ],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                ],
            },
        },
    }


def access_log_format() -> str:
    """API Gateway access log line (JSON): who, what, how it ended, how long it took."""
    fields = {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "userAgent": "$context.identity.userAgent",
        "time": "$context.requestTime",
        "method": "$context.httpMethod",
        "resource": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
        "integrationStatus": "$context.integrationStatus",
        "wafStatus": "$context.waf.status",
    }
    return json.dumps(fields, separators=(",", ":"))


def hardening_resources() -> dict[str, Any]:
    """Edge protection, logging and failure capture that sit beside the app's resources."""
    return {
        "AccessLogBucket": log_bucket(),
        "AccessLogBucketPolicy": log_bucket_policy(),
        "ApiWebAcl": web_acl("REGIONAL", "api"),
        "ApiWebAclAssociation": {
            "Type": "AWS::WAFv2::WebACLAssociation",
            "Properties": {
                "ResourceArn": {
                    "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/"
                    "${RestAPI}/stages/${RestAPI.Stage}"
                },
                "WebACLArn": {"Fn::GetAtt": ["ApiWebAcl", "Arn"]},
            },
        },
        # A CLOUDFRONT web ACL exists only in us-east-1: created here when the stack is
        # there, otherwise made from infra/cloudfront-waf.json in us-east-1 and passed
        # in as CloudFrontWebAclArn (infra/deploy.py does both).
        "CloudFrontWebAcl": {**web_acl("CLOUDFRONT", "cdn"), "Condition": "CreateCloudFrontWebAcl"},
        "ApiAccessLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "Metadata": checkov_skips(SKIP_LOG_KMS),
            "Properties": {
                "LogGroupName": {"Fn::Sub": "/aws/apigateway/brightrun-${Stage}-access"},
                "RetentionInDays": {"Ref": "LogRetentionDays"},
            },
        },
        # API Gateway writes stage logs with the account's CloudWatch role (one per region).
        "ApiGatewayCloudWatchRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "apigateway.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
                "ManagedPolicyArns": [
                    {
                        "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
                        "AmazonAPIGatewayPushToCloudWatchLogs"
                    }
                ],
            },
        },
        "ApiGatewayAccount": {
            "Type": "AWS::ApiGateway::Account",
            "Properties": {
                "CloudWatchRoleArn": {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]}
            },
        },
        # Merged into Chalice's API (--merge-template): access logs, tracing, the WAF.
        "RestAPI": {
            "Type": "AWS::Serverless::Api",
            "DependsOn": ["ApiGatewayAccount"],
            "Metadata": checkov_skips(SKIP_API_CACHE),
            "Properties": {
                "TracingEnabled": True,
                "AccessLogSetting": {
                    "DestinationArn": {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]},
                    "Format": access_log_format(),
                },
            },
        },
        # An export the API started but whose Lambda failed every attempt (crash,
        # timeout, out of memory) lands here, and the alarm below mails the operators.
        "ExportDeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": {"Fn::Sub": "brightrun-${Stage}-export-dlq"},
                "MessageRetentionPeriod": 1209600,
                "KmsMasterKeyId": "alias/aws/sqs",
            },
        },
        "ExportDeadLetterPolicy": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "Description": "RunExport's failed asynchronous invocations go to its DLQ",
                "Roles": [{"Ref": FUNCTION_ROLES[EXPORT_FUNCTION]}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "DeadLetters",
                            "Effect": "Allow",
                            "Action": "sqs:SendMessage",
                            "Resource": {"Fn::GetAtt": ["ExportDeadLetterQueue", "Arn"]},
                        }
                    ],
                },
            },
        },
        "ExportDeadLetterAlarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmDescription": "An export failed every attempt (see the export DLQ)",
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [
                    {
                        "Name": "QueueName",
                        "Value": {"Fn::GetAtt": ["ExportDeadLetterQueue", "QueueName"]},
                    }
                ],
                "Statistic": "Maximum",
                "Period": 300,
                "EvaluationPeriods": 1,
                "Threshold": 1,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": [{"Ref": "AlarmTopic"}],
            },
        },
    }


def hardening_parameters() -> dict[str, Any]:
    return {
        "LogRetentionDays": {
            "Type": "Number",
            "Default": 90,
            "AllowedValues": LOG_RETENTION_DAYS,
            "Description": "Days kept in every log group and in the access-log bucket "
            "(infra/deploy.py passes the stage's log_retention_in_days)",
        },
        "WafRateLimit": WAF_RATE_LIMIT_PARAMETER,
        "CloudFrontWebAclArn": {
            "Type": "String",
            "Default": "",
            "Description": "Outside us-east-1: the CLOUDFRONT web ACL made from "
            "infra/cloudfront-waf.json in us-east-1 (in us-east-1 the stack makes its own)",
        },
        "ApiReservedConcurrency": {
            "Type": "Number",
            "Default": 100,
            "MinValue": 1,
            "Description": "Concurrent executions reserved for (and the cap of) the API Lambda",
        },
        "GenerationReservedConcurrency": {
            "Type": "Number",
            "Default": 100,
            "MinValue": 1,
            "Description": "Concurrent executions reserved for (and the cap of) GenerateItem, "
            "across all jobs",
        },
    }


def hardening_conditions() -> dict[str, Any]:
    return {
        "InUsEast1": {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]},
        "CloudFrontWebAclGiven": {
            "Fn::Not": [{"Fn::Equals": [{"Ref": "CloudFrontWebAclArn"}, ""]}]
        },
        "CreateCloudFrontWebAcl": {
            "Fn::And": [
                {"Condition": "InUsEast1"},
                {"Fn::Not": [{"Condition": "CloudFrontWebAclGiven"}]},
            ]
        },
    }


def hardening_rules() -> dict[str, Any]:
    """Refuses a stack outside us-east-1 without a CloudFront web ACL (no silent no-WAF)."""
    return {
        "CloudFrontWebAclOutsideUsEast1": {
            "RuleCondition": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}]},
            "Assertions": [
                {
                    "Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "CloudFrontWebAclArn"}, ""]}]},
                    "AssertDescription": "Outside us-east-1, create infra/cloudfront-waf.json in "
                    "us-east-1 and pass its WebAclArn output as CloudFrontWebAclArn",
                }
            ],
        }
    }


def build_cloudfront_waf_template() -> dict[str, Any]:
    """The CloudFront web ACL on its own, for stacks outside us-east-1 (deploy it there)."""
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Bright Run Conversation Studio: the CloudFront web ACL (us-east-1 only)",
        "Parameters": {
            "Stage": {"Type": "String", "Default": "dev", "AllowedPattern": "[a-z0-9-]+"},
            "WafRateLimit": WAF_RATE_LIMIT_PARAMETER,
        },
        "Resources": {"CloudFrontWebAcl": web_acl("CLOUDFRONT", "cdn")},
        "Outputs": {"WebAclArn": {"Value": {"Fn::GetAtt": ["CloudFrontWebAcl", "Arn"]}}},
    }


FINE_TUNE_OUTPUT_PREFIX = "fine-tunes/"


def fine_tune_resources() -> dict[str, Any]:
    """Amazon Bedrock model customization: the service role Bedrock assumes for a job
    (read the export files, write its output under ``fine-tunes/`` of the export bucket)
    and what the API may do to start and follow jobs (pass that role, and only to
    Bedrock). Jobs are tagged with their tenant; every key Bedrock touches starts with
    ``exports/<tenant>/`` or ``fine-tunes/<tenant>/``."""
    job_arn = (
        "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:model-customization-job/*"
    )
    return {
        "FineTuneRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "Assumed by Amazon Bedrock for model customization jobs",
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "bedrock.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                                "ArnLike": {"aws:SourceArn": {"Fn::Sub": job_arn}},
                            },
                        }
                    ],
                },
                "Policies": [
                    {
                        "PolicyName": "training-data-and-output",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Sid": "ReadExports",
                                    "Effect": "Allow",
                                    "Action": "s3:GetObject",
                                    "Resource": {"Fn::Sub": "${ExportBucket.Arn}/exports/*"},
                                },
                                {
                                    "Sid": "WriteOutput",
                                    "Effect": "Allow",
                                    "Action": "s3:PutObject",
                                    "Resource": {
                                        "Fn::Sub": f"${{ExportBucket.Arn}}/{FINE_TUNE_OUTPUT_PREFIX}*"
                                    },
                                },
                                {
                                    "Sid": "ListBucket",
                                    "Effect": "Allow",
                                    "Action": "s3:ListBucket",
                                    "Resource": {"Fn::GetAtt": ["ExportBucket", "Arn"]},
                                },
                            ],
                        },
                    }
                ],
            },
        },
        "FineTunePolicy": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "Description": "The API starts, follows and stops Bedrock fine-tunes",
                "Roles": [{"Ref": FUNCTION_ROLES[API_FUNCTION]}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "CustomizationJobs",
                            "Effect": "Allow",
                            "Action": [
                                "bedrock:CreateModelCustomizationJob",
                                "bedrock:GetModelCustomizationJob",
                                "bedrock:StopModelCustomizationJob",
                                "bedrock:TagResource",
                            ],
                            "Resource": [
                                {"Fn::Sub": job_arn},
                                {
                                    "Fn::Sub": "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:custom-model/*"
                                },
                                {
                                    "Fn::Sub": "arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/*"
                                },
                            ],
                        },
                        {
                            "Sid": "PassRoleToBedrock",
                            "Effect": "Allow",
                            "Action": "iam:PassRole",
                            "Resource": {"Fn::GetAtt": ["FineTuneRole", "Arn"]},
                            "Condition": {
                                "StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}
                            },
                        },
                    ],
                },
            },
        },
    }


def build_template() -> dict[str, Any]:
    asl = ASL_PATH.read_text()
    tables = {_logical(r.Meta.logical_name): table_resource(r) for r in ALL_RECORDS}  # type: ignore[attr-defined]
    table_arns: list[Any] = []
    for logical in tables:
        table_arns.append({"Fn::GetAtt": [logical, "Arn"]})
        table_arns.append({"Fn::Sub": f"${{{logical}.Arn}}/index/*"})
    # Environment of the functions, merged into Chalice's by --merge-template. What only
    # some functions need is given to those only, and two references would be cycles:
    # APP_BASE_URL (CloudFront -> RestAPI -> APIHandler) is not set on the API handler or
    # RunExport (which the API references), neither of which builds links.
    common_env: dict[str, Any] = {
        "STAGE": {"Ref": "Stage"},
        "EXPORT_BUCKET": {"Ref": "ExportBucket"},
        "NOTIFICATION_TOPIC_ARN": {"Ref": "NotificationTopic"},
        "STATE_MACHINE_ARN": {"Fn::Sub": STATE_MACHINE_ARN},
        "TABLE_PREFIX": {"Fn::Sub": "brightrun-${Stage}"},
        "ANTHROPIC_SECRET_ID": {"Ref": "AnthropicSecretArn"},
        "POWERTOOLS_SERVICE_NAME": "conversation-studio",
        "POWERTOOLS_METRICS_NAMESPACE": "BrightRun",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        # The adaptive target never plans more calls in flight than GenerateItem may run.
        "GENERATION_MAX_IN_FLIGHT": {"Ref": "GenerationReservedConcurrency"},
    }
    function_env: dict[str, dict[str, Any]] = {
        API_FUNCTION: {
            **common_env,
            "AUTH_MODE": "cognito",
            "COGNITO_USER_POOL_ID": {"Ref": "UserPool"},
            "COGNITO_CLIENT_ID": {"Ref": "UserPoolClient"},
            "RUN_EXPORT_FUNCTION": {"Ref": EXPORT_FUNCTION},
            "FINE_TUNE_ROLE_ARN": {"Fn::GetAtt": ["FineTuneRole", "Arn"]},
        },
        # The bundle's Bedrock job JSON names the customization role.
        EXPORT_FUNCTION: {
            **common_env,
            "FINE_TUNE_ROLE_ARN": {"Fn::GetAtt": ["FineTuneRole", "Arn"]},
        },
        # It resumes jobs (their notices carry links, as the workflow's do).
        RECOVERY_FUNCTION: {
            **common_env,
            "APP_BASE_URL": {"Fn::Sub": "https://${FrontendDistribution.DomainName}"},
        },
        **{
            fn: {
                **common_env,
                "APP_BASE_URL": {"Fn::Sub": "https://${FrontendDistribution.DomainName}"},
            }
            for fn in WORKFLOW_FUNCTIONS.values()
        },
    }
    resources: dict[str, Any] = dict(tables)
    resources.update(
        {
            "ExportBucket": {
                "Type": "AWS::S3::Bucket",
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
                "Properties": {
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
                    },
                    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "LoggingConfiguration": {
                        "DestinationBucketName": {"Ref": "AccessLogBucket"},
                        "LogFilePrefix": "s3/export/",
                    },
                    "LifecycleConfiguration": {
                        "Rules": [
                            {
                                "Id": "expire-old-versions",
                                "Status": "Enabled",
                                "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                            },
                            {
                                # Distributed Map items and results: needed while the
                                # execution runs, kept a week for inspection.
                                "Id": "expire-job-items",
                                "Status": "Enabled",
                                "Prefix": "jobs/",
                                "ExpirationInDays": 7,
                            },
                            {
                                # List-index snapshots: a cold container ignores one
                                # written more than a day ago, so an older one, and every
                                # version a rewrite superseded, is only storage.
                                "Id": "expire-list-snapshots",
                                "Status": "Enabled",
                                "Prefix": "list-index/",
                                "ExpirationInDays": 2,
                                "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                            },
                        ]
                    },
                },
            },
            "ExportBucketPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": {"Ref": "ExportBucket"},
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "TlsOnly",
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "s3:*",
                                "Resource": [
                                    {"Fn::GetAtt": ["ExportBucket", "Arn"]},
                                    {"Fn::Sub": "${ExportBucket.Arn}/*"},
                                ],
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ],
                    },
                },
            },
            "FrontendBucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
                    },
                    # A bad frontend upload can be rolled back to the previous files.
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "LifecycleConfiguration": {
                        "Rules": [
                            {
                                "Id": "expire-old-versions",
                                "Status": "Enabled",
                                "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                            }
                        ]
                    },
                    "LoggingConfiguration": {
                        "DestinationBucketName": {"Ref": "AccessLogBucket"},
                        "LogFilePrefix": "s3/frontend/",
                    },
                },
            },
            "FrontendOriginAccessControl": {
                "Type": "AWS::CloudFront::OriginAccessControl",
                "Properties": {
                    "OriginAccessControlConfig": {
                        "Name": {"Fn::Sub": "brightrun-${Stage}-frontend"},
                        "OriginAccessControlOriginType": "s3",
                        "SigningBehavior": "always",
                        "SigningProtocol": "sigv4",
                    }
                },
            },
            "FrontendDistribution": {
                "Type": "AWS::CloudFront::Distribution",
                "Metadata": checkov_skips(SKIP_DEFAULT_CERT),
                "Properties": {
                    "DistributionConfig": {
                        "Enabled": True,
                        "DefaultRootObject": "index.html",
                        "WebACLId": {
                            "Fn::If": [
                                "CreateCloudFrontWebAcl",
                                {"Fn::GetAtt": ["CloudFrontWebAcl", "Arn"]},
                                {"Ref": "CloudFrontWebAclArn"},
                            ]
                        },
                        "Logging": {
                            "Bucket": {"Fn::GetAtt": ["AccessLogBucket", "DomainName"]},
                            "Prefix": "cloudfront/",
                            "IncludeCookies": False,
                        },
                        "Origins": [
                            {
                                "Id": "frontend",
                                "DomainName": {
                                    "Fn::GetAtt": ["FrontendBucket", "RegionalDomainName"]
                                },
                                "OriginAccessControlId": {
                                    "Fn::GetAtt": ["FrontendOriginAccessControl", "Id"]
                                },
                                "S3OriginConfig": {"OriginAccessIdentity": ""},
                            },
                            {
                                "Id": "api",
                                "DomainName": {
                                    "Fn::Sub": "${RestAPI}.execute-api.${AWS::Region}.amazonaws.com"
                                },
                                "OriginPath": "/api",
                                "CustomOriginConfig": {"OriginProtocolPolicy": "https-only"},
                            },
                        ],
                        "DefaultCacheBehavior": {
                            "TargetOriginId": "frontend",
                            "ViewerProtocolPolicy": "redirect-to-https",
                            "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
                        },
                        "CacheBehaviors": [
                            {
                                "PathPattern": "/api/*",
                                "TargetOriginId": "api",
                                "ViewerProtocolPolicy": "https-only",
                                "AllowedMethods": [
                                    "GET",
                                    "HEAD",
                                    "OPTIONS",
                                    "PUT",
                                    "PATCH",
                                    "POST",
                                    "DELETE",
                                ],
                                "CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",
                                "OriginRequestPolicyId": "b689b0a8-53d0-40ab-baf2-68738e2966ac",
                            }
                        ],
                    }
                },
            },
            "FrontendBucketPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": {"Ref": "FrontendBucket"},
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "CloudFrontRead",
                                "Effect": "Allow",
                                "Principal": {"Service": "cloudfront.amazonaws.com"},
                                "Action": "s3:GetObject",
                                "Resource": {"Fn::Sub": "${FrontendBucket.Arn}/*"},
                                "Condition": {
                                    "StringEquals": {
                                        "AWS:SourceArn": {
                                            "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${FrontendDistribution}"
                                        }
                                    }
                                },
                            },
                            {
                                "Sid": "TlsOnly",
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "s3:*",
                                "Resource": [
                                    {"Fn::GetAtt": ["FrontendBucket", "Arn"]},
                                    {"Fn::Sub": "${FrontendBucket.Arn}/*"},
                                ],
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            },
                        ],
                    },
                },
            },
            "NotificationTopic": {
                "Type": "AWS::SNS::Topic",
                "Properties": {
                    "TopicName": {"Fn::Sub": "brightrun-${Stage}-notifications"},
                    "KmsMasterKeyId": "alias/aws/sns",
                },
            },
            "AlarmTopic": {
                "Type": "AWS::SNS::Topic",
                "Properties": {
                    "TopicName": {"Fn::Sub": "brightrun-${Stage}-alarms"},
                    "KmsMasterKeyId": "alias/aws/sns",
                    "Subscription": [{"Endpoint": {"Ref": "AlarmEmail"}, "Protocol": "email"}],
                },
            },
            "UserPool": {
                "Type": "AWS::Cognito::UserPool",
                "Properties": {
                    "UserPoolName": {"Fn::Sub": "brightrun-${Stage}"},
                    "AutoVerifiedAttributes": ["email"],
                    "UsernameAttributes": ["email"],
                    "Schema": [
                        {
                            "Name": "email",
                            "AttributeDataType": "String",
                            "Required": True,
                            "Mutable": True,
                        },
                        {"Name": "tenant_id", "AttributeDataType": "String", "Mutable": False},
                    ],
                    "Policies": {
                        "PasswordPolicy": {
                            "MinimumLength": 12,
                            "RequireLowercase": True,
                            "RequireUppercase": True,
                            "RequireNumbers": True,
                            "RequireSymbols": False,
                        }
                    },
                },
            },
            "UserPoolClient": {
                "Type": "AWS::Cognito::UserPoolClient",
                "Properties": {
                    "UserPoolId": {"Ref": "UserPool"},
                    "ClientName": {"Fn::Sub": "brightrun-${Stage}-web"},
                    "GenerateSecret": False,
                    "ExplicitAuthFlows": [
                        "ALLOW_USER_PASSWORD_AUTH",
                        "ALLOW_USER_SRP_AUTH",
                        "ALLOW_REFRESH_TOKEN_AUTH",
                    ],
                    "ReadAttributes": ["email", "custom:tenant_id"],
                    "WriteAttributes": ["email"],
                },
            },
            "StateMachineRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "states.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    },
                    "Policies": [
                        {
                            "PolicyName": "invoke-and-notify",
                            "PolicyDocument": {
                                "Version": "2012-10-17",
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": "lambda:InvokeFunction",
                                        "Resource": [
                                            {"Fn::GetAtt": [fn, "Arn"]}
                                            for fn in WORKFLOW_FUNCTIONS.values()
                                        ],
                                    },
                                    {
                                        "Effect": "Allow",
                                        "Action": "sns:Publish",
                                        "Resource": {"Ref": "NotificationTopic"},
                                    },
                                ],
                            },
                        },
                        distributed_map_policy(),
                    ],
                },
            },
            "GenerationStateMachine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineName": {"Fn::Sub": "brightrun-${Stage}-generation"},
                    "StateMachineType": "STANDARD",
                    "RoleArn": {"Fn::GetAtt": ["StateMachineRole", "Arn"]},
                    "DefinitionString": {
                        "Fn::Sub": [
                            asl,
                            {
                                **{
                                    k: {"Fn::GetAtt": [v, "Arn"]}
                                    for k, v in WORKFLOW_FUNCTIONS.items()
                                },
                                "NotificationTopicArn": {"Ref": "NotificationTopic"},
                                "ExportBucketName": {"Ref": "ExportBucket"},
                            },
                        ]
                    },
                },
            },
            "FunctionPolicy": function_policy(table_arns),
            "ExportInvokePolicy": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {
                    "Description": "The API starts exports by invoking RunExport asynchronously",
                    "Roles": [{"Ref": FUNCTION_ROLES[API_FUNCTION]}],
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "RunExport",
                                "Effect": "Allow",
                                "Action": "lambda:InvokeFunction",
                                "Resource": {"Fn::GetAtt": [EXPORT_FUNCTION, "Arn"]},
                            }
                        ],
                    },
                },
            },
            "StalledJobScanPolicy": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {
                    "Description": (
                        "The stalled-job check finds active jobs of every tenant: the one "
                        "Scan, on the jobs table only"
                    ),
                    "Roles": [{"Ref": FUNCTION_ROLES[RECOVERY_FUNCTION]}],
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "ScanJobs",
                                "Effect": "Allow",
                                "Action": "dynamodb:Scan",
                                "Resource": {"Fn::GetAtt": ["JobsTable", "Arn"]},
                            }
                        ],
                    },
                },
            },
            "StalledJobSchedule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Description": ("Resume generation jobs whose Step Functions execution died"),
                    "ScheduleExpression": STALLED_JOB_SCHEDULE,
                    "State": "ENABLED",
                    "Targets": [
                        {
                            "Id": "recover-stalled-jobs",
                            "Arn": {"Fn::GetAtt": [RECOVERY_FUNCTION, "Arn"]},
                            "Input": "{}",
                        }
                    ],
                },
            },
            "StalledJobSchedulePermission": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "Action": "lambda:InvokeFunction",
                    "FunctionName": {"Ref": RECOVERY_FUNCTION},
                    "Principal": "events.amazonaws.com",
                    "SourceArn": {"Fn::GetAtt": ["StalledJobSchedule", "Arn"]},
                },
            },
            **fine_tune_resources(),
            "FailedExecutionsAlarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmDescription": "A generation workflow execution failed",
                    "Namespace": "AWS/States",
                    "MetricName": "ExecutionsFailed",
                    "Dimensions": [
                        {"Name": "StateMachineArn", "Value": {"Ref": "GenerationStateMachine"}}
                    ],
                    "Statistic": "Sum",
                    "Period": 300,
                    "EvaluationPeriods": 1,
                    "Threshold": 1,
                    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                    "TreatMissingData": "notBreaching",
                    "AlarmActions": [{"Ref": "AlarmTopic"}],
                },
            },
        }
    )
    for fn in LAMBDA_FUNCTIONS:
        resources[f"{fn}ErrorsAlarm"] = {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmDescription": f"Errors in the {fn} Lambda",
                "Namespace": "AWS/Lambda",
                "MetricName": "Errors",
                "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": fn}}],
                "Statistic": "Sum",
                "Period": 300,
                "EvaluationPeriods": 1,
                "Threshold": 1,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": [{"Ref": "AlarmTopic"}],
            },
        }
        # Merged into Chalice's generated function resources by --merge-template
        # (dicts merge key by key; the template's value wins for everything else).
        resources[fn] = {
            "Type": "AWS::Serverless::Function",
            "Metadata": checkov_skips(
                SKIP_VPC, SKIP_ENV_KMS, *(() if fn in ASYNC_FUNCTIONS else (SKIP_SYNC_DLQ,))
            ),
            "Properties": {
                "FunctionName": function_name(fn),
                "Environment": {"Variables": function_env[fn]},
                "Tracing": "Active",
                "ReservedConcurrentExecutions": RESERVED_CONCURRENCY[fn],
                **(
                    {
                        "DeadLetterQueue": {
                            "Type": "SQS",
                            "TargetArn": {"Fn::GetAtt": ["ExportDeadLetterQueue", "Arn"]},
                        }
                    }
                    if fn in ASYNC_FUNCTIONS
                    else {}
                ),
            },
        }
        # Merged into the log group Chalice makes for the function: one retention for
        # all (the API's own group is named below).
        if fn != API_FUNCTION:
            resources[f"{fn}LogGroup"] = {
                "Type": "AWS::Logs::LogGroup",
                "Metadata": checkov_skips(SKIP_LOG_KMS),
                "Properties": {"RetentionInDays": {"Ref": "LogRetentionDays"}},
            }
    # Chalice names the API handler's log group after "ApiHandler", which is no resource.
    resources["ApiHandlerLogGroup"] = {
        "Type": "AWS::Logs::LogGroup",
        "Metadata": checkov_skips(SKIP_LOG_KMS),
        "Properties": {
            "LogGroupName": {
                "Fn::Sub": f"/aws/lambda/brightrun-${{Stage}}-{FUNCTION_NAMES[API_FUNCTION]}"
            },
            "RetentionInDays": {"Ref": "LogRetentionDays"},
        },
    }
    resources.update(hardening_resources())
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Bright Run Conversation Studio: data, workflow, notifications, frontend",
        "Parameters": {
            "Stage": {"Type": "String", "Default": "dev", "AllowedPattern": "[a-z0-9-]+"},
            "AlarmEmail": {"Type": "String", "Default": "ops@example.com"},
            "AnthropicSecretArn": {
                "Type": "String",
                "Default": "arn:aws:secretsmanager:us-east-1:000000000000:secret:brightrun/anthropic",
                "Description": "Secrets Manager secret holding the Anthropic API key",
            },
            **hardening_parameters(),
        },
        "Conditions": hardening_conditions(),
        "Rules": hardening_rules(),
        "Resources": resources,
        "Outputs": {
            "ExportBucketName": {"Value": {"Ref": "ExportBucket"}},
            "FrontendBucketName": {"Value": {"Ref": "FrontendBucket"}},
            "FrontendUrl": {"Value": {"Fn::Sub": "https://${FrontendDistribution.DomainName}"}},
            "NotificationTopicArn": {"Value": {"Ref": "NotificationTopic"}},
            "StateMachineArn": {"Value": {"Ref": "GenerationStateMachine"}},
            "FineTuneRoleArn": {"Value": {"Fn::GetAtt": ["FineTuneRole", "Arn"]}},
            "UserPoolId": {"Value": {"Ref": "UserPool"}},
            "UserPoolClientId": {"Value": {"Ref": "UserPoolClient"}},
        },
    }


def render() -> str:
    return json.dumps(build_template(), indent=2) + "\n"


def render_cloudfront_waf() -> str:
    return json.dumps(build_cloudfront_waf_template(), indent=2) + "\n"


def main() -> int:
    outputs = {TEMPLATE_PATH: render(), CLOUDFRONT_WAF_PATH: render_cloudfront_waf()}
    if "--check" in sys.argv:
        stale = [p for p, text in outputs.items() if not p.exists() or p.read_text() != text]
        for path in stale:
            name = path.relative_to(ROOT)
            print(f"{name} is out of date: run python -m infra.build", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs.items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
