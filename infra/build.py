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

from pynamodb.attributes import NumberAttribute
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
# Functions the state machine invokes: ASL placeholder -> logical id.
WORKFLOW_FUNCTIONS = {
    "PrepareJobArn": "PrepareJob",
    "GenerateItemArn": "GenerateItem",
    "RecordItemFailureArn": "RecordItemFailure",
    "FinishJobArn": "FinishJob",
    "SubmitBatchArn": "SubmitBatch",
    "PollBatchArn": "PollBatch",
}
LAMBDA_FUNCTIONS = [API_FUNCTION, *WORKFLOW_FUNCTIONS.values(), EXPORT_FUNCTION]
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
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": props,
    }


STATE_MACHINE_ARN = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:brightrun-${Stage}-generation"


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
                    "LifecycleConfiguration": {
                        "Rules": [
                            {
                                "Id": "expire-old-versions",
                                "Status": "Enabled",
                                "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                            }
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
                "Properties": {
                    "DistributionConfig": {
                        "Enabled": True,
                        "DefaultRootObject": "index.html",
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
                        }
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
            "Properties": {
                "FunctionName": function_name(fn),
                "Environment": {"Variables": function_env[fn]},
                "Tracing": "Active",
            },
        }
    # Chalice names the API handler's log group after "ApiHandler", which is no resource.
    resources["ApiHandlerLogGroup"] = {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {
            "LogGroupName": {
                "Fn::Sub": f"/aws/lambda/brightrun-${{Stage}}-{FUNCTION_NAMES[API_FUNCTION]}"
            }
        },
    }
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
        },
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


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not TEMPLATE_PATH.exists() or TEMPLATE_PATH.read_text() != text:
            print("infra/template.json is out of date: run python -m infra.build", file=sys.stderr)
            return 1
        return 0
    TEMPLATE_PATH.write_text(text)
    print(f"wrote {TEMPLATE_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
